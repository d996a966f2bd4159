"""CSL bicrystals of a cubic lattice from a GB plane and a rotation axis (issue #19).

Two kinds of boundary:

* **symmetric tilt** about ``axis`` (axis ⟂ plane normal): the upper grain is the mirror
  image of the lower grain across the GB plane (hkl). For a centrosymmetric cubic lattice
  the mirror equals the 180° rotation about [hkl], so Σ follows from the plane alone:
  Σ = h²+k²+l², halved while even (Σ5 (210)/(310), Σ27 (552), Σ3 (111)/(112)). The tilt
  axis only orients the cell (x along the axis) and names the boundary; the misorientation
  about it is reported.
* **twist** about the plane normal (axis ∥ normal) by a CSL angle, snapped to the nearest
  exact coincidence angle within :data:`ANGLE_TOLERANCE_DEG`.

Both are built the same way: the in-plane coincidence lattice (lattice vectors of the lower
grain in the plane that are also lattice vectors of the upper grain) is searched up to
``max_edge`` Å, the smallest orthogonal pair gives the orthorhombic periodic cell (x, y), and
each grain is filled from its 3D lattice in whole atomic planes (hkl) along z.

Definitions (also written into ``atoms.info``):

* ``plane_spacing`` d: spacing of neighbouring atomic (hkl) planes of the Bravais lattice.
* ``n_plane``: atoms in **one atomic (hkl) plane** of the (replicated) cell. Every atomic plane
  of a Bravais lattice is a translate of every other, so each holds exactly ``n_plane``
  atoms and removing any one plane changes N_free by ``n_plane``: [n] =
  ((N_free − N_free,bulk)/N_plane) mod 1 is invariant to it. For (001) of BCC this is the
  twist builder's Σ·i·j per (002) plane.
* For symmetric tilt the mirror plane holds an atomic plane (the upper grain's first); on
  planes of small spacing the unshifted mirror puts atom pairs across it closer than
  0.5 d_nn, which :func:`gbsearch.relaxation.relax.relax` merges (``merged_atoms``) as it
  does for any candidate.
* ``planes_per_period``: atomic planes in one orthorhombic repeat along the normal
  (``period_A`` Å); the orthorhombic bulk cell holds ``n_plane * planes_per_period`` atoms.

Lattice coordinates are kept as integers in units of a0/2 ("doubled" coordinates) so every
membership and coincidence test is exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import reduce

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_LOWER, FIXED_UPPER, FREE_LOWER, FREE_UPPER, slab_info
from gbsearch.geometry.boundary import grain_planes
from gbsearch.geometry.material import TUNGSTEN

MAX_EDGE = 40.0                 # Å: default largest in-plane cell edge searched
MAX_SIGMA = 1000
ANGLE_TOLERANCE_DEG = 0.02

# Lattice generators in doubled coordinates (units of a0/2).
_GENERATORS = {
    "sc": [(2, 0, 0), (0, 2, 0), (0, 0, 2)],
    "bcc": [(2, 0, 0), (0, 2, 0), (0, 0, 2), (1, 1, 1)],
    "fcc": [(1, 1, 0), (1, 0, 1), (0, 1, 1)],
}


def _is_member(v: np.ndarray, lattice: str) -> np.ndarray:
    """Which rows of integer array ``v`` (doubled coords) are lattice translations."""
    v = np.asarray(v, dtype=np.int64)
    if lattice == "sc":
        return np.all(v % 2 == 0, axis=-1)
    if lattice == "bcc":
        p = v % 2
        return np.all(p == p[..., :1], axis=-1)
    if lattice == "fcc":
        return v.sum(axis=-1) % 2 == 0
    raise InputError(f"unknown lattice {lattice!r}: use sc, bcc or fcc")


def _fmt(v) -> str:
    return " ".join(str(int(x)) for x in v)


def parse_direction(text) -> tuple[int, int, int]:
    """'1,-1,0' / '1 -1 0' / (1, -1, 0) -> coprime integer triple (not all zero)."""
    if isinstance(text, str):
        parts = text.replace(",", " ").split()
    else:
        parts = list(text)
    try:
        vals = [int(p) for p in parts]
        if any(float(p) != int(float(p)) for p in parts):
            raise ValueError
    except (TypeError, ValueError):
        raise InputError(f"a direction/plane is three integers like 1,-1,0; got {text!r}") from None
    if len(vals) != 3 or not any(vals):
        raise InputError(f"a direction/plane is three integers, not all zero; got {text!r}")
    g = reduce(math.gcd, (abs(v) for v in vals))
    return tuple(v // g for v in vals)


def _sigma_of(q: np.ndarray) -> int:
    """Σ of a rational orthogonal matrix (crystal frame): its smallest common denominator."""
    for s in range(1, MAX_SIGMA + 1):
        m = s * q
        if np.abs(m - np.round(m)).max() < 1e-7:
            return s
    raise InputError(f"misorientation is not a coincidence rotation with Σ ≤ {MAX_SIGMA}")


def _rotation(axis: np.ndarray, theta: float) -> np.ndarray:
    k = axis / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(theta) * kx + (1 - math.cos(theta)) * kx @ kx


def _in_plane_vectors(normal: np.ndarray, lattice: str, reach: int) -> np.ndarray:
    """All lattice translations (doubled coords) in the plane ⟂ normal with |v|_∞ ≤ reach."""
    r = np.arange(-reach, reach + 1)
    nx, ny, nz = (int(c) for c in normal)
    # Solve for one coordinate with a non-zero normal component to stay 2D.
    order = np.argsort(-np.abs(normal))
    i0, i1, i2 = (int(c) for c in order)
    a, b = np.meshgrid(r, r, indexing="ij")
    a, b = a.ravel(), b.ravel()
    num = -(normal[i1] * a + normal[i2] * b)
    ok = num % normal[i0] == 0
    v = np.zeros((int(ok.sum()), 3), dtype=np.int64)
    v[:, i1], v[:, i2] = a[ok], b[ok]
    v[:, i0] = num[ok] // normal[i0]
    v = v[_is_member(v, lattice) & np.any(v != 0, axis=1)]
    return v


@dataclass(frozen=True)
class GBGeometry:
    """A CSL bicrystal geometry (lengths in Å where stated, else in units of a0)."""
    kind: str                   # "tilt", "twist" or "perfect"
    lattice: str
    axis: tuple[int, int, int]
    plane: tuple[int, int, int]
    sigma: int
    misorientation_deg: float   # rotation angle about ``axis`` relating the grains (mod cubic symmetry)
    t1: tuple[int, int, int]    # cell x, lattice vector (doubled coords), lower grain frame
    t2: tuple[int, int, int]    # cell y
    q: tuple                    # 3x3 crystal-frame map from lower to upper grain lattice
    n_plane_1x1: int
    planes_per_period: int
    spacing_a0: float           # atomic plane spacing / a0
    period_a0: float            # orthorhombic period along the normal / a0

    @property
    def label(self) -> str:
        hkl = "".join(str(v) for v in self.plane)
        uvw = "".join(str(v) for v in self.axis)
        if self.kind == "perfect":
            return f"perfect crystal ({hkl})"
        if self.kind == "twist":
            return f"Σ{self.sigma} ({hkl}) twist {self.misorientation_deg:.2f}°"
        return f"Σ{self.sigma} ({hkl})[{uvw}] symmetric tilt {self.misorientation_deg:.2f}°"

    def edges(self, a0: float) -> tuple[float, float]:
        """In-plane cell edges (Å) of the 1×1 cell."""
        return (0.5 * a0 * float(np.linalg.norm(self.t1)), 0.5 * a0 * float(np.linalg.norm(self.t2)))

    def n_plane(self, replicate: tuple[int, int] = (1, 1)) -> int:
        return self.n_plane_1x1 * int(replicate[0]) * int(replicate[1])

    # -- the search's view of a boundary (gbsearch.geometry.boundary.Boundary) --------------
    @property
    def name(self) -> str:
        return self.label

    def plane_spacing(self, a0: float) -> float:
        return self.spacing_a0 * a0

    def default_planes(self, a0: float) -> int:
        return grain_planes(self.spacing_a0)

    def slab(self, replicate=(1, 1), n_fixed: int | None = None, n_free: int | None = None, shift=(0.0, 0.0),
             gap: float = 0.0, a0: float = TUNGSTEN.a0, symbol: str = TUNGSTEN.symbol) -> Atoms:
        """:func:`csl_bicrystal` of this geometry."""
        return csl_bicrystal(self, replicate=replicate, n_fixed=n_fixed, n_free=n_free, shift=shift, gap=gap,
                             a0=a0, symbol=symbol)

    def frame(self) -> np.ndarray:
        """Rows: lab x, y, z as unit vectors in the lower grain's crystal frame."""
        ex = np.array(self.t1, float) / np.linalg.norm(self.t1)
        ez = np.array(self.plane, float) / np.linalg.norm(self.plane)
        return np.array([ex, np.cross(ez, ex), ez])


