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


def test_same_trial_twice_gives_one_entry(tmp_path):
    # One worker runs the trials in submission order, so the twin (trial 1) is recorded before
    # the search reaches its target and cancels what is still queued.
    twin = draw_trial(TINY, 11, 0)
    spec_fn = lambda i: replace(twin, index=i) if i < 2 else draw_trial(TINY, 11, i)  # noqa: E731
    run_search(tmp_path, 3, TINY, seed=11, workers=1, spec_fn=spec_fn, progress=False)
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


# --- issue #15: replications, insertions, de-duplication across replications -------------

MIXED = SearchSettings(replicates=((1, 1), (1, 2), (2, 1), (2, 2)), n_fixed=7, n_free=4,
                       md_steps=(100, 200), md_probability=0.5)


def test_insertions_and_deletions_give_the_drawn_composition():
    from gbsearch.geometry.properties import n_free
    from gbsearch.driver.trials import INSERT_MIN_DISTANCE
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
    from gbsearch.driver.trials import default_replicates
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
    from gbsearch.driver.trials import run_trial, tile_structure
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


# --- issue #15: convergence ----------------------------------------------------------------

def _table(rows):
    """A campaign table (the columns convergence reads) from (trial, status, [n], γ) tuples."""
    return pd.DataFrame([{"id": i + 1, "source": "reference", "trial": t, "status": s, "n_frac": n,
                          "gamma_J_m2": g, "replicate": "1x1"} for i, (t, s, n, g) in enumerate(rows)])


def _cycle(levels, rounds, start=0):
    """Trials cycling through one structure per Σ5 1x1 [n] value; duplicates after round 1."""
    out = []
    for r in range(rounds):
        for k, g in enumerate(levels):
            out.append((start + len(out), "ok" if r == 0 else "duplicate", k / 5, g))
    return out


LEVELS = [2.9, 2.35, 2.7, 2.6, 3.1]          # J/m² at [n] = 0, 0.2, 0.4, 0.6, 0.8


def test_convergence_on_constructed_rows():
    from gbsearch.analysis.convergence import convergence_from_table
    res = convergence_from_table(_table(_cycle(LEVELS, 3)), n_plane=5)
    assert res.converged and res.reasons == [] and res.status_line() == "converged"
    assert res.n_bins == 5 and res.hits == 3 and res.hit_trials == [1, 6, 11]
    assert res.ground_state["n_frac"] == 0.2 and res.ground_state["gamma_J_m2"] == 2.35
    assert res.metastable["n_frac"] == 0.6 and res.metastable["gamma_J_m2"] == 2.6
    assert res.split_trial == 10

    # two hits only
    res = convergence_from_table(_table(_cycle(LEVELS, 2)), n_plane=5)
    assert not res.converged and res.reasons == ["ground state hit 2 times, need 3"]
    # a bin improved by 6 mJ/m² in the last third (trial 13 of 15)
    rows = _cycle(LEVELS, 3)
    rows[13] = (13, "ok", 0.6, 2.6 - 0.006)
    res = convergence_from_table(_table(rows), n_plane=5)
    assert not res.converged and len(res.reasons) == 1 and "improved by more than 5 mJ/m²" in res.reasons[0]
    assert res.bins[3]["improvement_J_m2"] == pytest.approx(0.006)
    # ... by 4 mJ/m²: still converged
    rows[13] = (13, "ok", 0.6, 2.6 - 0.004)
    assert convergence_from_table(_table(rows), n_plane=5).converged
    # a bin first reached in the last third, and one never reached
    rows = [r for r in _cycle(LEVELS, 3) if r[2] not in (0.6, 0.8)] + [(20, "ok", 0.6, 2.6)]
    res = convergence_from_table(_table(rows), n_plane=5)
    assert not res.converged
    assert any("first reached in the last third" in r for r in res.reasons)
    assert any("1 of 5 [n] bins never reached" in r for r in res.reasons)
    # trial order, not row order: the same rows written in reverse give the same answer
    assert convergence_from_table(_table(_cycle(LEVELS, 3))[::-1], n_plane=5).hit_trials == [1, 6, 11]


