"""Twist bicrystal slabs of a BCC metal with fixed bulk grains (SPEC §2.2).

Along z, bottom to top: vacuum | fixed grain A | free A | GB | free B | fixed grain B | vacuum.
Each grain is a stack of bulk (002) planes (spacing a/2); x and y span the square CSL cell
(or an integer supercell of it) and are periodic. The regions are stored per atom in
``atoms.arrays["region"]`` and the geometry in ``atoms.info`` so that γ_GB and [n] can be
computed from the structure alone, also after a round trip through extended XYZ.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from gbsearch.geometry.csl import DEFAULT_MISORIENTATION, TwistCSL, as_boundary, find_twist_csl
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.errors import InputError

# Old names of the W constants (gbsearch.geometry.material is their home).
A0_W = TUNGSTEN.a0          # Å, BCC lattice constant of the Zhou 2004 W potential
SYMBOL = TUNGSTEN.symbol

# Region codes in atoms.arrays["region"].
FIXED_LOWER, FREE_LOWER, FREE_UPPER, FIXED_UPPER = 1, 2, 3, 4
FIXED_REGIONS = (FIXED_LOWER, FIXED_UPPER)
UPPER_REGIONS = (FREE_UPPER, FIXED_UPPER)


@functools.lru_cache(maxsize=256)
def _plane_sites(rotation: float, parity: int, edge: float, a0: float) -> np.ndarray:
    """In-plane positions (Å) of one (002) plane of a grain rotated by ``rotation`` (rad),
    inside the square cell [0, edge)^2 (edge in Å). Odd planes carry the body-centre offset.

    Cached (read-only result): a campaign builds one slab per candidate, and enumerating the
    sites was 60 % of a 28 ms slab build, the largest per-candidate cost beside the network
    when generating on a GPU."""
    c, s = math.cos(rotation), math.sin(rotation)
    reach = int(math.ceil(edge * math.sqrt(2) / a0)) + 2
    i, j = np.meshgrid(np.arange(-reach, reach + 1), np.arange(-reach, reach + 1), indexing="ij")
    u = np.stack([i.ravel(), j.ravel()], axis=1).astype(float) + 0.5 * parity
    xy = a0 * (u @ np.array([[c, s], [-s, c]]))
    frac = xy / edge
    eps = 1e-9
    frac = frac - np.floor(frac + eps)        # sites on the far edge wrap to 0
    keep = np.all((frac > -eps) & (frac < 1.0 - eps), axis=1)
    out = frac[keep] * edge
    out[np.abs(out) < 1e-7] = 0.0
    # Wrapping can bring two images of one site together: keep each site once.
    key = np.round(out / 1e-5).astype(np.int64)
    _, first = np.unique(key, axis=0, return_index=True)
    out = out[np.sort(first)]
    out.setflags(write=False)
    return out


def twist_bicrystal(misorientation: float | TwistCSL = DEFAULT_MISORIENTATION, replicate: tuple[int, int] = (1, 1),
                    n_fixed: int = 8, n_free: int = 8, vacuum: float = 10.0,
                    shift: tuple[float, float] = (0.0, 0.0), gap: float = 0.0,
                    a0: float = A0_W, symbol: str = SYMBOL) -> Atoms:
    """Build a <100> twist bicrystal slab.

    misorientation: the boundary (a :class:`TwistCSL`) or its twist angle in degrees, which
        must be a CSL angle (e.g. 36.87 for Σ5); 0 gives a perfect-crystal reference slab with
        the same layout (Σ5 cell).
    replicate: in-plane supercell (i, j) of the CSL cell.
    n_fixed, n_free: numbers of (002) planes per grain held fixed / free to relax.
    vacuum: Å of vacuum below and above the slab.
    shift: in-plane translation (Å) of the upper grain.
    gap: extra spacing (Å) between the grains on top of the bulk plane spacing a0/2.
    """
    i_rep, j_rep = (int(v) for v in replicate)
    if i_rep < 1 or j_rep < 1:
        raise InputError(f"replicate must be positive integers, got {replicate}")
    if n_fixed < 1 or n_free < 1:
        raise InputError("n_fixed and n_free must be at least 1 plane each")
    if not isinstance(misorientation, TwistCSL) and float(misorientation) % 90.0 == 0.0:
        csl = find_twist_csl(DEFAULT_MISORIENTATION)
        edge_a, rot_lower, _ = csl.frame
        rot_upper = rot_lower
        sigma, angle = 1, 0.0
    else:
        csl = as_boundary(misorientation)
        edge_a, rot_lower, rot_upper = csl.frame
        sigma, angle = csl.sigma, csl.angle_deg
    edge = edge_a * a0
    lx, ly = edge * i_rep, edge * j_rep
    d = a0 / 2.0
    n_plane = csl.sigma * i_rep * j_rep

    positions, regions = [], []
    n_per_grain = n_fixed + n_free
    for k in range(2 * n_per_grain):
        upper = k >= n_per_grain
        rot = rot_upper if upper else rot_lower
        sites = _plane_sites(rot, k % 2, edge, a0)
        if len(sites) != csl.sigma:
            raise AssertionError(f"plane {k}: {len(sites)} sites, expected Σ={csl.sigma}")
        tiles = [sites + np.array([ii * edge, jj * edge]) for ii in range(i_rep) for jj in range(j_rep)]
        xy = np.concatenate(tiles)
        if upper:
            xy = np.mod(xy + np.asarray(shift, dtype=float), [lx, ly])
        z = vacuum + k * d + (gap if upper else 0.0)
        positions.append(np.column_stack([xy, np.full(len(xy), z)]))
        if k < n_fixed:
            code = FIXED_LOWER
        elif k < n_per_grain:
            code = FREE_LOWER
        elif k < n_per_grain + n_free:
            code = FREE_UPPER
        else:
            code = FIXED_UPPER
        regions.append(np.full(len(xy), code))

    pos = np.concatenate(positions)
    lz = 2 * vacuum + (2 * n_per_grain - 1) * d + gap
    # Atomic numbers, not a formula string "WWW…", which ASE parses (a quarter of the build).
    atoms = Atoms(numbers=np.full(len(pos), atomic_numbers[symbol]), positions=pos, cell=[lx, ly, lz],
                  pbc=[True, True, False])
    atoms.arrays["region"] = np.concatenate(regions).astype(np.int32)
    atoms.info.update(slab_info(angle, sigma, a0, d, n_plane, n_free, (i_rep, j_rep), shift,
                                vacuum + (n_per_grain - 0.5) * d + 0.5 * gap))
    return atoms


def slab_info(misorientation: float, sigma: int, a0: float, plane_spacing: float, n_plane: int,
              n_free: int, replicate: tuple[int, int], shift, gb_z: float) -> dict:
    """The ``atoms.info`` GB metadata every slab builder writes (γ, [n], the relaxation and the
    voxel window read it back): angles in degrees, lengths in Å, ``n_free`` planes per grain."""
    return {
        "misorientation_deg": misorientation,
        "sigma": sigma,
        "a0": a0,
        "plane_spacing": plane_spacing,
        "n_plane": n_plane,
        "n_free_bulk": 2 * n_free * n_plane,
        "replicate": f"{replicate[0]} {replicate[1]}",
        "shift": f"{float(shift[0])!r} {float(shift[1])!r}",
        "gb_z": gb_z,
    }


def describe(atoms: Atoms) -> str:
    """One-paragraph human summary of a slab built by :func:`twist_bicrystal`."""
    info = atoms.info
    region = atoms.arrays["region"]
    lx, ly, lz = atoms.cell.lengths()
    counts = {name: int(np.sum(region == code)) for name, code in
              (("fixed A", FIXED_LOWER), ("free A", FREE_LOWER), ("free B", FREE_UPPER), ("fixed B", FIXED_UPPER))}
    sig = f"Σ{info['sigma']}" if info["sigma"] > 1 else "perfect crystal (0°)"
    return (f"{sig} <100> twist, misorientation {info['misorientation_deg']:.4f}°, "
            f"replicate {info['replicate']}\n"
            f"cell {lx:.4f} x {ly:.4f} x {lz:.4f} Å (GB area {lx * ly:.3f} Å²)\n"
            f"atoms {len(atoms)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n"
            f"N_plane {info['n_plane']}, N_free,bulk {info['n_free_bulk']}")