def _misorientation_about(axis: np.ndarray, q: np.ndarray) -> float:
    """Smallest rotation angle (deg) about ``axis`` mapping the lower lattice onto the upper:
    R(θ) = q·P for a cubic point operation P, det(R) = +1 (None when no such θ: returns the
    smallest disorientation angle instead)."""
    import itertools
    k = axis / np.linalg.norm(axis)
    best = None
    any_best = None
    for perm in itertools.permutations(range(3)):
        for signs in itertools.product((1, -1), repeat=3):
            p = np.zeros((3, 3))
            for i, (j, s) in enumerate(zip(perm, signs)):
                p[i, j] = s
            r = q @ p
            if np.linalg.det(r) < 0:
                continue
            ang = math.degrees(math.acos(max(-1.0, min(1.0, (np.trace(r) - 1) / 2))))
            any_best = ang if any_best is None else min(any_best, ang)
            if ang < 1e-6:
                return 0.0
            w = np.array([r[2, 1] - r[1, 2], r[0, 2] - r[2, 0], r[1, 0] - r[0, 1]])
            if np.linalg.norm(w) < 1e-9:       # 180°: axis from r + I
                m = r + np.eye(3)
                w = m[np.argmax(np.linalg.norm(m, axis=0))]
            if abs(abs(np.dot(w / np.linalg.norm(w), k)) - 1) < 1e-6:
                best = ang if best is None else min(best, ang)
    return best if best is not None else any_best


