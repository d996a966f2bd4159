"""Synthetic W structures for training and checking the voxel decoder (numpy only, Å).

Perfect and defective BCC cells, crystals rotated about z into periodic coincidence-site
(CSL) cells, free-surface slabs and windows around twist GBs (built by gbsearch.geometry.bicrystal). Every generator returns positions
(N, 3) in Å and an orthorhombic cell (3,) in Å; :func:`sample` pairs one with a voxel grid.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gbsearch.geometry.material import TUNGSTEN
from gbsearch.geometry.periodic import minimum_image
from gbsearch.voxel.grid import VoxelGrid

# BCC W lattice constant (Å) of the synthetic structures: TUNGSTEN.a0 rounded to SPEC's 3.1648,
# the value the shipped decoder was trained with (gbsearch/data/decoder_W.json), so that its
# training command still reproduces it.
A_W = round(TUNGSTEN.a0, 4)
NN_W = A_W * math.sqrt(3) / 2   # 2.74 Å nearest-neighbour distance
BASES = {
    "sc": np.zeros((1, 3)),
    "bcc": np.array([[0, 0, 0], [0.5, 0.5, 0.5]]),
    "fcc": np.array([[0, 0, 0], [0.5, 0.5, 0], [0.5, 0, 0.5], [0, 0.5, 0.5]]),
}
# (p, q): lattice vector (p, q, 0) of the crystal is turned onto x. Grain pairs (p,q)/(q,p)
# give the <100> twist CSL boundaries Σ5, Σ13, Σ17, Σ25, Σ29 with in-plane edge a·sqrt(p²+q²).
CSL_PQ = {5: (2, 1), 13: (3, 2), 17: (4, 1), 25: (4, 3), 29: (5, 2)}
GB_ANGLES = {5: 36.87, 13: 22.62, 17: 28.07, 25: 16.26, 29: 43.60}


def cubic_cell(reps=(3, 3, 3), a: float = A_W, lattice: str = "bcc"):
    """Conventional cubic crystal repeated ``reps`` times: (positions (N,3) Å, cell (3,) Å)."""
    basis = BASES[lattice]
    grid = np.stack(np.meshgrid(*[np.arange(r) for r in reps], indexing="ij"), -1).reshape(-1, 3)
    pos = (grid[:, None, :] + basis[None]).reshape(-1, 3) * a
    return pos, np.array(reps, float) * a


def rotated_cell(p: int, q: int, nz: int, a: float = A_W, lattice: str = "bcc"):
    """Crystal turned about z so that its (p, q, 0) vector lies on x; periodic orthorhombic cell
    of edges a·sqrt(p²+q²), a·sqrt(p²+q²), nz·a. Returns (positions, cell) in Å."""
    L = a * math.hypot(p, q)
    phi = math.atan2(q, p)
    c, s = math.cos(-phi), math.sin(-phi)
    R = np.array([[c, -s], [s, c]])
    m = p + q + 1
    ij = np.stack(np.meshgrid(np.arange(-m, m + 1), np.arange(-m, m + 1), np.arange(nz), indexing="ij"), -1).reshape(-1, 3)
    pts = (ij[:, None, :] + BASES[lattice][None]).reshape(-1, 3) * a
    xy = pts[:, :2] @ R.T
    eps = 1e-6
    keep = (xy[:, 0] >= -eps) & (xy[:, 0] < L - eps) & (xy[:, 1] >= -eps) & (xy[:, 1] < L - eps)
    pos = np.column_stack([xy[keep], pts[keep, 2]])
    pos[:, :2] = np.mod(pos[:, :2], L)
    expected = len(BASES[lattice]) * (p * p + q * q) * nz
    assert len(pos) == expected, (len(pos), expected)
    return pos, np.array([L, L, nz * a])


def min_image(d: np.ndarray, cell: np.ndarray, pbc) -> np.ndarray:
    """Minimum-image difference vectors (Å) for an orthorhombic cell (3 edges, Å; periodic
    where pbc): :func:`gbsearch.geometry.periodic.minimum_image` under its old name here."""
    return minimum_image(d, cell, pbc)


def perturb(pos, cell, pbc, rng: np.random.Generator, vacancy_frac=0.0, n_interstitial=0,
            noise=0.1, min_dist=2.2, region=None):
    """Random vacancies, interstitials (≥ min_dist Å from every atom) and Gaussian noise (Å).

    ``region`` = (zlo, zhi) limits vacancies and interstitials to that z range (e.g. near a GB).
    """
    pos = np.asarray(pos, float)
    zlo, zhi = region if region is not None else (-np.inf, np.inf)
    inreg = (pos[:, 2] >= zlo) & (pos[:, 2] < zhi)
    cand = np.flatnonzero(inreg)
    n_vac = rng.binomial(len(cand), vacancy_frac) if vacancy_frac > 0 else 0
    if n_vac:
        pos = np.delete(pos, rng.choice(cand, size=n_vac, replace=False), axis=0)
    lo = np.array([0.0, 0.0, max(zlo, pos[:, 2].min())])
    hi = np.array([cell[0], cell[1], min(zhi, pos[:, 2].max())])
    added = 0
    for _ in range(200 * max(n_interstitial, 1)):
        if added >= n_interstitial:
            break
        x = lo + rng.random(3) * (hi - lo)
        if np.min(np.linalg.norm(min_image(pos - x, cell, pbc), axis=1)) >= min_dist:
            pos = np.vstack([pos, x])
            added += 1
    if noise > 0:
        pos = pos + rng.normal(0.0, noise, pos.shape)
    return pos


def remove_close(pos, cell, pbc, min_dist: float, rng: np.random.Generator):
    """Delete atoms (randomly chosen of each close pair) until no pair is closer than min_dist Å."""
    pos = np.asarray(pos, float)
    while True:
        d = np.linalg.norm(min_image(pos[:, None] - pos[None], cell, pbc), axis=-1)
        np.fill_diagonal(d, np.inf)
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if d[i, j] >= min_dist:
            return pos
        pos = np.delete(pos, i if rng.random() < 0.5 else j, axis=0)


@dataclass
class Sample:
    """One structure and the grid it is voxelised on (positions in Å, lab frame)."""
    positions: np.ndarray
    grid: VoxelGrid
    kind: str


def sample(kind: str, rng: np.random.Generator, spacing: float = 0.5, a: float = A_W,
           sigma: int | None = None, replicate=(1, 1), window: float = 32.0, reps=None,
           noise: float = 0.1, max_interstitials: int = 3) -> Sample:
    """Draw one random W structure of ``kind`` with its grid.

    kinds: "cubic" (periodic BCC cell), "rotated" (periodic CSL-turned cell), "window" (z-window
    of open z cut from a rotated crystal: atoms cross the window edges), "surface" (free slab in
    vacuum, open z), "gb" (window of ``window`` Å around a <100> twist GB of random in-plane
    shift and gap, open z; vacancies and interstitials within 4 Å of the boundary).
    Defects: vacancies, interstitials ≥ 2.2 Å from others, 0.1 Å Gaussian noise.
    """
    vac = rng.uniform(0.0, 0.06)
    n_int = int(rng.integers(0, max_interstitials + 1))
    if sigma is None:
        sigma = int(rng.choice(list(CSL_PQ)))
    p, q = CSL_PQ[sigma]
    if kind == "cubic":
        r = tuple(int(x) for x in rng.integers(2, 5, size=3)) if reps is None else tuple(reps)
        pos, cell = cubic_cell(r, a)
        pbc = (True, True, True)
        pos = perturb(pos, cell, pbc, rng, vac, n_int, noise)
        return Sample(pos, VoxelGrid.for_box(cell, periodic=pbc, target_spacing=spacing), kind)
    if kind == "rotated":
        if rng.random() < 0.5:
            p, q = q, p
        pos, cell = rotated_cell(p, q, int(rng.integers(2, 5)), a)
        pbc = (True, True, True)
        pos = perturb(pos, cell, pbc, rng, vac, n_int, noise)
        return Sample(pos, VoxelGrid.for_box(cell, periodic=pbc, target_spacing=spacing), kind)
    if kind in ("window", "surface"):
        if rng.random() < 0.5:
            p, q = q, p
        nz = int(rng.integers(3, 6))
        pos, cell = rotated_cell(p, q, nz, a)
        pbc = (True, True, False)
        pos = perturb(pos, cell, pbc, rng, vac, n_int, noise)
        if kind == "window":
            # Window edges anywhere inside the crystal, so atoms straddle them.
            nvox = int(round(cell[2] * 0.6 / spacing))
            z0 = rng.uniform(0, cell[2] - nvox * spacing)
        else:
            nvox = int(round((cell[2] + 6.0) / spacing))
            z0 = -3.0 + rng.uniform(-1, 1)
        lengths = (cell[0], cell[1], nvox * spacing)
        g = VoxelGrid.for_box(lengths, origin=(0, 0, z0), periodic=pbc, target_spacing=spacing)
        return Sample(pos, g, kind)
    if kind == "gb":
        from gbsearch.geometry.bicrystal import twist_bicrystal   # the project's slab builder (SPEC §2.2)

        angle = GB_ANGLES[sigma]
        edge = a * math.hypot(p, q)
        rep = (2, 2) if edge < 10.0 and rng.random() < 0.5 else replicate
        at = twist_bicrystal(angle, replicate=rep, n_fixed=4, n_free=6, vacuum=6.0,
                             shift=tuple(rng.uniform(0, edge, 2)), gap=rng.uniform(-0.3, 0.5), a0=a)
        pos, cell, gb_z = at.positions.copy(), at.cell.lengths(), float(at.info["gb_z"])
        pbc = (True, True, False)
        # A random in-plane shift can stack atoms across the boundary: thin close pairs first.
        pos = remove_close(pos, cell, pbc, 2.2, rng)
        pos = perturb(pos, cell, pbc, rng, rng.uniform(0.0, 0.15), n_int, noise,
                      region=(gb_z - 4.0, gb_z + 4.0))
        nvox = int(round(window / spacing))
        z0 = gb_z - nvox * spacing / 2 + rng.uniform(-1, 1)
        g = VoxelGrid.for_box((cell[0], cell[1], nvox * spacing), origin=(0, 0, z0), periodic=pbc,
                              target_spacing=spacing)
        return Sample(pos, g, kind)
    raise ValueError(f"unknown sample kind {kind!r}")
