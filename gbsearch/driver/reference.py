"""Grand-canonical reference search driver (``gbsearch reference``), SPEC §2.5.

Draws trials, runs them on Dask workers, writes each result to the campaign database as it
arrives, and stops at the target number of distinct relaxed structures (with
``until_converged``: and once the search is converged, :mod:`gbsearch.analysis.convergence`).
Re-running the same command resumes: finished trials are skipped, the target counts what is
already stored. Any boundary and EAM potential of :class:`~gbsearch.driver.trials.SearchSettings`
(issue #19): the settings, with the potential's file, element, a0 and E_coh, are kept in
``reference_settings.json`` and a resumed search must match them; every row names the boundary
and the potential in its key-value pairs (``boundary``, ``potential``, ``element``, ``a0_A``,
``e_coh_eV``).
"""
from __future__ import annotations

import itertools
import json
import shlex
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gbsearch.provenance import git_commit
from gbsearch.store.database import DB_NAME, CampaignDB
from gbsearch.errors import GBSearchError
from gbsearch.driver.trials import SearchSettings, TrialSpec, draw_trial, run_trial, settings_differences, \
    settings_from_dict
from gbsearch.io_utils import writable_dir

SOURCE = "reference"
FAIL_FAST_TRIALS = 20     # all of the first this-many trials failed: stop with the error


@dataclass
class SearchOutcome:
    ok: int
    failed: int
    duplicates: int
    trials_run: int
    out_dir: Path
    converged: bool | None = None     # checked only with until_converged


def run_search(out_dir: str | Path, structures: int, settings: SearchSettings = SearchSettings(),
               seed: int = 0, workers: int | None = None, scheduler: str | None = None,
               database: str | None = None, max_trials: int | None = None,
               spec_fn: Callable[[int], TrialSpec] | None = None, progress: bool = True,
               client=None, until_converged: bool = False, search: str | None = None) -> SearchOutcome:
    """Run (or resume) a reference search until ``structures`` distinct ok structures exist.

    spec_fn(index) -> TrialSpec overrides how trials are drawn (default: :func:`draw_trial`
    with ``settings`` and ``seed``). ``max_trials`` bounds the attempts of this call (default
    20x target). ``until_converged``: after the target, go on until the search is converged
    (ground state hit 3 times, no [n] bin improved by > 5 mJ/m² over the last third) or
    ``max_trials`` is spent; a search stopped unconverged returns ``converged=False``.
    ``search``: a name for this search in a database shared with other searches (e.g. one
    PostgreSQL database): its rows carry ``search=NAME`` and resume, de-duplication and the
    target count see only them. Default None: every reference row of the database counts.
    """
    from distributed import as_completed
    from tqdm.auto import tqdm

    # The potential is computed (a0, E_coh) and recorded before anything is written.
    settings = settings.with_potential()
    out = writable_dir(out_dir)
    db = CampaignDB(database or out / DB_NAME)
    _write_settings(out, settings, seed, structures)
    spec_fn = spec_fn or (lambda i: draw_trial(settings, seed, i))
    row_keys = {"boundary": settings.boundary.name, **settings.potential.key_value_pairs()}
    done = db.done_trials(SOURCE, search)
    known = db.known(SOURCE, search)
    counts = {s: db.count(SOURCE, s, search) for s in ("ok", "failed", "duplicate")}
    max_trials = max_trials or 20 * structures
    ran = 0
    tracker = _ConvergenceTracker(db, settings.boundary.n_plane(), search) if until_converged else None

    def satisfied() -> bool:
        return counts["ok"] >= structures and (tracker is None or tracker.converged())

    def outcome() -> SearchOutcome:
        return SearchOutcome(counts["ok"], counts["failed"], counts["duplicate"], ran, out,
                             converged=tracker.converged() if tracker is not None else None)

    if satisfied():
        return outcome()

    own_client = client is None
    if own_client:
        from gbsearch.driver.cluster import get_client
        client = get_client(scheduler, workers)
    try:
        from gbsearch.driver.cluster import planned_workers
        window = 2 * planned_workers(client)
        todo = (i for i in itertools.count() if i not in done)
        bar = tqdm(total=structures, initial=counts["ok"], desc="reference structures",
                   disable=not progress, unit="str")
        best = db.best(SOURCE, search)
        best_gamma = best.gamma_J_m2 if best is not None else float("inf")
        futures = as_completed()

        def submit_next():
            spec = spec_fn(next(todo))
            # The key names the trial in the scheduler's logs and dashboard. The priority
            # runs trials in index order, also after a worker is lost (a cancelled SLURM job):
            # its trial goes back to the front of the queue, not behind those submitted since,
            # so it is recorded before the target stops the search.
            fut = client.submit(run_trial, spec, pure=False, priority=-spec.index,
                                key=f"trial-{spec.index}-{uuid.uuid4().hex}")
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
            if not satisfied():
                row_id, status = db.record(SOURCE, spec.index, result, known, search, extra=row_keys)
                counts[status] += 1
                ran += 1
                if tracker is not None:
                    tracker.add(row_id, spec, status, result)
                if status == "ok":
                    bar.update(1)
                    best_gamma = min(best_gamma, result["atoms"].info["gamma_J_m2"])
                bar.set_postfix(best=f"{best_gamma:.4f} J/m²", failed=counts["failed"],
                                dup=counts["duplicate"], refresh=False)
                # A failure of every trial so far is the set-up (LAMMPS, potential, settings),
                # not bad luck: stop rather than fill the database with thousands of failures.
                if status == "failed" and ran >= FAIL_FAST_TRIALS and counts["ok"] + counts["duplicate"] == 0:
                    for other in list(futures.futures):
                        other.cancel()
                    raise GBSearchError(f"the first {ran} trials all failed; the last: {result.get('error')}")
            if satisfied():
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
            from gbsearch.driver.cluster import close_client
            close_client(client)
    if counts["ok"] < structures:
        raise GBSearchError(f"stopped after {max_trials} trials with {counts['ok']} of {structures} "
                            f"distinct structures ({counts['failed']} failed, {counts['duplicate']} "
                            "duplicates); re-run to continue or raise --max-trials")
    return outcome()