def find_gb(plane, axis=None, twist: bool = False, angle: float | None = None,
            lattice: str = "bcc", a0: float = TUNGSTEN.a0, max_edge: float = MAX_EDGE,
            perfect: bool = False, tolerance_deg: float = ANGLE_TOLERANCE_DEG) -> GBGeometry:
    """The CSL geometry of a symmetric tilt (``axis`` ⟂ plane) or twist (``twist=True``, axis
    = plane normal, ``angle`` in degrees) boundary on ``plane`` (hkl), with the smallest
    orthorhombic in-plane cell whose edges are ≤ ``max_edge`` Å (else :class:`InputError`).
    ``perfect=True`` gives the same cell with both grains in the same orientation (Σ1)."""
    n = np.array(parse_direction(plane), dtype=np.int64)
    if lattice not in _GENERATORS:
        raise InputError(f"unknown lattice {lattice!r}: use sc, bcc or fcc")
    if axis is None:
        ax = n.copy() if twist else None
    else:
        ax = np.array(parse_direction(axis), dtype=np.int64)
    if ax is None:
        raise InputError("give a rotation axis (tilt: ⟂ the plane normal) or twist=True")
    parallel = not np.any(np.cross(ax, n))
    if twist and not parallel:
        raise InputError(f"a twist boundary's axis is the plane normal: axis {_fmt(ax)} is not ∥ ({_fmt(n)})")
    if not twist and not parallel and int(np.dot(ax, n)) != 0:
        raise InputError(f"symmetric tilt needs the axis ⟂ the plane normal: [{_fmt(ax)}]·({_fmt(n)}) ≠ 0")
    if not twist and parallel:
        raise InputError("axis ∥ plane normal is a twist boundary: pass twist=True (CLI --twist) and an angle")
    nf = n.astype(float)
    if perfect:
        q = np.eye(3)
        kind = "perfect"
    elif twist:
        if angle is None:
            raise InputError("a twist boundary needs a misorientation angle (degrees)")
        kind = "twist"
    else:
        q = np.eye(3) - 2.0 * np.outer(nf, nf) / float(nf @ nf)     # mirror across the plane
        kind = "tilt"

    reach = int(math.ceil(2.0 * max_edge / a0)) + 1
    vecs = _in_plane_vectors(n, lattice, reach)
    lengths2 = (vecs * vecs).sum(axis=1)
    limit2 = (2.0 * max_edge / a0) ** 2 + 1e-9
    vecs, lengths2 = vecs[lengths2 <= limit2], lengths2[lengths2 <= limit2]

    if kind == "twist":
        q, theta = _twist_rotation(nf, vecs, lengths2, float(angle), tolerance_deg, max_edge)
    qinv = q.T
    img = vecs @ qinv.T            # q^-1 v for each row (upper-grain coordinates)
    integral = np.abs(img - np.round(img)).max(axis=1) < 1e-7
    coincident = integral.copy()
    coincident[integral] = _is_member(np.round(img[integral]).astype(np.int64), lattice)
    csl = vecs[coincident]
    if len(csl) == 0:
        raise InputError(f"no coincidence vector ≤ {max_edge:g} Å in ({_fmt(n)}): not a CSL "
                         "boundary within that size (raise max_edge)")
    t1, t2 = _orthogonal_cell(csl, None if (twist or perfect and parallel) else ax, max_edge)
    sigma = 1 if kind == "perfect" else _sigma_of(q if np.linalg.det(q) > 0 else -q)
    if kind == "twist":
        mis = theta
    elif kind == "perfect":
        mis = 0.0
    else:
        mis = _misorientation_about(ax.astype(float), q)
    # Atomic plane spacing and planes per orthorhombic period along the normal.
    delta = reduce(math.gcd, (abs(int(np.dot(n, g))) for g in _GENERATORS[lattice]))
    nn = float(np.linalg.norm(nf))
    spacing = delta / (2.0 * nn)                 # in a0
    c = next(c for c in range(1, 3) if _is_member((c * n)[None, :], lattice)[0])   # c*n doubled
    period_doubled = c * int(n @ n)              # n·(c n) in doubled units
    planes = period_doubled // delta
    area = float(np.linalg.norm(np.cross(t1, t2))) / 4.0     # a0²
    atoms_per_volume = {"sc": 1, "bcc": 2, "fcc": 4}[lattice]
    n_cell = area * (c * nn / 2.0) * atoms_per_volume
    n_plane = n_cell / planes
    if abs(n_plane - round(n_plane)) > 1e-6:
        raise AssertionError(f"non-integer atoms per plane {n_plane}")
    return GBGeometry(kind=kind, lattice=lattice, axis=tuple(int(v) for v in ax),
                      plane=tuple(int(v) for v in n), sigma=int(sigma), misorientation_deg=float(mis),
                      t1=tuple(int(v) for v in t1), t2=tuple(int(v) for v in t2),
                      q=tuple(tuple(float(x) for x in row) for row in q),
                      n_plane_1x1=int(round(n_plane)), planes_per_period=int(planes),
                      spacing_a0=spacing, period_a0=c * nn / 2.0)


