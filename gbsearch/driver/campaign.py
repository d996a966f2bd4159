"""The search campaign (``gbsearch run`` / :func:`gbsearch.search`).

slab template → N in-painted candidates (bundled model) → decoded Atoms → relaxed in
parallel on Dask → γ_GB, [n] → ASE database + table.csv (reference rows alongside) →
γ–[n] plot → summary. Candidate i depends on (seed, i) only and every batch is written as it
is decoded, every relaxation as it finishes, so a killed campaign resumes where it stopped and
a resumed campaign with a larger ``candidates`` keeps candidates 0…k−1 exactly.
"""
from __future__ import annotations

import json
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from ase import Atoms

from gbsearch.errors import GBSearchError, InputError
from gbsearch.io_utils import atomic_path, atomic_write, writable_dir
from gbsearch.driver.config import CampaignConfig
from gbsearch.store.database import DB_NAME, CampaignDB, row_to_atoms

SOURCE = "diffusion"
CANDIDATES = "candidates.extxyz"
META = "campaign.json"
LEGACY_NFE = 60       # campaign.json files written before nfe was recorded
# Settings a resumed campaign must share with the one that wrote the folder: the candidates
# (model, seed, nfe) and how they are relaxed (anneal). The count may grow.
RESUME_KEYS = ("model", "seed", "nfe", "solver", "anneal")
LEGACY_SOLVER = "dpm3-singlestep"   # campaign.json files written before the solver was recorded


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


def _import_reference(db: CampaignDB, boundary) -> int:
    """Copy the bundled reference rows into the campaign database (once)."""
    from gbsearch.store.references import bundled_reference, reference_db_path
    if db.db.count(source="reference") or bundled_reference(boundary) is None:
        return 0
    from ase.db import connect
    src = connect(reference_db_path(boundary))
    n = 0
    with db.db:
        for row in src.select(source="reference"):
            db.db.write(row.toatoms(), key_value_pairs=row.key_value_pairs, data=row.data)
            n += 1
    return n


# -- the campaign folder's candidate file and metadata -------------------------------------------

def read_meta(out: Path) -> dict | None:
    """campaign.json of a folder (None if there is none); InputError naming it if unreadable."""
    path = out / META
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"a JSON {type(meta).__name__}, not an object")
    except (OSError, ValueError) as exc:
        raise InputError(f"{path} is corrupt ({exc}); restore it, or delete it to continue the campaign "
                         "with the current settings (the database keeps every relaxed candidate)") from None
    # campaigns written before nfe / anneal were recorded used 60 NFE and CG only
    return {"nfe": LEGACY_NFE, "anneal": None, "solver": LEGACY_SOLVER, **meta}


def read_candidates(out: Path) -> dict[int, Atoms]:
    """The candidates written so far, by index; InputError naming the file if it is corrupt."""
    from ase.io import read
    path = out / CANDIDATES
    if not path.exists():
        return {}
    try:
        frames = read(path, index=":", format="extxyz")
    except Exception as exc:  # noqa: BLE001 - ase.io raises many types on truncated or garbled files
        raise InputError(f"{path} is corrupt or truncated ({type(exc).__name__}: {exc}); delete it and "
                         "re-run: candidates are regenerated identically from (seed, index) and the "
                         "database keeps every relaxed one") from None
    # frames written before candidates carried their index are in index order
    return {int(a.info.get("candidate", i)): a for i, a in enumerate(frames)}


def _write_candidates(out: Path, frames: dict[int, Atoms]) -> None:
    """All candidates so far, in index order, replacing the file atomically (a kill while
    writing leaves the previous file whole)."""
    from ase.io import write
    with atomic_path(out / CANDIDATES) as tmp:
        write(tmp, [frames[i] for i in sorted(frames)], format="extxyz")


def with_sampling(config: CampaignConfig, model_path: Path) -> CampaignConfig:
    """The configuration with its network evaluations and solver resolved for the model (the
    model's own where not set), so that campaign.json records what ran."""
    from gbsearch.gbmodel.model import model_sampling
    nfe, solver = model_sampling(model_path, config.nfe, config.solver)
    return config.replace(nfe=nfe, solver=solver)


def _check_resume(out: Path, config: CampaignConfig, model_path: Path) -> dict:
    """The folder's campaign.json, refused with the differing keys if it was written by a
    campaign with other candidates or another relaxation; a fresh one otherwise."""
    asked = {"model": str(model_path), "seed": config.seed, "nfe": config.nfe, "solver": config.solver,
             "anneal": config.anneal}
    stored = read_meta(out)
    if stored is None:
        return {**asked, "candidates": config.candidates, "generated": []}
    differ = [k for k in RESUME_KEYS if stored.get(k) != asked[k]]
    if differ:
        detail = ", ".join(f"{k} {stored.get(k)} (asked: {asked[k]})" for k in differ)
        raise InputError(f"{out} holds a campaign with another {detail} ({out / META}); use another --out")
    stored["candidates"] = max(int(stored.get("candidates", 0)), config.candidates)
    stored.setdefault("generated", [])
    return stored


