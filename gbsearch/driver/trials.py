"""GRIP-style grand-canonical trials (SPEC §2.5; Chen et al., GRIP, 2024).

A trial is drawn in the driver (cheap, deterministic from ``(seed, index)``) as a small
picklable :class:`TrialSpec`; a worker turns it into a slab, perturbs it, optionally anneals
it, relaxes it with CG and returns a flat result dict. Workers hold one LAMMPS instance each
(:func:`gbsearch.relaxation.engine.shared_engine`).
"""
from __future__ import annotations

import math
import time
import traceback
from dataclasses import asdict, dataclass

import numpy as np
from ase import Atoms

from gbsearch.geometry.bicrystal import A0_W, FIXED_REGIONS, FREE_LOWER, FREE_UPPER, twist_bicrystal
from gbsearch.geometry.csl import find_twist_csl, twist_frame
from gbsearch.geometry.periodic import minimum_image


@dataclass(frozen=True)
class SearchSettings:
    """What varies between trials and how (GRIP's published defaults where affordable)."""
    misorientation: float = 36.87
    replicates: tuple = ((2, 2),)          # in-plane supercells of the CSL cell to draw from
    n_fixed: int = 8
    n_free: int = 8
    gap: float = 0.3                       # Å between the grains before relaxation
    perturbation: float = 0.3              # Å, max random displacement of GB-region atoms
    md_probability: float = 0.95
    md_temperatures: tuple = (1000.0, 2500.0)   # K, drawn in steps of 100 K
    md_steps: tuple = (5000, 300_000)           # drawn log-uniformly
    insert_probability: float = 0.0        # share of trials that insert instead of delete


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
    n_delete: int                # atoms removed from the two GB-adjacent planes
    n_insert: int                # atoms added in the GB gap
    perturbation: float
    md_temperature: float        # K; 0 = no MD
    md_steps: int
    md_seed: int = 1
    structure_seed: int = 0      # deletions, insertions and perturbations

    def as_dict(self) -> dict:
        d = asdict(self)
        d["replicate"] = "x".join(str(v) for v in self.replicate)
        d["shift_x"], d["shift_y"] = self.shift
        del d["shift"]
        return d


def settings_from_dict(d: dict) -> SearchSettings:
    """SearchSettings from its JSON form (lists back to the tuples the dataclass holds)."""
    d = dict(d)
    d["replicates"] = tuple(tuple(r) for r in d["replicates"])
    for key in ("md_temperatures", "md_steps"):
        d[key] = tuple(d[key])
    return SearchSettings(**d)


def draw_trial(settings: SearchSettings, seed: int, index: int) -> TrialSpec:
    """Draw trial ``index`` of the search with master ``seed`` (same inputs, same trial)."""
    rng = np.random.default_rng([seed, index])
    csl = find_twist_csl(settings.misorientation)
    edge = twist_frame(csl)[0] * A0_W
    replicate = tuple(settings.replicates[rng.integers(len(settings.replicates))])
    n_plane = csl.sigma * replicate[0] * replicate[1]
    k = int(rng.integers(n_plane))      # [n] ∈ {0, 1/N_plane, ...}
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
                     structure_seed=int(rng.integers(2**31)))


def _gb_adjacent(atoms: Atoms) -> np.ndarray:
    """Indices of the top free-A plane and the bottom free-B plane."""
    region, z = atoms.arrays["region"], atoms.positions[:, 2]
    lower = np.flatnonzero(region == FREE_LOWER)
    upper = np.flatnonzero(region == FREE_UPPER)
    top = lower[np.isclose(z[lower], z[lower].max(), atol=1e-3)]
    bottom = upper[np.isclose(z[upper], z[upper].min(), atol=1e-3)]
    return np.concatenate([top, bottom])


def trial_structure(spec: TrialSpec) -> Atoms:
    """The unrelaxed, perturbed slab of a trial."""
    rng = np.random.default_rng(spec.structure_seed)
    atoms = twist_bicrystal(spec.misorientation, replicate=spec.replicate, n_fixed=spec.n_fixed,
                            n_free=spec.n_free, shift=spec.shift, gap=spec.gap)
    if spec.n_delete:
        del atoms[rng.choice(_gb_adjacent(atoms), spec.n_delete, replace=False)]
    for _ in range(spec.n_insert):
        _insert_in_gap(atoms, rng)
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    near = free & (np.abs(atoms.positions[:, 2] - atoms.info["gb_z"]) < 10.0)
    atoms.positions[near] += rng.uniform(-spec.perturbation, spec.perturbation, (near.sum(), 3))
    atoms.wrap()
    return atoms


def _insert_in_gap(atoms: Atoms, rng: np.random.Generator, min_distance: float = 2.0) -> None:
    """Add one free-B atom near the GB plane, at least ``min_distance`` Å from the others."""
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