def _twist_rotation(n, vecs, lengths2, angle, tol, max_edge):
    """Exact CSL twist rotation about n closest to ``angle`` (deg): the angle between two
    in-plane lattice vectors of equal length whose rotation matrix is rational."""
    ez = n / np.linalg.norm(n)
    ref = vecs[0] / np.linalg.norm(vecs[0])
    ey = np.cross(ez, ref)
    phis = np.degrees(np.arctan2(vecs @ ey, vecs @ ref))
    want = angle % 360.0
    best = None
    for l2 in np.unique(lengths2):
        sel = phis[lengths2 == l2]
        d = (sel[:, None] - sel[None, :]) % 360.0
        for cand in np.unique(np.round(d[d > 1e-6], 8)):
            err = min(abs(cand - want), 360 - abs(cand - want))
            if err <= tol and (best is None or err < best[0] - 1e-9):
                best = (err, float(cand))
    if best is None:
        raise InputError(f"{angle:g}° is not a CSL twist angle about [{' '.join(str(int(v)) for v in n)}] "
                         f"with a coincidence vector ≤ {max_edge:g} Å (tolerance {tol}°)")
    theta = best[1]
    q = _rotation(n, math.radians(theta))
    _sigma_of(q)     # raises when irrational
    return q, theta


def _orthogonal_cell(csl: np.ndarray, axis, max_edge: float):
    """Smallest-area orthogonal pair of CSL vectors; with ``axis``, t1 ∥ axis."""
    order = np.argsort((csl * csl).sum(axis=1), kind="stable")
    csl = csl[order]
    if axis is not None:
        par = csl[~np.any(np.cross(csl, axis), axis=1) & (csl @ axis > 0)]
        if len(par) == 0:
            raise InputError(f"no lattice vector along the axis [{_fmt(axis)}] within {max_edge:g} Å")
        t1 = par[0]
        perp = csl[(csl @ t1) == 0]
        if len(perp) == 0:
            raise InputError(f"no orthorhombic cell with edges ≤ {max_edge:g} Å with x along [{_fmt(axis)}] "
                              "(raise max_edge / --max-edge)")
        return t1, perp[0]
    best = None
    m = csl[:400]                       # t1 among the shortest, t2 among all (both ≤ max_edge)
    dots = m @ csl.T
    l = np.sqrt((csl * csl).sum(axis=1))
    for i in range(len(m)):
        for j in np.flatnonzero(dots[i] == 0):
            key = (round(l[i] * l[j], 9), round(l[i], 9))
            if best is None or key < best[0]:
                best = (key, i, j)
    if best is None:
        raise InputError(f"no orthorhombic CSL cell with edges ≤ {max_edge:g} Å (raise max_edge / --max-edge)")
    return m[best[1]], csl[best[2]]