def generate_candidates(config: CampaignConfig, progress: bool = True, model_path: Path | None = None,
                        on_ready=None, threads: int | None = None) -> list[Atoms]:
    """Candidates 0…N−1 of the campaign folder: those on disk are kept, only the missing
    indices are generated, and each batch is written as soon as it is decoded (a kill loses at
    most the batch in flight).

    on_ready(dict index → Atoms) is called with the candidates on disk first, then with each
    batch as it is written, as the file will give them back (extended XYZ rounds positions), so
    that relaxations can start while later batches are generated. threads: torch threads for
    CPU generation (None: torch's default)."""
    from gbsearch.gbmodel.model import model_for

    out = writable_dir(config.out_dir)
    model_path = model_path or model_for(config.boundary, config.model)
    config = with_sampling(config, model_path)
    meta = _check_resume(out, config, model_path)
    frames = read_candidates(out)
    if on_ready is not None and frames:
        on_ready(dict(frames))
    missing = [i for i in range(config.candidates) if i not in frames]
    if missing:
        import torch

        from gbsearch.gbmodel.model import GBGenerator
        before = torch.get_num_threads()
        if threads is not None and not torch.cuda.is_available():
            torch.set_num_threads(threads)       # before loading: OpenVINO takes its thread count then
        try:
            gen = GBGenerator.load(model_path, runtime=config.runtime if not torch.cuda.is_available() else "torch",
                                   boundary=config.boundary)
        except BaseException:
            torch.set_num_threads(before)
            raise
        run = {"indices": len(missing), "device": str(gen.device), "solver": config.solver,
               "runtime": config.runtime if gen.device.type == "cpu" else "torch",
               "batch_size": config.batch_for(gen.device), "started": _now(), "seconds": 0.0}
        meta["generated"].append(run)
        t0 = time.perf_counter()

        def keep(batch: list[Atoms]) -> None:
            stamp = _now()
            for atoms in batch:
                atoms.info["generated_at"] = stamp
                frames[atoms.info["candidate"]] = atoms
            _write_candidates(out, frames)
            run["seconds"] = round(time.perf_counter() - t0, 3)
            _write_meta(out, meta)
            if on_ready is not None:
                on_ready({a.info["candidate"]: a for a in _as_written(batch)})

        try:
            gen.generate(missing, seed=config.seed, steps=config.nfe, progress=progress, on_batch=keep,
                         batch_size=config.batch_for(gen.device), solver=config.solver)
        finally:
            torch.set_num_threads(before)
        # What is relaxed is what the file holds, so a fresh and a resumed campaign relax the
        # same structures.
        frames = read_candidates(out)
    _write_meta(out, meta)
    return [frames[i] for i in range(config.candidates)]


def _as_written(batch: list[Atoms]) -> list[Atoms]:
    """The frames as the candidate file returns them (extended XYZ, same writer and reader)."""
    import io

    from ase.io import read, write
    buf = io.StringIO()
    write(buf, batch, format="extxyz")
    buf.seek(0)
    return read(buf, index=":", format="extxyz")


def _write_meta(out: Path, meta: dict) -> None:
    atomic_write(out / META, json.dumps(meta, indent=2))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


# -- the campaign ---------------------------------------------------------------------------------

