"""GRIP-style grand-canonical trials (SPEC §2.5; Chen et al., GRIP, Nat. Commun. 15, 7049, 2024).

A trial is drawn in the driver (cheap, deterministic from ``(seed, index)``) as a small
picklable :class:`TrialSpec`; a worker turns it into a slab, perturbs it, optionally anneals
it, relaxes it with CG and returns a flat result dict. Workers hold one LAMMPS instance each
(:func:`gbsearch.relaxation.engine.shared_engine`).

One trial (``algorithm`` 2, issue #15):

* replication (i, j) of the square CSL cell, drawn uniformly from ``SearchSettings.replicates``
  (default :func:`default_replicates`: GRIP draws 1..3 × 1..3 for its Σ5 example; bigger
  cells get fewer, see there);
* in-plane shift of the upper grain, uniform over the 1×1 CSL cell (GRIP likewise);
* composition: with probability ``insert_probability`` *insert* k ∈ 1..N_plane−1 atoms
  ([n] = k/N_plane) on sites of the atomic plane that would continue either grain, otherwise
  *delete* k ∈ 0..N_plane−1 atoms of the bottom atomic plane of the upper grain ([n] =
  (N_plane−k)/N_plane mod 1; GRIP only deletes). Both reach every [n] value, from the two
  sides (a cell of N_plane 1 can only delete none);
* uniform random displacements of up to ``perturbation`` Å of the free atoms within 10 Å of
  the GB;
* with probability ``md_probability`` (GRIP 0.95) an MD anneal at a temperature drawn on
  multiples of 100 K in ``md_temperatures`` (GRIP 1000–2500 K) for a number of steps drawn
  log-uniformly in ``md_steps`` (GRIP 5,000–300,000 steps of 2 fs); otherwise CG only;
* CG relaxation; γ (J/m², per area, so all replications compare directly) and [n].

The boundary (issue #19) is any :class:`~gbsearch.geometry.boundary.Boundary`: the <100> twist
of ``misorientation`` (the library's boundaries, built by ``twist_bicrystal``) or, with
``plane``, a symmetric tilt about ``axis`` or a twist about the plane normal (built by
``csl_bicrystal``), with any EAM potential (``potential``: a0 for the builder, E_coh for γ,
the file for the relaxation). The <100> twist with the built-in W file draws and builds
exactly the trials it drew before.

``algorithm`` 1 is the search before issue #15 (deletions from either GB-adjacent plane,
insertions at random points of the gap); it is kept so that the bundled Σ5 search's
settings still draw the trials they drew (<100> twist only).
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import asdict, dataclass, fields, replace

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import A0_W, FIXED_REGIONS, FREE_LOWER, FREE_UPPER, SYMBOL, UPPER_REGIONS
from gbsearch.geometry.boundary import Boundary, resolve_boundary
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION, as_boundary, find_twist_csl, twist_frame
from gbsearch.geometry.csl_general import parse_direction
from gbsearch.geometry.periodic import minimum_image
from gbsearch.relaxation.potential import PotentialRecord

ALGORITHM = 2                 # trial-drawing version written into new searches' settings

# Default replications (issue #15). GRIP's W examples draw rx, ry ∈ {1, 2, 3} over a 10 Å
# cell, i.e. GB cells up to ~30 Å. Cost grows with the area (atoms ∝ area), so the default
# keeps each in-plane edge ≤ 27 Å and the GB area ≤ 530 Å² (≈ 23 × 23 Å, ≤ ~1,700 atoms with
# 8 + 8 planes per grain). For the six library boundaries that gives
#   Σ5 (7.08 Å): 1..3 × 1..3 (GRIP's set);   Σ13 (11.41 Å): 1..2 × 1..2;
#   Σ17 (13.05 Å): 1×1, 1×2, 2×1;            Σ25, Σ37, Σ41 (15.8–20.3 Å): 1×1 only.
# The same rule on the small rectangular tilt cells (issue #19) gives elongated cells, as GRIP
# uses them: W Σ27(552)[1-10] (4.48 × 8.22 Å) 1..6 × 1..3 without 6×3 (16 cells, N_plane
# 1..12); Cu Σ5(210)[001] (3.61 × 8.08 Å) 1..7 × 1..3 without 7×3 (20 cells, N_plane 2..36).
MAX_REPLICATE_EDGE = 27.0     # Å
MAX_REPLICATE_AREA = 530.0    # Å²

# Insertion trials open the gap by one atomic plane spacing plus this much (Å) and put the new
# atoms on sites of the plane that would continue either grain, kept ≥ INSERT_MIN_DISTANCE
# from every other atom where the sites allow. For the <100> twist every inserted atom is then
# ≥ 2 Å from all others (its own grain's neighbours at 2.74 Å, the facing grain at ≥ 2.38 Å);
# on planes of small spacing (tilt) the fallback can leave closer pairs, which relax() merges.
INSERT_EXTRA_GAP = 0.5        # Å
INSERT_MIN_DISTANCE = 2.0     # Å


def default_replicates(boundary: "Boundary | float", a0: float = A0_W, max_edge: float = MAX_REPLICATE_EDGE,
                       max_area: float = MAX_REPLICATE_AREA) -> tuple:
    """In-plane replications (i, j) of the 1×1 cell drawn per trial by default: all with
    i·Lx ≤ ``max_edge`` and j·Ly ≤ ``max_edge`` (Å) and i·j·Lx·Ly ≤ ``max_area`` (Å²), Lx, Ly
    the 1×1 cell's edges for lattice constant ``a0``; always at least 1×1. ``boundary``: a
    :class:`~gbsearch.geometry.boundary.Boundary` or a <100> twist angle in degrees."""
    b = as_boundary(boundary) if isinstance(boundary, (int, float)) else boundary
    ex, ey = b.edges(a0)
    nx, ny = max(1, int(max_edge // ex)), max(1, int(max_edge // ey))
    reps = [(i, j) for i in range(1, nx + 1) for j in range(1, ny + 1) if i * j * ex * ey <= max_area]
    return tuple(reps) or ((1, 1),)


def parse_replicates(text: str) -> tuple:
    """``"1x1,1x2,2x1"`` → ((1, 1), (1, 2), (2, 1)); clear errors for anything else."""
    out = []
    for item in (p.strip() for p in str(text).split(",")):
        parts = item.lower().split("x")
        if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
            raise InputError(f"--replicates: {item!r} is not of the form IxJ (e.g. 1x1,1x2,2x1,2x2)")
        rep = (int(parts[0]), int(parts[1]))
        if min(rep) < 1:
            raise InputError(f"--replicates: {item!r}: replications must be at least 1x1")
        if rep in out:
            raise InputError(f"--replicates: {item!r} is listed twice")
        out.append(rep)
    return tuple(out)


def replicate_label(rep) -> str:
    """(2, 1) → "2x1", the key-value ``replicate`` of a stored structure."""
    return "x".join(str(int(v)) for v in rep)


@dataclass(frozen=True)
class SearchSettings:
    """The boundary, the potential, and what varies between trials and how (GRIP's published
    values where affordable).

    misorientation: twist angle in degrees: about <100> without ``plane`` (None: the default
        boundary, :data:`DEFAULT_MISORIENTATION`), about the plane normal with ``plane``; None
        with ``plane``: a symmetric tilt (its angle follows from the plane).
    plane, axis: GB plane (hkl) and tilt axis of a general boundary (see
        :func:`~gbsearch.geometry.boundary.resolve_boundary`); None: the <100> twist.
    potential: the EAM potential (a :class:`PotentialRecord`); None: the built-in W file
        (:meth:`with_potential` records it).
    replicates: in-plane supercells (i, j) of the 1×1 cell drawn uniformly per trial; empty
        (the default) means :func:`default_replicates` of the boundary.
    n_fixed, n_free: atomic planes per grain held fixed / free; None (the default): the
        boundary's default thickness, 4 a0 (8 (002) planes for the <100> twist).
    gap: Å added between the grains before relaxation (GRIP 0.3).
    perturbation: Å, largest random displacement of the free atoms near the GB (GRIP 0.3).
    md_probability: share of trials with MD before CG (GRIP 0.95; the rest are CG only).
    md_temperatures: K, range drawn on multiples of 100 K (GRIP 1000–2500).
    md_steps: MD length range in 2 fs steps, drawn log-uniformly (GRIP 5,000–300,000).
    insert_probability: share of trials that insert atoms instead of deleting them.
    algorithm: trial-drawing version (see the module docstring).
    """
    misorientation: float | None = None
    replicates: tuple = ()
    n_fixed: int | None = None
    n_free: int | None = None
    gap: float = 0.3
    perturbation: float = 0.3
    md_probability: float = 0.95
    md_temperatures: tuple = (1000.0, 2500.0)
    md_steps: tuple = (5000, 300_000)
    insert_probability: float = 0.5
    algorithm: int = ALGORITHM
    plane: tuple | None = None
    axis: tuple | None = None
    potential: PotentialRecord | None = None

    def __post_init__(self):
        for key in ("plane", "axis"):
            if getattr(self, key) is not None:
                object.__setattr__(self, key, parse_direction(getattr(self, key)))
        if self.plane is None and self.misorientation is None:
            object.__setattr__(self, "misorientation", DEFAULT_MISORIENTATION)
        if isinstance(self.potential, dict):          # its JSON form
            object.__setattr__(self, "potential", PotentialRecord(**self.potential))
        # The boundary (clear errors for a non-CSL request or a lattice the potential lacks),
        # resolved once: every trial drawn from these settings carries it.
        lattice = self.potential.lattice if self.potential is not None else "bcc"
        object.__setattr__(self, "_boundary", resolve_boundary(self.misorientation, self.plane, self.axis,
                                                               lattice=lattice, a0=self.a0))
        for key in ("n_fixed", "n_free"):
            if getattr(self, key) is None:
                object.__setattr__(self, key, self.boundary.default_planes(self.a0))
        reps = tuple(tuple(int(v) for v in r) for r in self.replicates) \
            or default_replicates(self.boundary, self.a0)
        if any(len(r) != 2 or min(r) < 1 for r in reps):
            raise InputError(f"replicates must be pairs of positive integers, got {self.replicates}")
        object.__setattr__(self, "replicates", reps)
        if min(self.n_fixed, self.n_free) < 1:
            raise InputError(f"n_fixed and n_free must be at least 1 plane each, got {self.n_fixed} {self.n_free}")
        period = self.boundary.planes_per_period
        if self.insert_probability > 0 and self.n_fixed + self.n_free < period:
            raise InputError(f"insertion trials take their sites from the plane one period ({period} planes) "
                             f"below the GB: {self.boundary.name} needs n_fixed + n_free >= {period}, got "
                             f"{self.n_fixed} + {self.n_free} (or set insert_probability 0)")
        if not 0.0 <= self.md_probability <= 1.0:
            raise InputError(f"md_probability must be in [0, 1], got {self.md_probability}")
        if not 0.0 <= self.insert_probability <= 1.0:
            raise InputError(f"insert_probability must be in [0, 1], got {self.insert_probability}")
        lo, hi = self.md_steps
        if not 1 <= lo <= hi:
            raise InputError(f"md_steps must be 1 <= LO <= HI, got {lo} {hi}")
        t_lo, t_hi = self.md_temperatures
        if not 0 < t_lo <= t_hi or int(t_hi // 100) < math.ceil(t_lo / 100):
            raise InputError(f"md_temperatures must be 0 < LO <= HI with a multiple of 100 K "
                             f"between them, got {t_lo} {t_hi}")
        if self.algorithm not in (1, 2):
            raise InputError(f"unknown trial algorithm {self.algorithm}")
        if self.algorithm == 1 and self.plane is not None:
            raise InputError("trial algorithm 1 (before issue #15) draws <100> twist trials only")

    @property
    def boundary(self) -> Boundary:
        """The boundary searched (a :class:`~gbsearch.geometry.boundary.Boundary`)."""
        return self._boundary

    @property
    def a0(self) -> float:
        """Lattice constant (Å) the slabs are built with: the potential's."""
        return _material(self.potential)[0]

    @property
    def symbol(self) -> str:
        return _material(self.potential)[1]

    def with_potential(self) -> "SearchSettings":
        """These settings with their potential recorded: the built-in W file's
        :class:`PotentialRecord` (LAMMPS computes its E_coh) when none was given."""
        if self.potential is not None:
            return self
        from gbsearch.relaxation.potential import potential_record
        return replace(self, potential=potential_record())

    def to_dict(self) -> dict:
        """The JSON form (:func:`settings_from_dict` reads it back)."""
        import json
        return json.loads(json.dumps(asdict(self)))


