"""Coincidence-site-lattice (CSL) twist angles about <100> in cubic crystals.

A rotation by theta about [001] maps the square (001) lattice onto itself at coincidence
sites when tan(theta/2) = n/m with coprime integers m > n > 0; then
Sigma = m^2 + n^2, halved while even. theta and 90° - theta give the same boundary
(four-fold axis), so angles are reported in (0°, 45°].
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass

from gbsearch.errors import InputError

ANGLE_TOLERANCE_DEG = 0.02
# The paper's boundary, Σ5(100) twist: the default boundary of every command and function.
DEFAULT_MISORIENTATION = 36.87


@dataclass(frozen=True)
class TwistCSL:
    sigma: int
    angle_deg: float          # exact misorientation in (0, 45]
    m: int
    n: int

    @property
    def label(self) -> str:
        return f"Σ{self.sigma} {self.angle_deg:.2f}°"

    @functools.cached_property
    def frame(self) -> tuple[float, float, float]:
        """``(edge, rot_lower, rot_upper)`` of :func:`twist_frame` (edge in lattice constants)."""
        return twist_frame(self)

    def edge(self, a0: float) -> float:
        """Edge (Å) of the square CSL cell for lattice constant ``a0`` (Å)."""
        return self.frame[0] * a0

    def n_plane(self, replicate: tuple[int, int] = (1, 1)) -> int:
        """Atoms per (002) plane of the ``replicate`` supercell of the CSL cell."""
        return self.sigma * int(replicate[0]) * int(replicate[1])

    # -- the search's view of a boundary (gbsearch.geometry.boundary.Boundary) --------------
    kind = "twist"
    lattice = "bcc"               # twist_bicrystal stacks BCC (002) planes
    planes_per_period = 2         # (002) planes alternate corner / body-centre sites

    @property
    def name(self) -> str:
        return f"{self.label} <100> twist"

    @property
    def misorientation_deg(self) -> float:
        return self.angle_deg

    def edges(self, a0: float) -> tuple[float, float]:
        return self.edge(a0), self.edge(a0)

    def plane_spacing(self, a0: float) -> float:
        return a0 / 2.0

    def default_planes(self, a0: float) -> int:
        from gbsearch.geometry.boundary import grain_planes
        return grain_planes(0.5)

    def slab(self, replicate=(1, 1), n_fixed: int = 8, n_free: int = 8, shift=(0.0, 0.0), gap: float = 0.0,
             a0: float | None = None, symbol: str | None = None):
        """:func:`gbsearch.geometry.bicrystal.twist_bicrystal` of this boundary."""
        from gbsearch.geometry.bicrystal import twist_bicrystal
        from gbsearch.geometry.material import TUNGSTEN
        return twist_bicrystal(self, replicate=replicate, n_fixed=n_fixed, n_free=n_free, shift=shift, gap=gap,
                               a0=TUNGSTEN.a0 if a0 is None else a0,
                               symbol=TUNGSTEN.symbol if symbol is None else symbol)


def as_boundary(boundary: "TwistCSL | float") -> TwistCSL:
    """The boundary itself, or the CSL twist boundary of a misorientation in degrees (the one
    place a raw angle is turned into a boundary; see :func:`find_twist_csl`)."""
    return boundary if isinstance(boundary, TwistCSL) else find_twist_csl(boundary)


def _sigma(m: int, n: int) -> int:
    s = m * m + n * n
    while s % 2 == 0:
        s //= 2
    return s


@functools.lru_cache(maxsize=8)
def csl_twist_angles(max_sigma: int = 101) -> tuple[TwistCSL, ...]:
    """All <100> CSL twist boundaries with Sigma <= max_sigma, sorted by angle (computed once
    per max_sigma: every trial of a reference search resolves its boundary through it)."""
    found: dict[int, TwistCSL] = {}
    limit = int(math.isqrt(2 * max_sigma)) + 2
    for m in range(1, limit + 1):
        for n in range(1, m):
            if math.gcd(m, n) != 1:
                continue
            sigma = _sigma(m, n)
            if sigma > max_sigma:
                continue
            angle = math.degrees(2.0 * math.atan2(n, m))
            if angle > 45.0 + 1e-9:
                angle = 90.0 - angle
            key = round(angle * 1e6)
            if key not in found or found[key].sigma > sigma:
                found[key] = TwistCSL(sigma, angle, m, n)
    return tuple(sorted(found.values(), key=lambda c: c.angle_deg))


def find_twist_csl(misorientation_deg: float, max_sigma: int = 101,
                   tolerance_deg: float = ANGLE_TOLERANCE_DEG) -> TwistCSL:
    """The CSL twist boundary matching ``misorientation_deg`` (degrees, either 0–45 or its
    90° complement); raises :class:`InputError` naming the nearest CSL angles otherwise."""
    theta = float(misorientation_deg)
    if not math.isfinite(theta):
        raise InputError(f"misorientation must be a number of degrees, got {misorientation_deg!r}")
    folded = theta % 90.0
    if folded > 45.0:
        folded = 90.0 - folded
    if abs(folded) < 1e-9:
        raise InputError("misorientation 0° (or a multiple of 90°) is the perfect crystal; "
                         "use gbsearch.geometry.bicrystal.twist_bicrystal(..., misorientation=0) for a reference slab")
    table = csl_twist_angles(max_sigma)
    best = min(table, key=lambda c: abs(c.angle_deg - folded))
    if abs(best.angle_deg - folded) <= tolerance_deg:
        return best
    nearest = sorted(table, key=lambda c: abs(c.angle_deg - folded))[:4]
    listing = ", ".join(c.label for c in sorted(nearest, key=lambda c: c.angle_deg))
    raise InputError(
        f"{theta:g}° is not a coincidence-site-lattice twist angle about <100> "
        f"(Σ ≤ {max_sigma}, tolerance {tolerance_deg}°); nearest CSL angles: {listing}")


def twist_frame(csl: TwistCSL) -> tuple[float, float, float]:
    """Square CSL cell of a twist boundary, aligned with x.

    Returns ``(edge, rot_lower, rot_upper)``: the CSL cell edge in units of the lattice
    constant (sqrt(Sigma)) and the in-plane rotations (radians) to apply to the lower and
    upper grains' cubic axes so that a shortest CSL vector lies along x. The two rotations
    differ by exactly the misorientation.
    """
    theta = 2.0 * math.atan2(csl.n, csl.m)
    c, s = math.cos(theta), math.sin(theta)
    reach = int(math.isqrt(4 * csl.sigma)) + 2
    best = None
    for ux in range(-reach, reach + 1):
        for uy in range(-reach, reach + 1):
            if ux == 0 and uy == 0:
                continue
            # u (lower grain) coincides with w (upper grain) when w = R(-theta) u is integer.
            wx, wy = c * ux + s * uy, -s * ux + c * uy
            if abs(wx - round(wx)) < 1e-8 and abs(wy - round(wy)) < 1e-8:
                norm2 = ux * ux + uy * uy
                if best is None or norm2 < best[0]:
                    best = (norm2, ux, uy)
    norm2, ux, uy = best
    if norm2 != csl.sigma:
        raise AssertionError(f"CSL search found |u|^2={norm2} for Σ{csl.sigma}")
    phi = math.atan2(uy, ux)          # angle of u in the lower grain's cubic frame
    rot_lower = -phi                  # brings u onto x
    return math.sqrt(norm2), rot_lower, rot_lower + theta