def _grain_sites(frame: np.ndarray, lattice: str, a0: float, lx: float, ly: float,
                 zlo: float, zhi: float) -> np.ndarray:
    """Lab positions (Å) of lattice points (lab = frame @ crystal) with z in [zlo, zhi],
    wrapped into [0, lx) × [0, ly) and deduplicated."""
    corners = np.array([[x, y, z] for x in (0, lx) for y in (0, ly) for z in (zlo, zhi)])
    crystal = corners @ frame / (0.5 * a0)          # frame^T · lab, doubled units
    lo = np.floor(crystal.min(axis=0)).astype(int) - 2
    hi = np.ceil(crystal.max(axis=0)).astype(int) + 2
    grid = np.stack(np.meshgrid(*[np.arange(a, b + 1) for a, b in zip(lo, hi)], indexing="ij"), -1).reshape(-1, 3)
    grid = grid[_is_member(grid, lattice)]
    lab = (grid * (0.5 * a0)) @ frame.T
    eps = 1e-6
    lab = lab[(lab[:, 2] > zlo - eps) & (lab[:, 2] < zhi + eps)]
    lab[:, 0] = np.mod(lab[:, 0], lx)
    lab[:, 1] = np.mod(lab[:, 1], ly)
    for k, L in ((0, lx), (1, ly)):
        lab[np.abs(lab[:, k] - L) < 1e-7, k] = 0.0
    lab[np.abs(lab) < 1e-9] = 0.0
    key = np.round(lab / 1e-4).astype(np.int64)
    _, first = np.unique(key, axis=0, return_index=True)
    return lab[np.sort(first)]


