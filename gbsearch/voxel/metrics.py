"""Round-trip checks: does a decoded structure have the right atoms in the right places?"""
from __future__ import annotations

import numpy as np

from gbsearch.geometry.periodic import minimum_image
from gbsearch.voxel.grid import VoxelGrid


def atoms_in_grid(ref: np.ndarray, grid: VoxelGrid):
    """Split reference atoms (N, 3) Å by what the voxels can hold along open axes.

    required: between the first and last voxel centres (all their weight is in the grid);
    optional: partly in the grid (within one voxel of the box edge); others are outside.
    """
    o, L, h = np.array(grid.origin), np.array(grid.lengths), np.array(grid.spacing)
    req = np.ones(len(ref), bool)
    opt = np.zeros(len(ref), bool)
    for k in range(3):
        if grid.periodic[k]:
            continue
        z = ref[:, k] - o[k]
        full = (z >= 0.5 * h[k]) & (z <= L[k] - 0.5 * h[k])
        part = (z > -0.5 * h[k]) & (z < L[k] + 0.5 * h[k]) & ~full
        opt |= req & part
        req &= full
    return req, opt & ~req


def compare(ref: np.ndarray, pred: np.ndarray, grid: VoxelGrid, tol: float = 0.7) -> dict:
    """Match decoded atoms to reference atoms (one-to-one, minimum image, ≤ tol Å).

    ``exact`` is True when every required reference atom has a partner and every decoded atom
    is matched (a decoded atom matched to an optional edge atom is neither required nor extra).
    ``sq_err`` sums squared distances (Å²) over matched required atoms, ``n`` counts them.
    """
    from scipy.optimize import linear_sum_assignment

    req, opt = atoms_in_grid(ref, grid)
    keep = req | opt
    r = ref[keep]
    is_req = req[keep]
    n_req = int(is_req.sum())
    if len(r) == 0 or len(pred) == 0:
        return {"exact": n_req == 0 and len(pred) == 0, "sq_err": 0.0, "n": 0,
                "missing": n_req, "extra": len(pred)}
    d = np.linalg.norm(minimum_image(r[:, None, :] - pred[None, :, :], grid.lengths, grid.periodic), axis=-1)
    cost = np.where(d <= tol, d, 1e6)
    ri, pi = linear_sum_assignment(cost)
    ok = cost[ri, pi] < 1e6
    ri, pi = ri[ok], pi[ok]
    matched_req = is_req[ri]
    missing = n_req - int(matched_req.sum())
    extra = len(pred) - len(pi)
    return {"exact": missing == 0 and extra == 0, "sq_err": float((d[ri, pi][matched_req] ** 2).sum()),
            "n": int(matched_req.sum()), "missing": missing, "extra": extra}


def summarize(results: list[dict]) -> dict:
    """Fraction of exact round trips and position RMSE (Å) over matched atoms."""
    n = sum(r["n"] for r in results)
    return {"exact_frac": float(np.mean([r["exact"] for r in results])) if results else float("nan"),
            "rmse": float(np.sqrt(sum(r["sq_err"] for r in results) / max(n, 1))),
            "n_structures": len(results),
            "missing": int(sum(r["missing"] for r in results)),
            "extra": int(sum(r["extra"] for r in results))}