def test_convergence_bins_mix_replications():
    from gbsearch.analysis.convergence import bin_count, convergence_from_table, n_bin, table_bin_count
    assert [bin_count(s, c) for s, c in ((5, 9), (5, 1), (5, 4), (13, 4), (17, 2), (25, 1), (41, 1))] == \
        [20, 5, 20, 26, 34, 25, 41]
    # 20 bins for Σ5: 0.05 wide, centred on k/20; edges go up; periodic
    assert list(n_bin([0.0, 0.024, 0.025, 0.2, 1 / 45, 0.98], 20)) == [0, 0, 1, 4, 0, 0]
    df = _table([(0, "ok", 0.2, 2.40), (1, "ok", 0.2, 2.36), (2, "ok", 0.9 / 4.5, 2.50)])
    df.loc[1, "replicate"] = "2x2"
    df.loc[2, "replicate"] = "3x3"
    assert table_bin_count(df, 5) == 20
    res = convergence_from_table(df, 5)
    # the 2x2 structure at 0.2 and the 3x3 one at 9/45 = 0.2 share a bin with the 1x1 one
    assert res.ground_state["gamma_J_m2"] == 2.36 and res.bins[4]["gamma_J_m2"] == 2.36
    assert res.hits == 1 and res.hit_trials == [1]


def test_convergence_report_of_a_tiny_search(tmp_path):
    import json
    out = tmp_path / "ref"
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "6",
                          "--out", str(out), "--workers", "2", *TINY_CLI], capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert "convergence: not converged (" in (out / "summary.txt").read_text()
    (out / "convergence.json").unlink()
    rep = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--report", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert rep.returncode == 0, rep.stderr
    conv = json.loads((out / "convergence.json").read_text())
    assert (out / "convergence.png").stat().st_size > 10_000
    # the report against the table, computed here from scratch
    table = pd.read_csv(out / "table.csv").sort_values("trial")
    ok = table[table.status == "ok"]
    gs = ok.loc[ok.gamma_J_m2.idxmin()]
    assert conv["ground_state"]["gamma_J_m2"] == pytest.approx(gs.gamma_J_m2)
    assert conv["n_bins"] == 5 and conv["trials"] == len(table)
    same_bin = np.isclose(table.n_frac, gs.n_frac)           # 1x1 Σ5: one [n] value per bin
    hits = table[table.status.isin(["ok", "duplicate"]) & same_bin & (table.gamma_J_m2 <= gs.gamma_J_m2 + 0.005)]
    assert conv["hits"] == len(hits) and sorted(conv["hit_trials"]) == sorted(hits.trial)
    assert conv["converged"] is (not conv["reasons"])
    assert conv["converged"] is False                        # 6 trials cannot hit the ground state 3 times
    assert "convergence: not converged (" in rep.stdout
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--report", str(tmp_path / "none")],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2 and "no search database" in res.stderr


def test_until_converged_stops_when_converged(tmp_path, client):
    """Five CG-only trials, one per [n] of the 1x1 Σ5 cell, repeated: every repeat is a
    duplicate, so the search converges once the ground state's trial has come 3 times."""
    from gbsearch.analysis.convergence import convergence_from_table
    from gbsearch.analysis.report import campaign_table
    cg = replace(MIXED, replicates=((1, 1),), md_probability=0.0)
    base = [replace(draw_trial(cg, 9, 0), n_delete=k, n_insert=0, md_steps=0, md_temperature=0.0)
            for k in range(5)]
    spec_fn = lambda i: replace(base[i % 5], index=i)  # noqa: E731
    outcome = run_search(tmp_path, 2, cg, seed=9, client=client, spec_fn=spec_fn, progress=False,
                         until_converged=True, max_trials=40)
    assert outcome.converged is True and outcome.ok == 5
    df = campaign_table(CampaignDB(tmp_path / "campaign.db"))
    conv = convergence_from_table(df, 5)
    assert conv.converged and conv.hits == 3
    assert len(df) <= 15 + 2 * 2                              # stopped at once (results in flight aside)
    # unconverged: the budget ends it and says so
    outcome = run_search(tmp_path / "b", 2, cg, seed=9, client=client, progress=False,
                         until_converged=True, max_trials=5)
    assert outcome.converged is False and outcome.trials_run == 5


# --- issue #15: the bundled library ---------------------------------------------------------

def test_library_index_and_a_dataset_load_without_torch():
    code = """
import sys, json
from gbsearch.store.references import library, load_reference_dataset, DATA_DIR
lib = library()
packed = sorted(p.name for p in DATA_DIR.glob('sigma*_reference.db.xz'))
assert [f"sigma{e['sigma']}_reference.db.xz" for e in lib] == sorted(packed, key=lambda n: int(n[5:n.index('_')])), lib
s5 = next(e for e in lib if e['sigma'] == 5)
ref = load_reference_dataset(s5['misorientation_deg'])
assert len(ref) == s5['structures_with_atoms'], (len(ref), s5)
g = min(a.info['gamma_J_m2'] for a in ref)
assert abs(g - s5['ground_state']['gamma_J_m2']) < 1e-9
assert 'region' in ref[0].arrays and 'energy' in ref[0].arrays
print(json.dumps({'torch': 'torch' in sys.modules, 'n': len(ref), 'sigmas': [e['sigma'] for e in lib]}))
"""
    import json
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["torch"] is False and out["n"] >= 300 and 5 in out["sigmas"]
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--list"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    head, _, *rows = res.stdout.strip().splitlines()
    for col in ("Σ", "angle", "N_plane", "structures", "trials", "ground state", "metastable", "converged"):
        assert col in head
    s5 = next(r for r in rows if r.split()[0] == "5")
    assert "36.87" in s5 and "0.2000, 2.2981" in s5


