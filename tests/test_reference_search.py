"""GRIP-style reference search on a tiny slab (1x1 Σ5 cell, short MD), real LAMMPS + Dask."""
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from gbsearch.store.database import CampaignDB
from gbsearch.driver.trials import SearchSettings, draw_trial, trial_structure
from gbsearch.geometry.properties import atom_fraction
from gbsearch.driver.reference import run_search

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))
TINY_CLI = ["--replicate", "1", "1", "--n-fixed", "7", "--n-free", "4", "--md-steps", "100", "400"]


def _ok_rows(out):
    db = CampaignDB(out / "campaign.db")
    return [r for r in db.rows(source="reference", status="ok")]


def test_trials_span_all_n_and_are_deterministic():
    fracs = {round(atom_fraction(trial_structure(draw_trial(TINY, 7, i))), 6) for i in range(60)}
    assert fracs == {0.0, 0.2, 0.4, 0.6, 0.8}
    a, b = (trial_structure(draw_trial(TINY, 7, 3)) for _ in range(2))
    assert np.array_equal(a.positions, b.positions)


def test_cli_tiny_search_end_to_end(tmp_path):
    out = tmp_path / "ref"
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "5",
                          "--out", str(out), "--workers", "2", *TINY_CLI],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "ground state: [n] =" in res.stdout
    table = pd.read_csv(out / "table.csv")
    assert list(table.columns[:6]) == ["id", "source", "n_atoms", "n_frac", "gamma_J_m2", "status"]
    ok = table[table.status == "ok"]
    assert len(ok) == 5 and (ok.source == "reference").all()
    assert ok.gamma_J_m2.between(0.5, 5.0).all() and ok.n_frac.between(0, 1).all()
    assert (out / "gamma_n.png").stat().st_size > 10_000


def test_resume_after_interrupt_reaches_exact_target_without_duplicates(tmp_path):
    out = tmp_path / "ref"
    cmd = [sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "14", "--out", str(out),
           "--workers", "1", *TINY_CLI]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    db_path = out / "campaign.db"
    deadline = time.time() + 120
    while time.time() < deadline:
        if db_path.exists() and CampaignDB(db_path).db.count() >= 3:
            break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)        # as hard as it gets: no clean-up in the driver
    proc.wait()
    first = CampaignDB(db_path).db.count()
    assert 3 <= first < 14
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    db = CampaignDB(db_path)
    trials = [r.trial for r in db.rows(source="reference")]
    assert len(trials) == len(set(trials))                  # no trial recorded twice
    assert db.count("reference", "ok") == 14
    ids_first = {r.id for r in db.rows() if r.id <= first}
    assert len(ids_first) == first                           # nothing lost


def test_same_trial_twice_gives_one_entry(tmp_path, client):
    twin = draw_trial(TINY, 11, 0)
    spec_fn = lambda i: replace(twin, index=i) if i < 2 else draw_trial(TINY, 11, i)  # noqa: E731
    run_search(tmp_path, 3, TINY, seed=11, client=client, spec_fn=spec_fn, progress=False)
    db = CampaignDB(tmp_path / "campaign.db")
    rows = {r.trial: r for r in db.rows(source="reference")}
    statuses = sorted(rows[i].status for i in (0, 1))
    assert statuses == ["duplicate", "ok"]
    dup = rows[0] if rows[0].status == "duplicate" else rows[1]
    orig = rows[1] if dup is rows[0] else rows[0]
    assert dup.duplicate_of == orig.id
    assert db.count("reference", "ok") == 3


def test_lammps_failure_is_recorded_and_search_goes_on(tmp_path):
    # The search stops (and cancels what is still running) once it has enough structures, so
    # the failing trial must finish before the others: it is trial 0 and one worker runs the
    # trials in submission order.
    def spec_fn(i):
        spec = draw_trial(TINY, 5, i)
        return replace(spec, md_temperature=1e8, md_steps=50) if i == 0 else spec
    outcome = run_search(tmp_path, 4, TINY, seed=5, workers=1, spec_fn=spec_fn, progress=False)
    assert outcome.ok == 4 and outcome.failed == 1
    db = CampaignDB(tmp_path / "campaign.db")
    failed = list(db.rows(status="failed"))
    assert len(failed) == 1 and failed[0].trial == 0
    assert "Lost atoms" in failed[0].data["error"]


def test_changed_settings_refuse_to_mix_into_an_existing_search(tmp_path, client):
    from gbsearch.errors import GBSearchError
    run_search(tmp_path, 1, TINY, seed=1, client=client, progress=False)
    with pytest.raises(GBSearchError, match="other settings"):
        run_search(tmp_path, 2, replace(TINY, gap=0.5), seed=1, client=client, progress=False)


def test_search_on_an_existing_dask_scheduler(tmp_path):
    """Scheduler and worker started as separate processes, as on a cluster."""
    import socket
    bindir = os.path.dirname(sys.executable)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    sched = subprocess.Popen([os.path.join(bindir, "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port),
                              "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    worker = subprocess.Popen([os.path.join(bindir, "dask"), "worker", address, "--nthreads", "1", "--nworkers", "1",
                               "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "3",
                              "--out", str(tmp_path / "ref"), "--scheduler", address, *TINY_CLI],
                             capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
        assert CampaignDB(tmp_path / "ref" / "campaign.db").count("reference", "ok") == 3
    finally:
        worker.terminate()
        sched.terminate()
        worker.wait(30)
        sched.wait(30)


def test_unreachable_scheduler_is_a_clear_error(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "1",
                          "--out", str(tmp_path / "ref"), "--scheduler", "tcp://127.0.0.1:9", *TINY_CLI],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "cannot reach Dask scheduler tcp://127.0.0.1:9" in res.stderr


def test_settings_survive_their_json_form():
    import json
    from dataclasses import asdict

    from gbsearch.driver.trials import settings_from_dict
    assert settings_from_dict(json.loads(json.dumps(asdict(TINY)))) == TINY
