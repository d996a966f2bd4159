"""Grand-canonical reference search driver (``gbsearch reference``), SPEC §2.5.

Draws trials, runs them on Dask workers, writes each result to the campaign database as it
arrives, and stops at the target number of distinct relaxed structures. Re-running the same
command resumes: finished trials are skipped, the target counts what is already stored.
"""
from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from gbsearch.store.database import CampaignDB
from gbsearch.errors import GBSearchError
from gbsearch.search.trials import SearchSettings, TrialSpec, draw_trial, run_trial
from gbsearch.io_utils import writable_dir

SOURCE = "reference"
DB_NAME = "campaign.db"


@dataclass
class SearchOutcome:
    ok: int
    failed: int
    duplicates: int
    trials_run: int
    out_dir: Path


def run_search(out_dir: str | Path, structures: int, settings: SearchSettings = SearchSettings(),
               seed: int = 0, workers: int | None = None, scheduler: str | None = None,
               database: str | None = None, max_trials: int | None = None,
               spec_fn: Callable[[int], TrialSpec] | None = None, progress: bool = True,
               client=None) -> SearchOutcome:
    """Run (or resume) a reference search until ``structures`` distinct ok structures exist.

    spec_fn(index) -> TrialSpec overrides how trials are drawn (default: :func:`draw_trial`
    with ``settings`` and ``seed``). ``max_trials`` bounds the attempts (default 20x target).
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    out = writable_dir(out_dir)
    db = CampaignDB(database or out / DB_NAME)
    _write_settings(out, settings, seed, structures)
    spec_fn = spec_fn or (lambda i: draw_trial(settings, seed, i))
    done = db.done_trials(SOURCE)
    known = db.known(SOURCE)
    counts = {s: db.count(SOURCE, s) for s in ("ok", "failed", "duplicate")}
    max_trials = max_trials or 20 * structures
    ran = 0
    if counts["ok"] >= structures:
        return SearchOutcome(counts["ok"], counts["failed"], counts["duplicate"], 0, out)

    own_client = client is None
    if own_client:
        from gbsearch.search.cluster import get_client
        client = get_client(scheduler, workers)
    try:
        from gbsearch.search.cluster import n_workers
        window = 2 * n_workers(client)
        todo = (i for i in itertools.count() if i not in done)
        bar = tqdm(total=structures, initial=counts["ok"], desc="reference structures",
                   disable=not progress, unit="str")
        best = db.best(SOURCE)
        best_gamma = best.gamma_J_m2 if best is not None else float("inf")
        futures = as_completed()

        def submit_next():
            spec = spec_fn(next(todo))
            fut = client.submit(run_trial, spec, pure=False)
            fut.spec = spec
            futures.add(fut)

        for _ in range(min(window, max_trials)):
            submit_next()
        for fut in futures:
            spec = fut.spec
            try:
                result = fut.result()
            except Exception as exc:   # the worker itself died or the task could not run
                result = {"spec": spec.as_dict(), "status": "failed",
                          "error": f"worker failure: {type(exc).__name__}: {exc}"}
            if counts["ok"] < structures:
                _, status = db.record(SOURCE, spec.index, result, known)
                counts[status] += 1
                ran += 1
                if status == "ok":
                    bar.update(1)
                    best_gamma = min(best_gamma, result["atoms"].info["gamma_J_m2"])
                bar.set_postfix(best=f"{best_gamma:.4f} J/m²", failed=counts["failed"],
                                dup=counts["duplicate"], refresh=False)
            if counts["ok"] >= structures:
                for other in list(futures.futures):
                    other.cancel()
                break
            if ran + futures.count() < max_trials:
                submit_next()
            elif futures.count() == 0:
                break
        bar.close()
    finally:
        if own_client:
            from gbsearch.search.cluster import close_client
            close_client(client)
    if counts["ok"] < structures:
        raise GBSearchError(f"stopped after {max_trials} trials with {counts['ok']} of {structures} "
                            f"distinct structures ({counts['failed']} failed, {counts['duplicate']} "
                            "duplicates); re-run to continue or raise --max-trials")
    return SearchOutcome(counts["ok"], counts["failed"], counts["duplicate"], ran, out)


def _write_settings(out: Path, settings: SearchSettings, seed: int, structures: int) -> None:
    """Keep the search's settings next to its database; a resumed search must match them."""
    path = out / "reference_settings.json"
    current = {"settings": json.loads(json.dumps(asdict(settings))), "seed": seed}
    if path.exists():
        stored = json.loads(path.read_text())
        if {k: stored.get(k) for k in current} != current:
            old = "algorithm" not in stored.get("settings", {})
            raise GBSearchError(f"{out} holds a search with other settings ({path}"
                                + ("; drawn by the trial algorithm before issue #15, which new "
                                   "searches no longer use" if old else "")
                                + "); use another --out or the same options")
    else:
        path.write_text(json.dumps({**current, "structures": structures}, indent=2))
