"""Public relaxation API: ``relax(atoms) -> relaxed Atoms`` with γ_GB and [n] in ``info``."""
from __future__ import annotations

import os

from ase import Atoms

from gbsearch.geometry.properties import atom_fraction, gb_energy
from gbsearch.relaxation.engine import AnnealSettings, RelaxSettings, shared_engine
from gbsearch.relaxation.checks import prepare
from gbsearch.relaxation.potential import Potential, as_potential


def bulk_reference(potential: "str | os.PathLike | Potential | None" = None) -> tuple[float, float]:
    """(a0 in Å, E_coh in eV/atom) of the potential's bulk crystal (BCC W by default),
    computed once per process and file (:meth:`Potential.properties`)."""
    return as_potential(potential).properties()


def relax(atoms: Atoms, settings: RelaxSettings | None = None, anneal: AnnealSettings | None = None,
          overlaps: str = "merge", potential: "str | os.PathLike | Potential | None" = None) -> Atoms:
    """Relax a GB slab with LAMMPS CG and return a new relaxed ``Atoms``.

    ``info`` gets ``gamma_J_m2`` (J/m²), ``n_frac`` ([n] in [0, 1)), ``energy_eV``,
    ``iterations``, ``fmax_eV_A``, ``relax_s``, ``upper_dz_A``, ``md_steps`` (of the anneal, if
    any: 0 when none ran, e.g. with fewer than two free atoms) and ``merged_atoms``; per-atom
    energies (eV) go to ``arrays["energy"]``. Overlapping atoms are merged (or rejected).
    ``potential``: a :class:`Potential`, an EAM file of one element, or None (the W file);
    γ uses that potential's own E_coh.
    """
    engine = shared_engine(potential)
    material = engine.pot.material()
    cleaned, merged = prepare(atoms, overlaps, symbol=material.symbol, distance=0.5 * material.d_nn)
    result = engine.relax(cleaned, anneal=anneal, settings=settings)
    _, e_coh = engine.pot.properties()
    out = cleaned.copy()
    out.positions = result.positions
    out.arrays["energy"] = result.energies
    out.info.update({
        "energy_eV": result.energy,
        "iterations": result.iterations,
        "fmax_eV_A": result.fmax,
        "relax_s": result.wall_s,
        "upper_dz_A": result.upper_dz,
        "merged_atoms": merged,
        "md_steps": result.md_steps,
    })
    if "n_plane" in out.info:
        out.info["gamma_J_m2"] = gb_energy(out, result.energies, e_coh)
        out.info["n_frac"] = atom_fraction(out)
    return out
