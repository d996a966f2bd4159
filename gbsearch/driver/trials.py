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
  ([n] = k/N_plane), otherwise *delete* k ∈ 0..N_plane−1 atoms of the bottom (002) plane of
  the upper grain ([n] = (N_plane−k)/N_plane mod 1; GRIP only deletes). Both reach every
  [n] value, from the two sides;
* uniform random displacements of up to ``perturbation`` Å of the free atoms within 10 Å of
  the GB;
* with probability ``md_probability`` (GRIP 0.95) an MD anneal at a temperature drawn on
  multiples of 100 K in ``md_temperatures`` (GRIP 1000–2500 K) for a number of steps drawn
  log-uniformly in ``md_steps`` (GRIP 5,000–300,000 steps of 2 fs); otherwise CG only;
* CG relaxation; γ (J/m², per area, so all replications compare directly) and [n].

``algorithm`` 1 is the search before issue #15 (deletions from either GB-adjacent plane,
insertions at random points of the gap); it is kept so that the bundled Σ5 search's
settings still draw the trials they drew.
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import asdict, dataclass, fields

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import (A0_W, FIXED_REGIONS, FREE_LOWER, FREE_UPPER, UPPER_REGIONS,
                                         twist_bicrystal)
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION, find_twist_csl, twist_frame
from gbsearch.geometry.periodic import minimum_image

ALGORITHM = 2                 # trial-drawing version written into new searches' settings

# Default replications (issue #15). GRIP's W examples draw rx, ry ∈ {1, 2, 3} over a 10 Å
# cell, i.e. GB cells up to ~30 Å. Cost grows with the area (atoms ∝ area), so the default
# keeps each in-plane edge ≤ 27 Å and the GB area ≤ 530 Å² (≈ 23 × 23 Å, ≤ ~1,700 atoms with
# 8 + 8 planes per grain). For the six library boundaries that gives
#   Σ5 (7.08 Å): 1..3 × 1..3 (GRIP's set);   Σ13 (11.41 Å): 1..2 × 1..2;
#   Σ17 (13.05 Å): 1×1, 1×2, 2×1;            Σ25, Σ37, Σ41 (15.8–20.3 Å): 1×1 only.
MAX_REPLICATE_EDGE = 27.0     # Å
MAX_REPLICATE_AREA = 530.0    # Å²

# Insertion trials open the gap by one (002) spacing plus this much (Å) and put the new atoms
# on sites of the plane that would continue either grain: every inserted atom is then ≥ 2 Å
# from every other atom (its own grain's neighbours at 2.74 Å, the facing grain at ≥ 2.38 Å).
INSERT_EXTRA_GAP = 0.5        # Å
INSERT_MIN_DISTANCE = 2.0     # Å


def csl_edge(misorientation: float) -> float:
    """Edge (Å) of the square 1×1 CSL cell of the <100> twist boundary."""
    return twist_frame(find_twist_csl(misorientation))[0] * A0_W


