"""The search campaign (``gbsearch run`` / :func:`gbsearch.search`).

slab template → N in-painted candidates (bundled model) → decoded Atoms → relaxed in
parallel on Dask → γ_GB, [n] → ASE database + table.csv (reference rows alongside) →
γ–[n] plot → summary. Candidates are saved before relaxation and every relaxation is
written as it finishes, so a killed campaign resumes where it stopped.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from ase import Atoms

from gbsearch.store.database import CampaignDB, row_to_atoms
from gbsearch.errors import GBSearchError, InputError
from gbsearch.io_utils import writable_dir

SOURCE = "diffusion"
DB_NAME = "campaign.db"
CANDIDATES = "candidates.extxyz"
# DPM-Solver-3 steps per candidate. SPEC §4 samples with 60; on the full model 20 gave the same
# best relaxed γ of 32 candidates (2.762 vs 2.756 J/m²) at a third of the cost, and on a CPU
# generation dominates a campaign, so campaigns default to 20 and take more candidates.
DEFAULT_NFE = 20
DEFAULT_CANDIDATES = 12
LEGACY_NFE = 60       # campaign.json files written before nfe was recorded
# Short NVT anneal of each candidate's free atoms before CG (K, MD steps of 2 fs), as the
# reference search does: on the 8 candidates of the earlier default (60 NFE) it lowered every
# relaxed γ, the best from 2.944 to 2.503 J/m² (bench/bench_anneal.py). 0 steps = CG only (the paper).
DEFAULT_ANNEAL_TEMPERATURE = 1500.0
DEFAULT_ANNEAL_STEPS = 5000


def anneal_for(index: int, seed: int, temperature: float, steps: int):
    """The AnnealSettings of candidate ``index`` (its own velocity seed), None for CG only."""
    if steps <= 0:
        return None
    from gbsearch.relaxation.engine import AnnealSettings
    return AnnealSettings(temperature=float(temperature), steps=int(steps), seed=1 + index + 100_003 * seed)


def relax_candidate(atoms: Atoms, index: int, settings=None, anneal=None) -> dict:
    """Worker task: (anneal and) relax one candidate; a failure is returned as a result, never raised."""
    from gbsearch.relaxation.relax import relax

    t0 = time.perf_counter()
    record = {"spec": {"candidate": index, "n_generated": len(atoms)}, "status": "failed", "atoms": atoms}
    try:
        record.update(atoms=relax(atoms, settings, anneal=anneal), status="ok")
        if record["atoms"].info.get("md_steps"):     # the anneal that actually ran
            record["spec"].update(md_temperature=anneal.temperature, md_steps=anneal.steps, md_seed=anneal.seed)
    except Exception as exc:  # noqa: BLE001 - recorded with its reason, the campaign goes on
        record["error"] = f"{type(exc).__name__}: {exc}".strip()[:2000]
        record["traceback"] = traceback.format_exc(limit=3)[-2000:]
    record["wall_s"] = time.perf_counter() - t0
    return record


@dataclass
class CampaignResult:
    out_dir: Path
    structures: list          # relaxed diffusion candidates, lowest γ first
    summary: str


def _import_reference(db: CampaignDB, misorientation: float) -> int:
    """Copy the bundled reference rows into the campaign database (once)."""
    from gbsearch.store.references import bundled_reference, reference_db_path
    if db.db.count(source="reference") or bundled_reference(misorientation) is None:
        return 0
    from ase.db import connect
    src = connect(reference_db_path(misorientation))
    n = 0
    with db.db:
        for row in src.select(source="reference"):
            db.db.write(row.toatoms(), key_value_pairs=row.key_value_pairs, data=row.data)
            n += 1
    return n


def _candidates(out: Path, model_path: Path, n: int, seed: int, progress: bool, nfe: int,
                anneal: list | None) -> list[Atoms]:
    """Generate the N candidates once and keep them; a resumed campaign reads them back."""
    from ase.io import read, write

    path = out / CANDIDATES
    meta_path = out / "campaign.json"
    meta = {"model": str(model_path), "candidates": n, "seed": seed, "nfe": nfe, "anneal": anneal}
    keys = ("model", "seed", "nfe", "anneal")
    if meta_path.exists():
        # campaigns written before nfe / anneal were recorded used 60 NFE and CG only
        stored = {"nfe": LEGACY_NFE, "anneal": None, **json.loads(meta_path.read_text())}
        if {k: stored.get(k) for k in keys} != {k: meta[k] for k in keys}:
            differ = ", ".join(f"{k} {stored.get(k)} (asked: {meta[k]})" for k in keys if stored.get(k) != meta[k])
            raise InputError(f"{out} holds a campaign with another {differ} ({meta_path}); use another --out")
    if path.exists():
        frames = read(path, index=":")
        if len(frames) >= n:
            return frames[:n]
    from gbsearch.gbmodel.model import GBGenerator
    gen = GBGenerator.load(model_path)
    t0 = time.perf_counter()
    # Small batches on CPU: no throughput to gain there, and the progress bar moves.
    frames = gen.generate(n, seed=seed, steps=nfe, progress=progress,
                          batch_size=16 if gen.device.type == "cuda" else 2)
    meta.update(generate_s=time.perf_counter() - t0, generate_device=str(gen.device))
    tmp = path.with_suffix(".tmp.extxyz")
    write(tmp, frames, format="extxyz")
    tmp.replace(path)
    meta_path.write_text(json.dumps(meta, indent=2))
    return frames


def resolve_model(misorientation: float, model: str | Path | None) -> Path:
    from gbsearch.geometry.csl import find_twist_csl
    from gbsearch.gbmodel.model import bundled_model
    csl = find_twist_csl(misorientation)      # clear error for non-CSL angles first
    if model is not None:
        path = Path(model)
        if not path.exists():
            raise InputError(f"model file not found: {path}")
        return path
    path = bundled_model(misorientation)
    if path is None:
        raise InputError(
            f"no bundled model for Σ{csl.sigma} ({csl.angle_deg:.2f}°). Make one with:\n"
            f"  gbsearch reference --misorientation {misorientation} --out runs/ref-sigma{csl.sigma}\n"
            f"  gbsearch train --reference runs/ref-sigma{csl.sigma} --out runs/model-sigma{csl.sigma}\n"
            f"then pass --model runs/model-sigma{csl.sigma}/model.pt (or use --train to do both now)")
    return path


def run_campaign(misorientation: float = 36.87, candidates: int = DEFAULT_CANDIDATES, out: str | Path | None = None,
                 model: str | Path | None = None, scheduler: str | None = None, workers: int | None = None,
                 seed: int = 0, database: str | None = None, progress: bool = True, client=None,
                 relax_settings=None, nfe: int | None = None, anneal_temperature: float | None = None,
                 anneal_steps: int | None = None) -> CampaignResult:
    """Run (or resume) a diffusion campaign; see the module docstring. ``client``: a Dask
    client to use (else one from ``scheduler``/``workers``); ``relax_settings``: RelaxSettings;
    ``nfe``: solver steps per candidate (None = DEFAULT_NFE); ``anneal_temperature`` (K) and
    ``anneal_steps`` (MD steps of 2 fs before CG; 0 = CG only): None = the defaults above."""
    nfe = DEFAULT_NFE if nfe is None else nfe
    candidates = DEFAULT_CANDIDATES if candidates is None else candidates
    temp = DEFAULT_ANNEAL_TEMPERATURE if anneal_temperature is None else float(anneal_temperature)
    steps = DEFAULT_ANNEAL_STEPS if anneal_steps is None else int(anneal_steps)
    # checked before anything is created on disk
    if nfe < 1:
        raise InputError(f"nfe must be at least 1, got {nfe}")
    if candidates < 1:
        raise InputError(f"candidates must be at least 1, got {candidates}")
    if steps < 0:
        raise InputError(f"anneal steps must be 0 (CG only) or more, got {steps}")
    if steps > 0 and not 0 < temp <= 10_000:
        raise InputError(f"anneal temperature must be in (0, 10000] K, got {temp:g}")
    anneal = [temp, steps] if steps > 0 else None
    from distributed import as_completed
    from tqdm.auto import tqdm

    from gbsearch.analysis.report import write_report

    model_path = resolve_model(misorientation, model)
    out = writable_dir(out or f"runs/run-{misorientation:g}")
    db = CampaignDB(database or out / DB_NAME)
    _import_reference(db, misorientation)
    frames = _candidates(out, model_path, candidates, seed, progress, nfe, anneal)
    done = db.done_trials(SOURCE)
    todo = [i for i in range(len(frames)) if i not in done]
    if todo:
        own = client is None
        if own:
            from gbsearch.search.cluster import get_client
            client = get_client(scheduler, workers)
        try:
            known = db.known(SOURCE)
            futures = as_completed()
            for i in todo:
                fut = client.submit(relax_candidate, frames[i], i, relax_settings,
                                    anneal_for(i, seed, temp, steps), pure=False)
                fut.index = i
                futures.add(fut)
            bar = tqdm(total=len(frames), initial=len(frames) - len(todo), desc="relaxing candidates",
                       unit="cand", disable=not progress)
            failed = 0
            for fut in futures:
                try:
                    result = fut.result()
                except Exception as exc:  # worker died
                    result = {"spec": {"candidate": fut.index}, "status": "failed", "atoms": frames[fut.index],
                              "error": f"worker failure: {type(exc).__name__}: {exc}"}
                _, status = db.record(SOURCE, fut.index, result, known)
                failed += status == "failed"
                bar.update(1)
                bar.set_postfix(failed=failed, refresh=False)
            bar.close()
        finally:
            if own:
                from gbsearch.search.cluster import close_client
                close_client(client)
    summary = write_report(db, out, title=f"{misorientation:g}° <100> twist, W (Zhou 2004)")
    structures = sorted((row_to_atoms(r) for r in db.rows(source=SOURCE, status="ok")),
                        key=lambda a: a.info["gamma_J_m2"])
    if structures:
        from ase.io import write
        write(out / "best.extxyz", structures[0], format="extxyz")
        b = structures[0].info
        summary += (f"\nlowest-energy diffusion structure: γ = {b['gamma_J_m2']:.4f} J/m² at "
                    f"[n] = {b['n_frac']:.4f} → {out / 'best.extxyz'}")
        (out / "summary.txt").write_text(summary + "\n")
    elif len(frames):
        raise GBSearchError(f"none of the {len(frames)} candidates relaxed; see {out / 'table.csv'}")
    return CampaignResult(out, structures, summary)
