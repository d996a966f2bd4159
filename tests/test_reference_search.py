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
from gbsearch.search.trials import SearchSettings, draw_trial, trial_structure
from gbsearch.geometry.properties import atom_fraction
from gbsearch.search.reference import run_search

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

    from gbsearch.search.trials import settings_from_dict
    assert settings_from_dict(json.loads(json.dumps(asdict(TINY)))) == TINY


# --- issue #15: replications, insertions, de-duplication across replications -------------

MIXED = SearchSettings(replicates=((1, 1), (1, 2), (2, 1), (2, 2)), n_fixed=7, n_free=4,
                       md_steps=(100, 200), md_probability=0.5)


def test_insertions_and_deletions_give_the_drawn_composition():
    from gbsearch.geometry.properties import n_free
    from gbsearch.search.trials import INSERT_MIN_DISTANCE
    from ase.neighborlist import neighbor_list
    seen = set()
    for i in range(80):
        spec = replace(draw_trial(MIXED, 3, i), perturbation=0.0)
        atoms = trial_structure(spec)
        n_plane = 5 * spec.replicate[0] * spec.replicate[1]
        assert atoms.info["n_plane"] == n_plane
        assert n_free(atoms) - atoms.info["n_free_bulk"] == spec.n_insert - spec.n_delete
        expected = (spec.n_insert if spec.n_insert else n_plane - spec.n_delete) % n_plane / n_plane
        assert atom_fraction(atoms) == pytest.approx(expected)
        if spec.n_insert:
            assert 1 <= spec.n_insert < n_plane and spec.n_delete == 0
            # unperturbed, every inserted atom keeps its distance from all others
            assert neighbor_list("d", atoms, INSERT_MIN_DISTANCE - 1e-6).size == 0
        seen.add((spec.replicate, spec.n_insert > 0, spec.md_steps > 0))
    # all four replications, with insertions, deletions, MD and CG-only trials among them
    assert {r for r, _, _ in seen} == set(MIXED.replicates)
    assert {(ins, md) for _, ins, md in seen} == {(True, True), (True, False), (False, True), (False, False)}


def test_bad_replicates_are_clear_errors(tmp_path):
    for bad, msg in (("0x1", "at least 1x1"), ("2by2", "not of the form IxJ"), ("1x1,1x1", "listed twice")):
        res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--replicates", bad,
                              "--out", str(tmp_path / "r")], capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and msg in res.stderr, res.stderr
    assert not (tmp_path / "r").exists()


def test_default_replicates_follow_the_documented_rule():
    from gbsearch.search.trials import default_replicates
    assert default_replicates(36.87) == tuple((i, j) for i in (1, 2, 3) for j in (1, 2, 3))
    assert default_replicates(22.62) == ((1, 1), (1, 2), (2, 1), (2, 2))
    assert default_replicates(28.07) == ((1, 1), (1, 2), (2, 1))
    for angle in (16.26, 18.92, 12.68):
        assert default_replicates(angle) == ((1, 1),)
    assert SearchSettings(misorientation=22.62).replicates == default_replicates(22.62)


def test_replicated_copy_is_a_duplicate_across_replications(tmp_path):
    """Relax a 1x1 trial, tile it 2x1 (regions and metadata kept), relax again: same γ per
    area and [n], twice the atoms; the database marks it a duplicate of the 1x1 row."""
    from gbsearch.relaxation.relax import relax
    from gbsearch.search.trials import run_trial, tile_structure
    spec = draw_trial(replace(MIXED, replicates=((1, 1),), md_probability=0.0), 1, 0)
    first = run_trial(spec)
    assert first["status"] == "ok"
    tiled = relax(tile_structure(first["atoms"], (2, 1)))
    assert len(tiled) == 2 * len(first["atoms"]) and tiled.info["n_plane"] == 10
    assert tiled.info["gamma_J_m2"] == pytest.approx(first["atoms"].info["gamma_J_m2"], abs=1e-6)
    assert tiled.info["n_frac"] == pytest.approx(first["atoms"].info["n_frac"])
    db = CampaignDB(tmp_path / "campaign.db")
    known = db.known("reference")
    id1, st1 = db.record("reference", 0, first, known)
    other = {"spec": replace(spec, index=1, replicate=(2, 1)).as_dict(), "status": "ok", "atoms": tiled}
    id2, st2 = db.record("reference", 1, other, known)
    assert (st1, st2) == ("ok", "duplicate")
    rows = {r.id: r for r in db.rows()}
    assert rows[id2].duplicate_of == id1
    assert (rows[id1].replicate, rows[id1].n_plane, rows[id2].replicate, rows[id2].n_plane) == ("1x1", 5, "2x1", 10)
    assert rows[id1].n_excess * 2 == rows[id2].n_excess
    # a fresh Known read back from the database finds it too (the resumed-search path)
    fresh = db.known("reference")
    from gbsearch.store.database import fingerprint
    assert fresh.match(len(tiled), tiled.info["gamma_J_m2"], fingerprint(tiled),
                       10, rows[id2].n_excess) == id1
    # a different composition per area with the same γ is not a duplicate
    assert fresh.match(len(tiled) + 1, tiled.info["gamma_J_m2"], fingerprint(tiled),
                       10, rows[id2].n_excess + 1) is None


def test_mixed_replication_search_records_each_replication(tmp_path, client):
    outcome = run_search(tmp_path, 8, MIXED, seed=4, client=client, progress=False)
    assert outcome.ok == 8
    db = CampaignDB(tmp_path / "campaign.db")
    for row in db.rows(source="reference"):
        spec = row.data["spec"]
        assert row.replicate == spec["replicate"]
        i, j = (int(v) for v in row.replicate.split("x"))
        assert row.n_plane == 5 * i * j
        if row.status == "ok":
            assert row.natoms == 22 * row.n_plane + spec["n_insert"] - spec["n_delete"]
            assert row.n_frac == pytest.approx((row.n_excess % row.n_plane) / row.n_plane)
    assert len({r.replicate for r in db.rows(source="reference")}) >= 2