def csl_bicrystal(geometry: GBGeometry, replicate: tuple[int, int] = (1, 1),
                  n_fixed: int | None = None, n_free: int | None = None, vacuum: float = 10.0,
                  shift: tuple[float, float] = (0.0, 0.0), gap: float = 0.0,
                  a0: float = TUNGSTEN.a0, symbol: str = TUNGSTEN.symbol) -> Atoms:
    """Slab of the boundary ``geometry`` with the layout of
    :func:`gbsearch.geometry.bicrystal.twist_bicrystal`: vacuum | fixed A | free A | GB | free B |
    fixed B | vacuum, x and y periodic (the CSL cell times ``replicate``).

    n_fixed, n_free: atomic (hkl) planes per grain (default: enough for 4 a0 each, i.e. 8
    planes for (001) BCC). For symmetric tilt the GB plane is the mirror plane and holds an
    atomic plane (the first plane of the upper grain). Same ``atoms.info`` keys as the twist
    builder, plus gb_type, axis, plane, lattice, planes_per_period, period_A.
    """
    g = geometry
    i_rep, j_rep = (int(v) for v in replicate)
    if i_rep < 1 or j_rep < 1:
        raise InputError(f"replicate must be positive integers, got {replicate}")
    d = g.spacing_a0 * a0
    n_fixed = g.default_planes(a0) if n_fixed is None else int(n_fixed)
    n_free = g.default_planes(a0) if n_free is None else int(n_free)
    if n_fixed < 1 or n_free < 1:
        raise InputError("n_fixed and n_free must be at least 1 plane each")
    ex, ey = g.edges(a0)
    lx, ly = ex * i_rep, ey * j_rep
    frame = g.frame()
    frame_b = frame @ np.array(g.q)            # upper grain: lab = frame · q · lattice vector
    n_grain = n_fixed + n_free
    n_plane = g.n_plane((i_rep, j_rep))
    lower = _grain_sites(frame, g.lattice, a0, lx, ly, -n_grain * d, -d)
    upper = _grain_sites(frame_b, g.lattice, a0, lx, ly, 0.0, (n_grain - 1) * d)
    pos_list, reg_list = [], []
    for sites, is_upper in ((lower, False), (upper, True)):
        k = np.round(sites[:, 2] / d).astype(int)          # plane index, -n_grain..n_grain-1
        counts = np.bincount(k - k.min())
        if len(sites) != n_grain * n_plane or np.any(counts != n_plane):
            raise AssertionError(f"grain of {len(sites)} atoms, planes {counts.tolist()}, expected "
                                 f"{n_grain} planes of {n_plane}")
        layer = k + n_grain                                 # 0..2*n_grain-1 bottom to top
        if is_upper:
            sites = sites.copy()
            sites[:, :2] = np.mod(sites[:, :2] + np.asarray(shift, float), [lx, ly])
            sites[:, 2] += gap
            reg = np.where(layer < n_grain + n_free, FREE_UPPER, FIXED_UPPER)
        else:
            reg = np.where(layer < n_fixed, FIXED_LOWER, FREE_LOWER)
        sites = sites.copy()
        sites[:, 2] += vacuum + n_grain * d
        pos_list.append(sites)
        reg_list.append(reg)
    pos = np.concatenate(pos_list)
    order = np.lexsort((pos[:, 1], pos[:, 0], np.round(pos[:, 2], 6)))
    pos = pos[order]
    region = np.concatenate(reg_list)[order].astype(np.int32)
    lz = 2 * vacuum + (2 * n_grain - 1) * d + gap
    atoms = Atoms(symbol * len(pos), positions=pos, cell=[lx, ly, lz], pbc=[True, True, False])
    atoms.arrays["region"] = region
    atoms.info.update(slab_info(g.misorientation_deg, g.sigma, a0, d, n_plane, n_free, (i_rep, j_rep), shift,
                                vacuum + (n_grain - 0.5) * d + 0.5 * gap))
    atoms.info.update({
        "gb_type": g.kind,
        "axis": " ".join(str(v) for v in g.axis),
        "plane": " ".join(str(v) for v in g.plane),
        "lattice": g.lattice,
        "planes_per_period": g.planes_per_period,
        "period_A": g.period_a0 * a0,
    })
    return atoms


def describe_gb(atoms: Atoms, geometry: GBGeometry) -> str:
    """Summary of a slab from :func:`csl_bicrystal`: Σ, cell, N_plane."""
    info = atoms.info
    lx, ly, lz = atoms.cell.lengths()
    region = atoms.arrays["region"]
    counts = {name: int(np.sum(region == code)) for name, code in
              (("fixed A", FIXED_LOWER), ("free A", FREE_LOWER), ("free B", FREE_UPPER), ("fixed B", FIXED_UPPER))}
    t1 = " ".join(str(Fraction(v, 2)) for v in geometry.t1)
    t2 = " ".join(str(Fraction(v, 2)) for v in geometry.t2)
    return (f"{geometry.label} ({geometry.lattice}), Σ{info['sigma']}, replicate {info['replicate']}\n"
            f"cell x ∥ [{t1}], y ∥ [{t2}] (lower grain, units of a0); "
            f"{lx:.4f} x {ly:.4f} x {lz:.4f} Å (GB area {lx * ly:.3f} Å²)\n"
            f"atomic plane spacing {info['plane_spacing']:.4f} Å, {info['planes_per_period']} planes per "
            f"period {info['period_A']:.4f} Å\n"
            f"atoms {len(atoms)}: " + ", ".join(f"{k} {v}" for k, v in counts.items()) + "\n"
            f"N_plane {info['n_plane']} (atoms per atomic plane), N_free,bulk {info['n_free_bulk']}")
