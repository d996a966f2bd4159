"""Reading, checking and cleaning structures before they reach LAMMPS."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.neighborlist import neighbor_list

from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.errors import InputError

NN_DISTANCE_W = TUNGSTEN.d_nn           # Å
OVERLAP_DISTANCE = 0.5 * NN_DISTANCE_W


def read_structure(path: str | Path) -> Atoms:
    """Read one structure (any ASE format; extended XYZ keeps regions and GB metadata)."""
    from ase.io import read
    path = Path(path)
    if not path.exists():
        raise InputError(f"structure file not found: {path}")
    if not path.is_file():
        raise InputError(f"not a file: {path}")
    try:
        atoms = read(path)
    except PermissionError as exc:
        raise InputError(f"cannot read {path}: permission denied") from exc
    except Exception as exc:  # ASE raises many types for malformed files
        raise InputError(f"cannot parse {path} as a structure: {exc}") from exc
    if isinstance(atoms, list):
        atoms = atoms[-1]
    return atoms


def validate(atoms: Atoms, symbol: str = TUNGSTEN.symbol) -> Atoms:
    """Check elements, cell and positions; wrap periodic axes. Returns a checked copy."""
    if len(atoms) == 0:
        raise InputError("structure has no atoms")
    others = sorted(set(atoms.get_chemical_symbols()) - {symbol})
    if others:
        raise InputError(f"only {symbol} is supported by this potential; found {', '.join(others)}")
    cell = atoms.cell.array
    if atoms.cell.rank < 3:
        raise InputError("structure needs a full 3D cell (vacuum included along non-periodic z)")
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
        raise InputError("only orthorhombic cells are supported (twist GB slabs are)")
    out = atoms.copy()
    lengths = np.diag(cell)
    pos = out.positions
    if not np.all(np.isfinite(pos)):
        raise InputError("structure has non-finite coordinates")
    for axis in range(3):
        if out.pbc[axis]:
            pos[:, axis] = np.mod(pos[:, axis], lengths[axis])
        else:
            outside = (pos[:, axis] < 0) | (pos[:, axis] >= lengths[axis])
            if outside.any():
                raise InputError(f"{int(outside.sum())} atom(s) outside the cell along the "
                                 f"non-periodic axis {'xyz'[axis]} (0–{lengths[axis]:.3f} Å)")
    out.positions = pos
    return out


def merge_overlaps(atoms: Atoms, distance: float = OVERLAP_DISTANCE) -> tuple[Atoms, int]:
    """Merge atoms closer than ``distance`` Å into one (periodic-aware).

    A free atom overlapping a fixed one is dropped (the fixed grain is kept exactly);
    two free atoms become one at their midpoint. Returns the cleaned copy and the number of
    atoms removed.
    """
    i, j, D = neighbor_list("ijD", atoms, distance)
    keep = i < j
    i, j, D = i[keep], j[keep], D[keep]
    if len(i) == 0:
        return atoms, 0
    region = atoms.arrays.get("region")
    fixed = np.isin(region, FIXED_REGIONS) if region is not None else np.zeros(len(atoms), bool)
    pos = atoms.positions.copy()
    removed = np.zeros(len(atoms), bool)
    for a, b, d in zip(i, j, D):
        if removed[a] or removed[b]:
            continue
        if fixed[a] and fixed[b]:
            raise InputError(f"fixed atoms {a} and {b} overlap ({np.linalg.norm(d):.2f} Å): "
                             "the bulk grains themselves are corrupt")
        if fixed[b]:
            a, b, d = b, a, -d
        if not fixed[a]:
            pos[a] = pos[a] + 0.5 * d      # midpoint, along the minimum-image vector
        removed[b] = True
    out = atoms.copy()
    out.positions = pos
    out.wrap()
    del out[np.flatnonzero(removed)]
    return out, int(removed.sum())


def prepare(atoms: Atoms, overlaps: str = "merge", symbol: str = TUNGSTEN.symbol,
            distance: float = OVERLAP_DISTANCE) -> tuple[Atoms, int]:
    """Validate and clean a candidate of element ``symbol``: ``overlaps`` is 'merge' or 'reject'
    for atoms closer than ``distance`` Å (default half W's d_nn)."""
    out = validate(atoms, symbol)
    if overlaps not in ("merge", "reject"):
        raise InputError(f"overlaps must be 'merge' or 'reject', got {overlaps!r}")
    cleaned, n = merge_overlaps(out, distance)
    if n and overlaps == "reject":
        raise InputError(f"{n} overlapping atom pair(s) closer than {distance:.2f} Å; "
                         "rejected (use overlaps='merge' to merge them)")
    return cleaned, n