def default_replicates(misorientation: float, max_edge: float = MAX_REPLICATE_EDGE,
                       max_area: float = MAX_REPLICATE_AREA) -> tuple:
    """In-plane replications (i, j) of the CSL cell drawn per trial by default: all with
    i·L ≤ ``max_edge`` and j·L ≤ ``max_edge`` (Å) and i·j·L² ≤ ``max_area`` (Å²), L the
    1×1 CSL edge; always at least 1×1."""
    edge = csl_edge(misorientation)
    n_max = max(1, int(max_edge // edge))
    reps = [(i, j) for i in range(1, n_max + 1) for j in range(1, n_max + 1)
            if i * j * edge * edge <= max_area]
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
    """What varies between trials and how (GRIP's published values where affordable).

    replicates: in-plane supercells (i, j) of the CSL cell drawn uniformly per trial; empty
        (the default) means :func:`default_replicates` of the boundary.
    gap: Å added between the grains before relaxation (GRIP 0.3).
    perturbation: Å, largest random displacement of the free atoms near the GB (GRIP 0.3).
    md_probability: share of trials with MD before CG (GRIP 0.95; the rest are CG only).
    md_temperatures: K, range drawn on multiples of 100 K (GRIP 1000–2500).
    md_steps: MD length range in 2 fs steps, drawn log-uniformly (GRIP 5,000–300,000).
    insert_probability: share of trials that insert atoms instead of deleting them.
    algorithm: trial-drawing version (see the module docstring).
    """
    misorientation: float = DEFAULT_MISORIENTATION
    replicates: tuple = ()
    n_fixed: int = 8
    n_free: int = 8
    gap: float = 0.3
    perturbation: float = 0.3
    md_probability: float = 0.95
    md_temperatures: tuple = (1000.0, 2500.0)
    md_steps: tuple = (5000, 300_000)
    insert_probability: float = 0.5
    algorithm: int = ALGORITHM

    def __post_init__(self):
        find_twist_csl(self.misorientation)          # a clear error for a non-CSL angle
        reps = tuple(tuple(int(v) for v in r) for r in self.replicates) \
            or default_replicates(self.misorientation)
        if any(len(r) != 2 or min(r) < 1 for r in reps):
            raise InputError(f"replicates must be pairs of positive integers, got {self.replicates}")
        object.__setattr__(self, "replicates", reps)
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


# Values that reproduce a search whose settings JSON predates a field (issue #15 added
# ``algorithm``; before it, trials were drawn by algorithm 1).
LEGACY_SETTINGS = {"algorithm": 1, "insert_probability": 0.0}


@dataclass(frozen=True)
class TrialSpec:
    index: int
    seed: int
    misorientation: float
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

    def as_dict(self) -> dict:
        d = asdict(self)
        d["replicate"] = replicate_label(self.replicate)
        d["shift_x"], d["shift_y"] = self.shift
        del d["shift"]
        return d


def settings_from_dict(d: dict) -> SearchSettings:
    """SearchSettings from its JSON form (lists back to tuples; keys missing from an older
    search's JSON get the values that search used, :data:`LEGACY_SETTINGS`)."""
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
    csl = find_twist_csl(settings.misorientation)
    edge = twist_frame(csl)[0] * A0_W
    replicate = tuple(settings.replicates[rng.integers(len(settings.replicates))])
    n_plane = csl.sigma * replicate[0] * replicate[1]
    shift = tuple(float(v) for v in rng.uniform(0, edge, 2))     # over the 1x1 cell, as GRIP
    insert = bool(rng.random() < settings.insert_probability)
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
                     algorithm=2)


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
                     structure_seed=int(rng.integers(2**31)), algorithm=1)


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
    extra = 0.0
    if spec.algorithm >= 2 and spec.n_insert:
        extra = A0_W / 2.0 + INSERT_EXTRA_GAP      # room for a partial (002) plane
    atoms = twist_bicrystal(spec.misorientation, replicate=spec.replicate, n_fixed=spec.n_fixed,
                            n_free=spec.n_free, shift=spec.shift, gap=spec.gap + extra)
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
            insert_partial_plane(atoms, spec.n_insert, rng)
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    near = free & (np.abs(atoms.positions[:, 2] - atoms.info["gb_z"]) < 10.0)
    atoms.positions[near] += rng.uniform(-spec.perturbation, spec.perturbation, (near.sum(), 3))
    atoms.wrap()
    return atoms


def insert_partial_plane(atoms: Atoms, k: int, rng: np.random.Generator,
                         min_distance: float = INSERT_MIN_DISTANCE) -> None:
    """Add ``k`` free atoms in the (widened) GB gap, in place.

    Candidate sites are those of the (002) plane that would continue the lower grain (one
    plane spacing above its top plane) and of the plane that would continue the upper grain
    (one spacing below its bottom plane). Sites are taken in random order and kept when
    ≥ ``min_distance`` Å from every atom (periodic in x, y); if that leaves fewer than k, the
    k sites come from one grain's plane only, which always fits (k < N_plane, neighbours
    ≥ 2.38 Å away when the gap was opened by :data:`INSERT_EXTRA_GAP`).
    """
    region = atoms.arrays["region"]
    pos = atoms.positions
    lx, ly = atoms.cell.lengths()[:2]
    d = float(atoms.info["plane_spacing"])
    lower = ~np.isin(region, UPPER_REGIONS)
    upper = ~lower
    # The plane two below a grain's top has the in-plane sites of the one above its top (BCC
    # (002) planes alternate), likewise for the upper grain's bottom.
    lower_top = pos[_plane_of(atoms, lower, "max"), 2][0]
    upper_bottom = pos[_plane_of(atoms, upper, "min"), 2][0]
    below = _plane_of(atoms, lower & (pos[:, 2] < lower_top - 0.5 * d), "max")
    above = _plane_of(atoms, upper & (pos[:, 2] > upper_bottom + 0.5 * d), "min")
    cand_lower = np.column_stack([pos[below, :2], np.full(len(below), lower_top + d)])
    cand_upper = np.column_stack([pos[above, :2], np.full(len(above), upper_bottom - d)])
    n_plane = int(atoms.info["n_plane"])
    if not 0 < k < n_plane or len(cand_lower) != n_plane or len(cand_upper) != n_plane:
        raise InputError(f"cannot insert {k} atoms into a GB of {n_plane} sites per plane")

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
    atoms.extend(Atoms("W" * k, positions=np.array(chosen)))
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
        out = relax(atoms, anneal=anneal)
        record.update(atoms=out, status="ok")
    except Exception as exc:  # any failure of one trial is recorded; the search goes on
        record["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
        record["traceback"] = traceback.format_exc(limit=3)[-2000:]
    record["wall_s"] = time.perf_counter() - t0
    return record
