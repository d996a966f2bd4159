"""A small serial GRIP-style search for any boundary of :mod:`gbsearch.geometry.csl_general`
(issue #19): symmetric tilt or twist, any EAM potential.

Each trial, drawn deterministically from ``(seed, index)``: an in-plane replication from
``replicates`` (elongated 1×k cells included), a uniform in-plane shift of the upper grain over
the 1×1 cell, either the deletion of k ∈ 0..N_plane−1 atoms of the upper grain's bottom
atomic plane or the insertion of k ∈ 1..N_plane−1 atoms on the sites that continue one grain
into a gap widened by one plane spacing, random displacements (≤ ``perturbation`` Å) of the
free atoms within 10 Å of the GB, an optional NVT anneal, then CG. γ and [n] come from
:func:`gbsearch.relaxation.relax.relax` with the potential's own E_coh.

This runs in-process (no Dask, no database): it is the end-to-end check of the general
builder with the relaxation, not yet the reference search of :mod:`gbsearch.driver.reference`
(whose settings, database rows and convergence tracking are keyed by the <100> twist angle).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_REGIONS, FREE_LOWER, FREE_UPPER, UPPER_REGIONS
from gbsearch.geometry.csl_general import GBGeometry, csl_bicrystal

INSERT_EXTRA_GAP = 0.5     # Å added on top of one plane spacing when atoms are inserted


@dataclass(frozen=True)
class GBSearchSettings:
    replicates: tuple = ((1, 1),)
    n_fixed: int | None = None        # atomic planes; None: the builder's default (4 a0)
    n_free: int | None = None
    gap: float = 0.3
    perturbation: float = 0.3
    insert_probability: float = 0.5
    md_probability: float = 0.0
    md_temperature: float = 1000.0
    md_steps: int = 2000


@dataclass
class GBTrial:
    index: int
    replicate: tuple
    shift: tuple
    n_delete: int
    n_insert: int
    md: bool
    status: str = "failed"
    gamma_J_m2: float | None = None
    n_frac: float | None = None
    n_atoms: int = 0
    error: str | None = None
    wall_s: float = 0.0
    atoms: Atoms | None = field(default=None, repr=False)


def _plane(atoms: Atoms, mask: np.ndarray, which: str) -> np.ndarray:
    idx = np.flatnonzero(mask)
    z = atoms.positions[idx, 2]
    ref = z.min() if which == "min" else z.max()
    return idx[np.isclose(z, ref, atol=1e-3)]


def insert_continuation_sites(atoms: Atoms, k: int, side: int, planes_per_period: int,
                              rng: np.random.Generator) -> None:
    """Insert ``k`` atoms on sites of the atomic plane that would continue the lower
    (``side`` 0) or upper (1) grain into the GB gap: the plane one period (``planes_per_period``
    planes) away from that position has the same in-plane sites."""
    region = atoms.arrays["region"]
    pos = atoms.positions
    d = float(atoms.info["plane_spacing"])
    n_plane = int(atoms.info["n_plane"])
    grain = ~np.isin(region, UPPER_REGIONS) if side == 0 else np.isin(region, UPPER_REGIONS)
    z = np.round(pos[grain, 2] / d).astype(int)
    levels = np.unique(z)
    edge = levels.max() if side == 0 else levels.min()
    source_level = edge + 1 - planes_per_period if side == 0 else edge - 1 + planes_per_period
    idx = np.flatnonzero(grain)[z == source_level]
    if not 0 < k < n_plane or len(idx) != n_plane:
        raise InputError(f"cannot insert {k} atoms on a plane of {len(idx)} sites (N_plane {n_plane}); "
                         "the grains need at least one period of planes")
    z_new = pos[_plane(atoms, grain, "max" if side == 0 else "min"), 2][0] + (d if side == 0 else -d)
    chosen = rng.choice(idx, k, replace=False)
    new = np.column_stack([pos[chosen, :2], np.full(k, z_new)])
    atoms.extend(Atoms(atoms.get_chemical_symbols()[0] * k, positions=new))
    atoms.arrays["region"] = np.concatenate([region, [FREE_LOWER if side == 0 else FREE_UPPER] * k]).astype(np.int32)


def draw_trial(geometry: GBGeometry, settings: GBSearchSettings, seed: int, index: int, a0: float) -> GBTrial:
    rng = np.random.default_rng([seed, index])
    rep = tuple(settings.replicates[rng.integers(len(settings.replicates))])
    n_plane = geometry.n_plane(rep)
    ex, ey = geometry.edges(a0)
    shift = (float(rng.uniform(0, ex)), float(rng.uniform(0, ey)))
    insert = n_plane > 1 and bool(rng.random() < settings.insert_probability)
    k = int(rng.integers(1, n_plane)) if insert else int(rng.integers(n_plane))
    md = bool(rng.random() < settings.md_probability)
    return GBTrial(index=index, replicate=rep, shift=shift, n_delete=0 if insert else k,
                   n_insert=k if insert else 0, md=md)


def trial_structure(geometry: GBGeometry, settings: GBSearchSettings, trial: GBTrial, seed: int,
                    a0: float, symbol: str) -> Atoms:
    rng = np.random.default_rng([seed, trial.index, 1])
    extra = geometry.spacing_a0 * a0 + INSERT_EXTRA_GAP if trial.n_insert else 0.0
    atoms = csl_bicrystal(geometry, replicate=trial.replicate, n_fixed=settings.n_fixed,
                          n_free=settings.n_free, shift=trial.shift, gap=settings.gap + extra,
                          a0=a0, symbol=symbol)
    if trial.n_delete:
        bottom = _plane(atoms, atoms.arrays["region"] == FREE_UPPER, "min")
        del atoms[rng.choice(bottom, trial.n_delete, replace=False)]
    if trial.n_insert:
        insert_continuation_sites(atoms, trial.n_insert, int(rng.integers(2)),
                                  geometry.planes_per_period, rng)
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    near = free & (np.abs(atoms.positions[:, 2] - atoms.info["gb_z"]) < 10.0)
    atoms.positions[near] += rng.uniform(-settings.perturbation, settings.perturbation, (near.sum(), 3))
    atoms.wrap()
    return atoms


def gb_search(geometry: GBGeometry, n_trials: int, seed: int = 0,
              settings: GBSearchSettings = GBSearchSettings(), potential=None) -> list[GBTrial]:
    """Run ``n_trials`` trials serially; returns them (failures recorded, never raised),
    sorted by γ (failed last)."""
    from gbsearch.relaxation.engine import AnnealSettings
    from gbsearch.relaxation.potential import as_potential
    from gbsearch.relaxation.relax import relax

    pot = as_potential(potential)
    if pot.lattice != geometry.lattice:
        raise InputError(f"the boundary is {geometry.lattice} but {pot.element} in {pot.path.name} is {pot.lattice}")
    a0, _ = pot.properties()
    out = []
    for index in range(int(n_trials)):
        t0 = time.perf_counter()
        trial = draw_trial(geometry, settings, seed, index, a0)
        try:
            atoms = trial_structure(geometry, settings, trial, seed, a0, pot.element)
            anneal = (AnnealSettings(settings.md_temperature, settings.md_steps, seed=1 + index)
                      if trial.md else None)
            res = relax(atoms, anneal=anneal, potential=pot)
            trial.status, trial.atoms = "ok", res
            trial.gamma_J_m2, trial.n_frac = float(res.info["gamma_J_m2"]), float(res.info["n_frac"])
            trial.n_atoms = len(res)
        except Exception as exc:   # one failed trial is a result, the search goes on
            trial.error = f"{type(exc).__name__}: {exc}"[:2000]
        trial.wall_s = time.perf_counter() - t0
        out.append(trial)
    return sorted(out, key=lambda t: (t.gamma_J_m2 is None, t.gamma_J_m2 or 0.0, t.index))
