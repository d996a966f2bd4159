"""Public relaxation API: ``relax(atoms) -> relaxed Atoms`` with γ_GB and [n] in ``info``."""
from __future__ import annotations

import functools
import os

from ase import Atoms

from gbsearch.geometry.properties import atom_fraction, gb_energy
from gbsearch.relaxation.engine import AnnealSettings, RelaxSettings, shared_engine
from gbsearch.relaxation.checks import prepare


@functools.lru_cache(maxsize=4)
def bulk_reference(potential: str | None = None) -> tuple[float, float]:
    """(a0 in Å, E_coh in eV/atom) of BCC W for the potential, computed once per process."""
    return shared_engine(potential).bulk_bcc()


def relax(atoms: Atoms, settings: RelaxSettings | None = None, anneal: AnnealSettings | None = None,
          overlaps: str = "merge", potential: str | os.PathLike | None = None) -> Atoms:
    """Relax a GB slab with LAMMPS CG and return a new relaxed ``Atoms``.

    ``info`` gets ``gamma_J_m2`` (J/m²), ``n_frac`` ([n] in [0, 1)), ``energy_eV``,
    ``iterations``, ``fmax_eV_A``, ``relax_s``, ``upper_dz_A``, ``md_steps`` (of the anneal, if
    any: 0 when none ran, e.g. with fewer than two free atoms) and ``merged_atoms``; per-atom
    energies (eV) go to ``arrays["energy"]``. Overlapping atoms are merged (or rejected).
    """
    cleaned, merged = prepare(atoms, overlaps)
    engine = shared_engine(potential)
    result = engine.relax(cleaned, anneal=anneal, settings=settings)
    _, e_coh = bulk_reference(str(engine.potential))
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