def run_campaign(config: CampaignConfig | None = None, *, client=None, progress: bool = True,
                 **settings) -> CampaignResult:
    """Run (or resume) a diffusion campaign; see the module docstring.

    config: a :class:`CampaignConfig`; or pass its settings as keywords (``misorientation=…,
    candidates=…``). ``client``: a Dask client to use (else one from the configuration's
    scheduler / cluster / workers)."""
    if config is None:
        config = CampaignConfig.build(**settings)
    elif settings:
        config = config.replace(**settings)
    from gbsearch.analysis.report import write_report
    from gbsearch.driver.cluster import default_workers
    from gbsearch.gbmodel.model import model_for

    # Everything that can be refused is checked before anything is written.
    model_path = model_for(config.boundary, config.model)
    config = with_sampling(config, model_path)
    out = writable_dir(config.out_dir)
    _check_resume(out, config, model_path)
    read_candidates(out)
    db = CampaignDB(config.database or out / DB_NAME)
    _import_reference(db, config.boundary)
    done = db.done_trials(SOURCE)
    own = client is None and not set(range(config.candidates)) <= done
    split = own and _generates_on_cpu() and config.scheduler is None and config.cluster is None
    cores = config.workers or default_workers()
    if own:
        # On a CPU machine generation takes one core of the local cluster's until it is done
        # (the network costs a fraction of an anneal + CG per candidate), then the cluster
        # grows back to every core.
        client = _client(config, workers=max(1, cores - 1) if split else None)
    try:
        frames = _generate_and_relax(
            config, db, client, done, model_path, progress, gen_threads=1 if split else None,
            after_generation=(lambda: client.cluster.scale(cores)) if split and cores > 1 else None)
    finally:
        if own:
            from gbsearch.driver.cluster import close_client
            close_client(client)
    b = config.boundary
    summary = write_report(db, out, title=f"Σ{b.sigma} {b.angle_deg:.2f}° <100> twist, W (Zhou 2004)")
    structures = sorted((row_to_atoms(r) for r in db.rows(source=SOURCE, status="ok")),
                        key=lambda a: a.info["gamma_J_m2"])
    if structures:
        from ase.io import write
        write(out / "best.extxyz", structures[0], format="extxyz")
        best = structures[0].info
        summary += (f"\nlowest-energy diffusion structure: γ = {best['gamma_J_m2']:.4f} J/m² at "
                    f"[n] = {best['n_frac']:.4f} → {out / 'best.extxyz'}")
    unseen = _unseen_note(model_path, b)
    if unseen:
        summary += "\n" + unseen
    if structures or unseen:
        (out / "summary.txt").write_text(summary + "\n")
    if not structures and frames:
        raise GBSearchError(f"none of the {len(frames)} candidates relaxed; see {out / 'table.csv'}")
    from gbsearch.analysis.html_report import write_html_report
    write_html_report(out, db)
    return CampaignResult(out, structures, summary)


def _unseen_note(model_path: Path, boundary) -> str | None:
    """A line for the summary when ``boundary`` was not in the model's training set."""
    from gbsearch.gbmodel.model import model_trained_on
    trained = model_trained_on(model_path)
    if boundary.sigma in trained:
        return None
    return (f"{boundary.label} was not in the model's training set ({', '.join(f'Σ{v}' for v in trained)}): "
            f"its candidates are the transferable model's zero-shot proposals ({model_path.name})")


def _client(config: CampaignConfig, workers: int | None = None):
    """The Dask client of a configuration: its cluster file, its scheduler, or local workers
    (``workers`` of them when given, else the configuration's)."""
    if config.cluster is not None:
        from gbsearch.driver.workflow_files import load_cluster
        return load_cluster(config.cluster)
    from gbsearch.driver.cluster import get_client
    return get_client(config.scheduler, workers or config.workers)


def _generates_on_cpu() -> bool:
    import torch
    return not torch.cuda.is_available()


def _generate_and_relax(config, db, client, done, model_path, progress, gen_threads=None,
                        after_generation=None) -> list[Atoms]:
    """Generate the missing candidates in a thread while the Dask workers relax each batch as
    it is written; every result is recorded as it arrives (a kill loses only work in flight).
    ``after_generation()`` runs once the last batch is written. Returns all candidates, as the
    candidate file holds them. ``client`` may be None when every candidate is relaxed already."""
    import threading

    from distributed import wait
    from tqdm.auto import tqdm

    known = db.known(SOURCE)
    relax_settings = config.relax_settings()
    pending, lock = {}, threading.Lock()

    def submit(ready: dict) -> None:
        with lock:
            for i, atoms in sorted(ready.items()):
                if i not in done and i not in pending and i < config.candidates:
                    pending[i] = (client.submit(relax_candidate, atoms, i, relax_settings, config.anneal_for(i),
                                                pure=False), atoms)

    generated, error = [], []

    def generate() -> None:
        try:
            generated.extend(generate_candidates(config, progress, model_path, on_ready=submit, threads=gen_threads))
            if after_generation is not None:
                after_generation()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the campaign's thread
            error.append(exc)

    worker = threading.Thread(target=generate, name="generate-candidates", daemon=True)
    worker.start()
    bar = tqdm(total=config.candidates, initial=len(done & set(range(config.candidates))),
               desc="relaxing candidates", unit="cand", disable=not progress)
    failed = 0
    while True:
        with lock:
            futs = {f: i for i, (f, _) in pending.items()}
        if not futs:
            if not worker.is_alive():
                break
            worker.join(0.2)
            continue
        try:
            wait(list(futs), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            continue
        for fut, i in futs.items():
            if not fut.done():
                continue
            try:
                result = fut.result()
            except Exception as exc:  # worker died
                result = {"spec": {"candidate": i}, "status": "failed", "atoms": pending[i][1],
                          "error": f"worker failure: {type(exc).__name__}: {exc}"}
            _, status = db.record(SOURCE, i, result, known)
            with lock:
                del pending[i]
            done.add(i)
            failed += status == "failed"
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)
    bar.close()
    worker.join()
    if error:
        raise error[0]
    return generated
