"""What a search needs of a boundary, whichever builder makes it (issue #19).

Two kinds of boundary object exist: :class:`~gbsearch.geometry.csl.TwistCSL` (the <100> twist,
square cell, built by :func:`~gbsearch.geometry.bicrystal.twist_bicrystal`: the library, the
model and every legacy search) and :class:`~gbsearch.geometry.csl_general.GBGeometry` (any
CSL symmetric tilt or twist of a cubic lattice, built by
:func:`~gbsearch.geometry.csl_general.csl_bicrystal`). Both satisfy :class:`Boundary`, so the
reference search, its trials and its reports carry one object and never ask which it is.

:func:`resolve_boundary` is the one place a search's settings (angle, or plane and axis) are
turned into one of them.
"""
from __future__ import annotations

import math
from typing import Protocol, runtime_checkable

from ase import Atoms

# Fixed and free thickness per grain, in lattice constants: 8 (002) planes for the <100>
# twist (the library's slabs), enough whole atomic planes for the same thickness elsewhere.
DEFAULT_GRAIN_THICKNESS_A0 = 4.0


def grain_planes(spacing_a0: float, thickness_a0: float = DEFAULT_GRAIN_THICKNESS_A0) -> int:
    """Atomic planes of spacing ``spacing_a0`` (in a0) that make ``thickness_a0`` (in a0)."""
    return int(math.ceil(thickness_a0 / spacing_a0 - 1e-9))


@runtime_checkable
class Boundary(Protocol):
    """A CSL boundary a search can build slabs of. Lengths in Å unless stated.

    sigma: Σ; name: a human label ("Σ5 36.87° <100> twist", "Σ27 (552)[1-10] symmetric tilt
    31.59°"); kind: "twist" or "tilt"; lattice: "bcc" or "fcc"; misorientation_deg: the angle
    relating the grains; planes_per_period: atomic planes in one repeat along the GB normal
    (a plane this many below a position has that position's in-plane sites; 2 for BCC (002)).
    """
    sigma: int
    name: str
    kind: str
    lattice: str
    misorientation_deg: float
    planes_per_period: int

    def edges(self, a0: float) -> tuple[float, float]:
        """In-plane edges (x, y) of the 1×1 cell for lattice constant ``a0``."""

    def n_plane(self, replicate: tuple[int, int] = (1, 1)) -> int:
        """Atoms in one atomic plane parallel to the GB of the ``replicate`` cell."""

    def plane_spacing(self, a0: float) -> float:
        """Spacing of neighbouring atomic planes parallel to the GB."""

    def default_planes(self, a0: float) -> int:
        """Default fixed (and free) atomic planes per grain."""

    def slab(self, replicate: tuple[int, int], n_fixed: int, n_free: int, shift: tuple[float, float],
             gap: float, a0: float, symbol: str) -> Atoms:
        """The bicrystal slab (regions and GB metadata in ``arrays``/``info``)."""


def resolve_boundary(misorientation: float | None = None, plane=None, axis=None,
                     lattice: str = "bcc", a0: float | None = None) -> Boundary:
    """The boundary of a search: without ``plane`` the <100> twist of ``misorientation``
    (degrees, a CSL angle; BCC only, the twist builder's lattice); with ``plane`` (hkl) a
    symmetric tilt about ``axis`` (``misorientation`` None: it follows from the plane) or, with
    ``misorientation``, the twist by that angle about the plane normal (``axis`` None or ∥ it).
    ``lattice`` and ``a0`` (Å) are the potential's; a0 only bounds the general builder's cell
    search (its :data:`~gbsearch.geometry.csl_general.MAX_EDGE`)."""
    from gbsearch.errors import InputError
    if plane is None:
        if axis is not None:
            raise InputError("--axis needs --plane (hkl), e.g. --axis 1,-1,0 --plane 5,5,2")
        if lattice != "bcc":
            raise InputError(f"the <100> twist builder (-m without --plane) makes BCC slabs; for {lattice} use "
                             "--plane 0,0,1 --twist -m ANGLE")
        from gbsearch.geometry.csl import DEFAULT_MISORIENTATION, find_twist_csl
        return find_twist_csl(DEFAULT_MISORIENTATION if misorientation is None else misorientation)
    from gbsearch.geometry.csl_general import find_gb
    from gbsearch.geometry.material import TUNGSTEN
    return find_gb(plane, axis=axis, twist=misorientation is not None, angle=misorientation,
                   lattice=lattice, a0=TUNGSTEN.a0 if a0 is None else a0)


def boundary_request(misorientation: float | None, plane, axis, twist: bool) -> tuple:
    """The command-line form of a boundary (``-m``, ``--plane``, ``--axis``, ``--twist``) as
    :func:`resolve_boundary`'s ``(misorientation, plane, axis)``, refusing mixed-up options."""
    from gbsearch.errors import InputError
    if plane is None:
        if axis is not None or twist:
            raise InputError("--axis/--twist need --plane (hkl), e.g. --axis 1,-1,0 --plane 5,5,2")
        return misorientation, None, None
    if twist and misorientation is None:
        raise InputError("--twist needs --misorientation DEGREES (a CSL angle about the plane normal)")
    if not twist and misorientation is not None:
        raise InputError("a symmetric tilt's misorientation follows from --plane; drop --misorientation "
                         "(or add --twist)")
    if not twist and axis is None:
        raise InputError("a symmetric tilt needs --axis (⟂ the plane normal), e.g. --axis 1,-1,0 --plane 5,5,2")
    return misorientation, plane, axis