class _ConvergenceTracker:
    """The search's rows in memory (id, trial, status, [n], γ, replicate), so that
    convergence can be checked after every trial without re-reading the database."""

    def __init__(self, db: CampaignDB, n_plane: int, search: str | None = None):
        from gbsearch.analysis.report import campaign_table
        self.n_plane = n_plane
        df = campaign_table(db)
        cols = ["id", "trial", "status", "n_frac", "gamma_J_m2", "p_replicate"]
        df = df[df.source == SOURCE] if len(df) else df
        if search is not None and len(df):
            df = df[df.id.isin({r.id for r in db.rows(source=SOURCE, search=search, include_data=False)})]
        self.rows = [{c: r.get(c) for c in cols} for r in df.to_dict("records")] if len(df) else []
        self._cached = None

    def add(self, row_id: int, spec: TrialSpec, status: str, result: dict) -> None:
        info = result["atoms"].info if result.get("atoms") is not None else {}
        self.rows.append({"id": row_id, "trial": spec.index, "status": status,
                          "n_frac": info.get("n_frac") if status != "failed" else None,
                          "gamma_J_m2": info.get("gamma_J_m2") if status != "failed" else None,
                          "p_replicate": spec.as_dict()["replicate"]})
        self._cached = None

    def converged(self) -> bool:
        if self._cached is None:
            import pandas as pd
            from gbsearch.analysis.convergence import convergence_from_table
            df = pd.DataFrame(self.rows, columns=["id", "trial", "status", "n_frac", "gamma_J_m2", "p_replicate"])
            df["n_frac"] = df.n_frac.astype(float)
            df["gamma_J_m2"] = df.gamma_J_m2.astype(float)
            self._cached = convergence_from_table(df, self.n_plane).converged
        return self._cached


def _write_settings(out: Path, settings: SearchSettings, seed: int, structures: int) -> None:
    """Keep the search's settings next to its database; a resumed search must match them.

    ``settings`` has its potential recorded. A folder written before issue #19 has no plane,
    axis or potential in its settings: it was a <100> twist with the built-in W file, which is
    what :func:`settings_from_dict` and :meth:`SearchSettings.with_potential` read it as."""
    path = out / "reference_settings.json"
    if path.exists():
        stored = json.loads(path.read_text())
        old = "algorithm" not in stored.get("settings", {})
        try:
            differ = settings_differences(settings_from_dict(stored["settings"]).with_potential(), settings)
        except (GBSearchError, KeyError, TypeError) as exc:
            differ = [f"unreadable settings ({type(exc).__name__}: {exc})"]
        if stored.get("seed") != seed:
            differ.append(f"seed: {stored.get('seed')} vs {seed}")
        if differ:
            raise GBSearchError(f"{out} holds a search with other settings ({path}: "
                                + "; ".join(d[:200] for d in differ[:4]) + (", ..." if len(differ) > 4 else "")
                                + ("; drawn by the trial algorithm before issue #15, which new "
                                   "searches no longer use" if old else "")
                                + "); use another --out or the same options")
    else:
        stored = {"settings": settings.to_dict(), "seed": seed, "structures": structures}
    # Provenance for bundling (scripts/bundle_reference.py): every start or resume of the
    # search with its command line and the code's commit; not compared on resume.
    stored.setdefault("runs", []).append({"argv": _command_line(), "commit": git_commit(short=True, mark_dirty=True),
                                          "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                          "structures": structures,
                                          "potential_path": settings.potential.path})
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(stored, indent=2))
    tmp.replace(path)


def search_settings(folder: str | Path) -> SearchSettings | None:
    """The settings of the search in ``folder`` (its reference_settings.json), None without one."""
    path = Path(folder) / "reference_settings.json"
    if not path.is_file():
        return None
    return settings_from_dict(json.loads(path.read_text())["settings"])


def search_title(settings: SearchSettings) -> str:
    """"Σ27 (552)[1-10] symmetric tilt 31.59°, W (W_Zhou2004.eam.alloy)": plots and reports."""
    from gbsearch.relaxation.potential import POTENTIAL_FILENAME
    file = settings.potential.file if settings.potential is not None else POTENTIAL_FILENAME
    return f"{settings.boundary.name}, {settings.symbol} ({file})"


def _command_line() -> str:
    """The command that is running, as a user would type it (``gbsearch reference ...``)."""
    argv = list(sys.argv)
    if argv and (argv[0].endswith("gbsearch") or argv[0].endswith("gbsearch/cli/__main__.py")
                 or argv[0] == "-m"):
        argv[0] = "gbsearch"
    return shlex.join(argv)


