"""Minimum-image convention for orthorhombic cells (NumPy only).

One function for every place that needs the shortest periodic copy of a difference vector:
the voxel round-trip metrics and decoder merging, synthetic training structures, the
reference search's atom insertion.
"""
from __future__ import annotations

import numpy as np


def minimum_image(d, lengths, periodic) -> np.ndarray:
    """Difference vectors ``d`` (..., 3) in Å mapped to their minimum image.

    lengths: the 3 cell edges (Å) of an orthorhombic cell; periodic: 3 bools, True where the
    axis wraps (open axes are left alone). Each periodic component ends in [-L/2, L/2]
    (ties follow ``np.round``: half-way goes to the even multiple). Returns a new float
    array; ``d`` is not modified.
    """
    d = np.array(d, dtype=float, copy=True)
    L = np.asarray(lengths, dtype=float)
    per = np.asarray(periodic, dtype=bool)
    if L.shape != (3,) or per.shape != (3,) or d.shape[-1:] != (3,):
        raise ValueError(f"minimum_image needs d (..., 3), 3 lengths and 3 periodic flags; got "
                         f"{d.shape}, {L.shape}, {per.shape}")
    d[..., per] -= L[per] * np.round(d[..., per] / L[per])
    return d