def test_library_figure_draws_every_bundled_envelope(tmp_path):
    from gbsearch.analysis.library_plot import envelope
    from gbsearch.store.references import library
    for e in library():
        n, g = envelope(e)
        # the envelope's lowest bin is the stored ground state
        assert len(n) >= 0.8 * e["meta"]["convergence"]["n_bins"], e["sigma"]
        assert abs(g.min() - e["ground_state"]["gamma_J_m2"]) < 1e-9
    png = tmp_path / "lib.png"
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--list", "--plot", str(png)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--plot", str(png)],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "--plot goes with --list" in res.stderr + res.stdout


def test_bundling_writes_the_library_json(tmp_path):
    import json
    from gbsearch.store.references import library, library_table
    out = tmp_path / "ref"
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "reference", "--structures", "4", "--out", str(out),
                          "--workers", "1", "--replicates", "1x1,2x1", "--n-fixed", "7", "--n-free", "4",
                          "--md-steps", "100", "200", "--seed", "3"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    data = tmp_path / "data"
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "bundle_reference.py")
    res = subprocess.run([sys.executable, script, str(out), "--data-dir", str(data), "--where", "test"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    meta = json.loads((data / "sigma5_reference.json").read_text())
    assert meta["command"].startswith("gbsearch reference --structures 4") and meta["seed"] == 3
    assert meta["commit"] and meta["structures"] == 4 and meta["trials"] == sum(meta["counts"].values())
    assert meta["replicates"] == ["1x1", "2x1"] and meta["converged"] is False
    assert meta["convergence"]["reasons"] and meta["packed_bytes"] < 25e6
    (entry,) = library(data)
    assert entry["sigma"] == 5 and entry["n_plane"] == [5, 10] and entry["structures"] == 4
    assert entry["converged"] is False and entry["ground_state"] == meta["ground_state"]
    assert "1x1,2x1" in library_table([entry])
    # the packed database holds every trial and the ok structures with their atoms
    import lzma
    from gbsearch.store.database import CampaignDB
    (tmp_path / "x.db").write_bytes(lzma.decompress((data / "sigma5_reference.db.xz").read_bytes()))
    db = CampaignDB(tmp_path / "x.db")
    assert db.count("reference", "ok") == 4 and all(r.natoms > 100 for r in db.rows(status="ok"))
    assert len(db.known("reference").entries) == 4


# --- issue #19: folders written before other boundaries and potentials still resume --------

@pytest.mark.parametrize("sigma", [5, 13, 17])
def test_reference_folders_before_issue_19_still_resume(tmp_path, sigma):
    """The searches in reference_runs/ (settings without plane, axis or potential): their
    settings check passes with the command they were run with, and trials are drawn exactly as
    they were (the first stored trials' parameters)."""
    import json
    import tarfile
    from pathlib import Path

    from gbsearch.driver.reference import _write_settings
    tarball = Path(__file__).resolve().parents[1] / "reference_runs" / f"sigma{sigma}.tar.xz"
    if not tarball.exists():
        pytest.skip(f"no {tarball.name}")
    with tarfile.open(tarball) as tar:
        tar.extractall(tmp_path, members=[m for m in tar.getmembers()
                                          if m.name.endswith(("reference_settings.json", "campaign.db"))])
    folder = tmp_path / f"sigma{sigma}"
    stored = json.loads((folder / "reference_settings.json").read_text())
    assert "potential" not in stored["settings"] and "plane" not in stored["settings"]
    angle = {5: 36.87, 13: 22.62, 17: 28.07}[sigma]
    settings = SearchSettings(misorientation=angle, md_steps=(2000, 20000)).with_potential()
    _write_settings(folder, settings, stored["seed"], 400)          # raises on any difference
    again = json.loads((folder / "reference_settings.json").read_text())
    assert again["settings"] == stored["settings"] and len(again["runs"]) == len(stored["runs"]) + 1
    rows = sorted(CampaignDB(folder / "campaign.db").rows(source="reference"), key=lambda r: r.trial)[:10]
    for row in rows:
        assert draw_trial(settings, stored["seed"], row.trial).as_dict() == row.data["spec"]
    from gbsearch.errors import GBSearchError
    with pytest.raises(GBSearchError, match="md_steps"):
        _write_settings(folder, replace(settings, md_steps=(2000, 30000)), stored["seed"], 400)