def _material(potential: PotentialRecord | None) -> tuple[float, str]:
    """(a0 in Å, element) slabs are built with: the potential's, or the built-in W file's."""
    return (potential.a0, potential.element) if potential is not None else (A0_W, SYMBOL)


def settings_differences(stored: SearchSettings, current: SearchSettings) -> list[str]:
    """How ``current`` differs from ``stored`` (both with their potential recorded), as
    "name: stored vs current" texts; empty when a search with ``stored`` may resume with
    ``current`` (the potential file may lie elsewhere, its contents and values must agree)."""
    a, b = stored.to_dict(), current.to_dict()
    out = [f"{k}: {a[k]} vs {b[k]}" for k in a if k != "potential" and a[k] != b[k]]
    if (stored.potential is None) != (current.potential is None):
        out.append(f"potential: {stored.potential} vs {current.potential}")
    elif stored.potential is not None:
        out += [f"potential {d}" for d in stored.potential.differences(current.potential)]
    return out


# Values that reproduce a search whose settings JSON predates a field (issue #15 added
# ``algorithm``; before it, trials were drawn by algorithm 1).
LEGACY_SETTINGS = {"algorithm": 1, "insert_probability": 0.0}


@dataclass(frozen=True)
class TrialSpec:
    index: int
    seed: int
    misorientation: float | None    # the settings' angle (None: a symmetric tilt)
    replicate: tuple
    n_fixed: int
    n_free: int
    gap: float
    shift: tuple                 # Å, in-plane shift of the upper grain
    n_delete: int                # atoms removed next to the GB
    n_insert: int                # atoms added in the GB gap
    perturbation: float
    md_temperature: float        # K; 0 = no MD
    md_steps: int
    md_seed: int = 1
    structure_seed: int = 0      # deletions, insertions and perturbations
    algorithm: int = ALGORITHM
    boundary: Boundary | None = None             # None: the <100> twist of misorientation
    potential: PotentialRecord | None = None     # None: the built-in W file

    def as_dict(self) -> dict:
        """The trial's parameters (rows' ``data["spec"]`` and ``p_*`` key-value pairs); the
        boundary and the potential are recorded by the search in their own keys."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("boundary", "potential")}
        d["replicate"] = replicate_label(self.replicate)
        d["shift_x"], d["shift_y"] = (float(v) for v in self.shift)
        del d["shift"]
        return d

    @property
    def slab_boundary(self) -> Boundary:
        return self.boundary if self.boundary is not None else as_boundary(self.misorientation)


def settings_from_dict(d: dict) -> SearchSettings:
    """SearchSettings from its JSON form (lists back to tuples; keys missing from an older
    search's JSON get the values that search used, :data:`LEGACY_SETTINGS`; searches before
    issue #19 have no plane, axis or potential: the <100> twist with the built-in W file)."""
    d = {**LEGACY_SETTINGS, **d}
    names = {f.name for f in fields(SearchSettings)}
    unknown = set(d) - names
    if unknown:
        raise InputError(f"unknown search settings {sorted(unknown)}")
    d["replicates"] = tuple(tuple(r) for r in d["replicates"])
    for key in ("md_temperatures", "md_steps"):
        d[key] = tuple(d[key])
    return SearchSettings(**d)


def draw_trial(settings: SearchSettings, seed: int, index: int) -> TrialSpec:
    """Draw trial ``index`` of the search with master ``seed`` (same inputs, same trial)."""
    if settings.algorithm == 1:
        return _draw_trial_v1(settings, seed, index)
    rng = np.random.default_rng([seed, index])
    boundary = settings.boundary
    edges = np.array(boundary.edges(settings.a0))
    replicate = tuple(settings.replicates[rng.integers(len(settings.replicates))])
    n_plane = boundary.n_plane(replicate)
    shift = tuple(float(v) for v in rng.uniform(0, edges))       # over the 1x1 cell, as GRIP
    # A cell of one atom per plane has nothing to insert below a whole plane: delete none.
    insert = bool(rng.random() < settings.insert_probability) and n_plane > 1
    k = int(rng.integers(1, n_plane)) if insert else int(rng.integers(n_plane))
    md = bool(rng.random() < settings.md_probability)
    t_lo, t_hi = settings.md_temperatures
    temperature = 100.0 * rng.integers(math.ceil(t_lo / 100), int(t_hi // 100) + 1)
    s_lo, s_hi = settings.md_steps
    steps = int(round(math.exp(rng.uniform(math.log(s_lo), math.log(s_hi)))))
    return TrialSpec(index=index, seed=seed, misorientation=settings.misorientation,
                     replicate=replicate, n_fixed=settings.n_fixed, n_free=settings.n_free,
                     gap=settings.gap, shift=shift, n_delete=0 if insert else k,
                     n_insert=k if insert else 0, perturbation=settings.perturbation,
                     md_temperature=float(temperature) if md else 0.0, md_steps=steps if md else 0,
                     md_seed=int(rng.integers(1, 900_000)), structure_seed=int(rng.integers(2**31)),
                     algorithm=2, boundary=boundary, potential=settings.potential)


def _draw_trial_v1(settings: SearchSettings, seed: int, index: int) -> TrialSpec:
    """The draw before issue #15 (same random stream, same trials)."""
    rng = np.random.default_rng([seed, index])
    csl = find_twist_csl(settings.misorientation)
    edge = twist_frame(csl)[0] * A0_W
    replicate = tuple(settings.replicates[rng.integers(len(settings.replicates))])
    n_plane = csl.sigma * replicate[0] * replicate[1]
    k = int(rng.integers(n_plane))
    insert = rng.random() < settings.insert_probability
    md = rng.random() < settings.md_probability
    t_lo, t_hi = settings.md_temperatures
    temperature = 100.0 * rng.integers(int(t_lo // 100), int(t_hi // 100) + 1) if md else 0.0
    s_lo, s_hi = settings.md_steps
    steps = int(round(math.exp(rng.uniform(math.log(s_lo), math.log(s_hi))))) if md else 0
    return TrialSpec(index=index, seed=seed, misorientation=settings.misorientation,
                     replicate=replicate, n_fixed=settings.n_fixed, n_free=settings.n_free,
                     gap=settings.gap, shift=tuple(float(v) for v in rng.uniform(0, edge, 2)),
                     n_delete=0 if insert else k, n_insert=k if insert else 0,
                     perturbation=settings.perturbation, md_temperature=float(temperature),
                     md_steps=steps, md_seed=int(rng.integers(1, 900_000)),
                     structure_seed=int(rng.integers(2**31)), algorithm=1, potential=settings.potential)


def _plane_of(atoms: Atoms, mask: np.ndarray, which: str) -> np.ndarray:
    """Indices of the lowest (``which="min"``) or highest atom plane among ``mask``."""
    idx = np.flatnonzero(mask)
    z = atoms.positions[idx, 2]
    ref = z.min() if which == "min" else z.max()
    return idx[np.isclose(z, ref, atol=1e-3)]


def _gb_adjacent(atoms: Atoms) -> np.ndarray:
    """Indices of the top free-A plane and the bottom free-B plane (algorithm 1)."""
    region = atoms.arrays["region"]
    return np.concatenate([_plane_of(atoms, region == FREE_LOWER, "max"),
                           _plane_of(atoms, region == FREE_UPPER, "min")])


def trial_structure(spec: TrialSpec) -> Atoms:
    """The unrelaxed, perturbed slab of a trial (regions and GB metadata in ``info``)."""
    rng = np.random.default_rng(spec.structure_seed)
    boundary = spec.slab_boundary
    a0, symbol = _material(spec.potential)
    extra = 0.0
    if spec.algorithm >= 2 and spec.n_insert:
        extra = boundary.plane_spacing(a0) + INSERT_EXTRA_GAP      # room for a partial plane
    atoms = boundary.slab(replicate=spec.replicate, n_fixed=spec.n_fixed, n_free=spec.n_free, shift=spec.shift,
                          gap=spec.gap + extra, a0=a0, symbol=symbol)
    if spec.algorithm == 1:
        if spec.n_delete:
            del atoms[rng.choice(_gb_adjacent(atoms), spec.n_delete, replace=False)]
        for _ in range(spec.n_insert):
            _insert_in_gap_v1(atoms, rng)
    else:
        if spec.n_delete:
            bottom = _plane_of(atoms, atoms.arrays["region"] == FREE_UPPER, "min")
            if spec.n_delete >= len(bottom):
                raise InputError(f"cannot delete {spec.n_delete} atoms from a plane of {len(bottom)}")
            del atoms[rng.choice(bottom, spec.n_delete, replace=False)]
        if spec.n_insert:
            insert_partial_plane(atoms, spec.n_insert, rng, boundary.planes_per_period)
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    near = free & (np.abs(atoms.positions[:, 2] - atoms.info["gb_z"]) < 10.0)
    atoms.positions[near] += rng.uniform(-spec.perturbation, spec.perturbation, (near.sum(), 3))
    atoms.wrap()
    return atoms


def _plane_levels(atoms: Atoms, mask: np.ndarray, tol: float = 1e-3) -> np.ndarray:
    """Heights (Å) of the atomic planes among ``mask`` of an unperturbed slab, bottom to top."""
    z = np.sort(atoms.positions[mask, 2])
    return z[np.concatenate([[True], np.diff(z) > tol])]


def insert_partial_plane(atoms: Atoms, k: int, rng: np.random.Generator, planes_per_period: int = 2,
                         min_distance: float = INSERT_MIN_DISTANCE) -> None:
    """Add ``k`` free atoms in the (widened) GB gap of an unperturbed slab, in place.

    Candidate sites are those of the atomic plane that would continue the lower grain (one
    plane spacing above its top plane) and of the plane that would continue the upper grain
    (one spacing below its bottom plane): a plane ``planes_per_period`` planes away from that
    position has its in-plane sites (2 for BCC (002)). Sites are taken in random order and kept
    when ≥ ``min_distance`` Å from every atom (periodic in x, y); if that leaves fewer than k,
    the k sites come from one grain's plane only (for the <100> twist that always fits: k <
    N_plane, neighbours ≥ 2.38 Å away when the gap was opened by :data:`INSERT_EXTRA_GAP`).
    """
    region = atoms.arrays["region"]
    pos = atoms.positions
    lx, ly = atoms.cell.lengths()[:2]
    d = float(atoms.info["plane_spacing"])
    lower = ~np.isin(region, UPPER_REGIONS)
    upper = ~lower
    low_z, up_z = _plane_levels(atoms, lower), _plane_levels(atoms, upper)
    n_plane = int(atoms.info["n_plane"])
    if not 0 < k < n_plane or min(len(low_z), len(up_z)) < planes_per_period:
        raise InputError(f"cannot insert {k} atoms into a GB of {n_plane} sites per plane"
                         + (f" (grains of {len(low_z)} and {len(up_z)} planes, one period is "
                            f"{planes_per_period})" if 0 < k < n_plane else ""))
    below = np.flatnonzero(lower & np.isclose(pos[:, 2], low_z[-planes_per_period], atol=1e-3))
    above = np.flatnonzero(upper & np.isclose(pos[:, 2], up_z[planes_per_period - 1], atol=1e-3))
    cand_lower = np.column_stack([pos[below, :2], np.full(len(below), low_z[-1] + d)])
    cand_upper = np.column_stack([pos[above, :2], np.full(len(above), up_z[0] - d)])
    if len(cand_lower) != n_plane or len(cand_upper) != n_plane:
        raise InputError(f"cannot insert {k} atoms into a GB of {n_plane} sites per plane "
                         f"(continuation planes of {len(cand_lower)} and {len(cand_upper)} sites)")

    def far(p, others):
        if len(others) == 0:
            return True
        dv = others - p
        dv[:, :2] -= np.round(dv[:, :2] / [lx, ly]) * [lx, ly]
        return np.min(np.einsum("ij,ij->i", dv, dv)) >= min_distance ** 2

    chosen, codes = [], []
    candidates = np.concatenate([cand_lower, cand_upper])
    cand_codes = [FREE_LOWER] * n_plane + [FREE_UPPER] * n_plane
    for i in rng.permutation(len(candidates)):
        if far(candidates[i], pos) and far(candidates[i], np.array(chosen).reshape(-1, 3)):
            chosen.append(candidates[i])
            codes.append(cand_codes[i])
            if len(chosen) == k:
                break
    if len(chosen) < k:
        side = int(rng.integers(2))
        plane = (cand_lower, cand_upper)[side]
        chosen = list(plane[rng.choice(n_plane, k, replace=False)])
        codes = [(FREE_LOWER, FREE_UPPER)[side]] * k
    symbol = atoms.get_chemical_symbols()[0]
    atoms.extend(Atoms(symbol * k, positions=np.array(chosen)))
    atoms.arrays["region"] = np.concatenate([region, codes]).astype(np.int32)


def _insert_in_gap_v1(atoms: Atoms, rng: np.random.Generator, min_distance: float = 2.0) -> None:
    """Add one free-B atom near the GB plane, at least ``min_distance`` Å from the others
    (algorithm 1: after 200 misses the last point is taken anyway)."""
    lx, ly = atoms.cell.lengths()[:2]
    z0 = atoms.info["gb_z"]
    for _ in range(200):
        p = np.array([rng.uniform(0, lx), rng.uniform(0, ly), z0 + rng.uniform(-0.5, 0.5)])
        d = minimum_image(atoms.positions - p, atoms.cell.lengths(), (True, True, False))
        if np.min(np.linalg.norm(d, axis=1)) >= min_distance:
            break
    region = np.append(atoms.arrays["region"], FREE_UPPER)
    atoms.append("W")
    atoms.positions[-1] = p
    atoms.arrays["region"] = region.astype(np.int32)


def tile_structure(atoms: Atoms, replicate: tuple[int, int]) -> Atoms:
    """An in-plane (i, j) supercell of a GB slab with its regions, per-atom energies and GB
    metadata (N_plane, N_free,bulk, replicate) updated: the same GB, i·j times the area."""
    i, j = (int(v) for v in replicate)
    if min(i, j) < 1:
        raise InputError(f"replicate must be positive integers, got {replicate}")
    out = atoms.repeat((i, j, 1))          # arrays (region, energy) are tiled by ASE
    info = dict(atoms.info)
    for key in ("n_plane", "n_free_bulk"):
        if key in info:
            info[key] = int(info[key]) * i * j
    if "replicate" in info:
        a, b = (int(v) for v in str(info["replicate"]).split())
        info["replicate"] = f"{a * i} {b * j}"
    for key in ("energy_eV",):
        if key in info:
            info[key] = float(info[key]) * i * j
    out.info = info
    return out


def run_trial(spec: TrialSpec) -> dict:
    """Build, perturb, anneal, relax one trial; never raises (a failure is a result)."""
    from gbsearch.relaxation.engine import AnnealSettings
    from gbsearch.relaxation.relax import relax

    t0 = time.perf_counter()
    record = {"spec": spec.as_dict(), "status": "failed"}
    try:
        atoms = trial_structure(spec)
        record["atoms"] = atoms
        anneal = (AnnealSettings(spec.md_temperature, spec.md_steps, seed=spec.md_seed)
                  if spec.md_steps > 0 else None)
        out = relax(atoms, anneal=anneal,
                    potential=spec.potential.potential() if spec.potential is not None else None)
        record.update(atoms=out, status="ok")
    except Exception as exc:  # any failure of one trial is recorded; the search goes on
        record["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
        record["traceback"] = traceback.format_exc(limit=3)[-2000:]
    record["wall_s"] = time.perf_counter() - t0
    return record
