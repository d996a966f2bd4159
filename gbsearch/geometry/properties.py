"""GB energy γ_GB (paper Eq. 7) and atom fraction [n] (paper Eq. 8), SPEC §2.2–2.3."""
from __future__ import annotations

import numpy as np
from ase import Atoms

from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.errors import InputError

EV_PER_A2_TO_J_PER_M2 = 16.0218
SURFACE_CLEARANCE = 8.0 + 0.5   # Å: potential cutoff plus margin; atoms this far from both
                                 # free surfaces have bulk-like neighbourhoods except for the GB


def _require(atoms: Atoms, *keys: str) -> None:
    missing = [k for k in keys if k not in atoms.info]
    if missing:
        raise InputError(f"structure lacks GB metadata {missing}: build it with "
                         "gbsearch.geometry.bicrystal.twist_bicrystal (or `gbsearch build`)")


def n_free(atoms: Atoms) -> int:
    """Number of atoms outside the fixed grains."""
    if "region" not in atoms.arrays:
        raise InputError("structure has no per-atom 'region' array (fixed/free grains)")
    return int(np.sum(~np.isin(atoms.arrays["region"], FIXED_REGIONS)))


def atom_fraction(atoms: Atoms) -> float:
    """[n] = ((N_free - N_free,bulk) / N_plane) mod 1, in [0, 1)."""
    _require(atoms, "n_plane", "n_free_bulk")
    n_plane = int(atoms.info["n_plane"])
    excess = n_free(atoms) - int(atoms.info["n_free_bulk"])
    return (excess % n_plane) / n_plane


def energy_region(atoms: Atoms, clearance: float = SURFACE_CLEARANCE) -> np.ndarray:
    """Mask of atoms at least ``clearance`` Å from both free surfaces: the region of Eq. 7."""
    z = atoms.positions[:, 2]
    mask = (z > z.min() + clearance) & (z < z.max() - clearance)
    if not mask.any():
        raise InputError("slab too thin: no atoms farther than "
                         f"{clearance} Å from both surfaces; use thicker fixed grains")
    return mask


def gb_energy(atoms: Atoms, energies: np.ndarray, e_coh: float,
              clearance: float = SURFACE_CLEARANCE) -> float:
    """γ_GB in J/m² from per-atom energies (eV) and the bulk energy per atom e_coh (eV)."""
    mask = energy_region(atoms, clearance)
    lx, ly = atoms.cell.lengths()[:2]
    area = lx * ly * np.sin(np.radians(atoms.cell.angles()[2]))
    excess = float(np.sum(energies[mask]) - mask.sum() * e_coh)
    return excess / area * EV_PER_A2_TO_J_PER_M2
