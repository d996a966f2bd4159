"""The reference search on other boundaries and potentials (issue #19): symmetric tilts built by
the general CSL builder, any EAM file; real LAMMPS + Dask on tiny cells."""
import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gbsearch.driver.trials import SearchSettings, draw_trial, trial_structure
from gbsearch.errors import InputError
from gbsearch.geometry.properties import atom_fraction, n_free
from gbsearch.relaxation.potential import potential_record
from gbsearch.store.database import CampaignDB

REPO = Path(__file__).resolve().parents[1]
CU = REPO / "potentials" / "Cu_mishin1.eam.alloy"
# Cu Σ5(210)[001]: 3.61 × 8.08 Å cell, N_plane 2, 18 + 18 planes per grain (144 atoms 1x1).
CU_TILT = ["--plane", "2,1,0", "--axis", "0,0,1", "--potential", str(CU), "--replicates", "1x1,1x2,2x1",
           "--md-steps", "100", "300", "--md-temperature", "400", "900"]


def _cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "gbsearch.cli", *map(str, args)], capture_output=True, text=True,
                          timeout=timeout)


def test_tilt_trials_reach_their_composition_and_repeat():
    """W Σ27(552)[1-10] (N_plane 1 per 1x1 cell, 54 planes per period) with the built-in W file:
    elongated default cells, every drawn composition, insertion sites one period down."""
    s = SearchSettings(plane=(5, 5, 2), axis=(1, -1, 0), md_steps=(100, 200))
    assert s.boundary.name == "Σ27 (552)[1-10] symmetric tilt 31.59°" and (s.n_fixed, s.n_free) == (30, 30)
    assert (1, 3) in s.replicates and (6, 2) in s.replicates and (6, 3) not in s.replicates
    seen = set()
    for i in range(40):
        spec = replace(draw_trial(s, 3, i), perturbation=0.0)
        atoms = trial_structure(spec)
        n_plane = spec.replicate[0] * spec.replicate[1]
        assert atoms.info["n_plane"] == n_plane and atoms.info["gb_type"] == "tilt"
        assert n_free(atoms) - atoms.info["n_free_bulk"] == spec.n_insert - spec.n_delete
        expected = (spec.n_insert if spec.n_insert else n_plane - spec.n_delete) % n_plane / n_plane
        assert atom_fraction(atoms) == pytest.approx(expected)
        if n_plane == 1:
            assert spec.n_insert == spec.n_delete == 0       # nothing to insert below a whole plane
        seen.add((spec.n_insert > 0, spec.n_delete > 0))
    assert seen >= {(True, False), (False, True)}
    a, b = (trial_structure(draw_trial(s, 3, 7)) for _ in range(2))
    assert np.array_equal(a.positions, b.positions)


def test_potential_and_boundary_lattices_must_agree():
    cu = potential_record(CU)
    assert cu.element == "Cu" and cu.lattice == "fcc" and cu.a0 == pytest.approx(3.6149, abs=1e-4)
    with pytest.raises(InputError, match="BCC"):                # the <100> twist builder is BCC only
        SearchSettings(misorientation=36.87, potential=cu)
    s = SearchSettings(plane=(3, 1, 0), axis=(0, 0, 1), potential=cu)
    assert s.boundary.lattice == "fcc" and s.a0 == cu.a0 and s.symbol == "Cu"
    with pytest.raises(InputError, match="follows from --plane|misorientation|twist"):
        SearchSettings(plane=(5, 5, 2), axis=(1, -1, 0), misorientation=30.0)
    with pytest.raises(InputError, match="one period"):          # insertions need 54 planes per grain
        SearchSettings(plane=(5, 5, 2), axis=(1, -1, 0), n_fixed=10, n_free=10)


def test_tiny_cu_tilt_reference_search_end_to_end_with_report_and_resume(tmp_path):
    out = tmp_path / "cu210"
    res = _cli("reference", "--structures", 5, "--out", out, "--workers", 1, *CU_TILT)
    assert res.returncode == 0, res.stderr
    assert "Σ5 (210)[001] symmetric tilt 36.87°, Cu (Cu_mishin1.eam.alloy)" in res.stdout
    assert "ground state: [n] =" in res.stdout and "convergence:" in res.stdout
    db = CampaignDB(out / "campaign.db")
    rows = list(db.rows(source="reference"))
    cu = potential_record(CU)
    for row in rows:
        assert (row.boundary, row.potential, row.element) == ("Σ5 (210)[001] symmetric tilt 36.87°",
                                                              "Cu_mishin1.eam.alloy", "Cu")
        assert row.a0_A == pytest.approx(cu.a0) and row.e_coh_eV == pytest.approx(cu.e_coh)
        i, j = (int(v) for v in row.replicate.split("x"))
        assert row.n_plane == 2 * i * j
        if row.status == "ok":
            assert set(row.symbols) == {"Cu"} and 0.6 < row.gamma_J_m2 < 2.0
            assert row.n_frac == pytest.approx((row.n_excess % row.n_plane) / row.n_plane)
    assert db.count("reference", "ok") == 5
    stored = json.loads((out / "reference_settings.json").read_text())
    assert stored["settings"]["plane"] == [2, 1, 0] and stored["settings"]["potential"]["sha256"] == cu.sha256
    table = pd.read_csv(out / "table.csv")
    assert (table.boundary == "Σ5 (210)[001] symmetric tilt 36.87°").all() and (table.element == "Cu").all()
    conv = json.loads((out / "convergence.json").read_text())
    assert conv["n_plane"] == 2 and conv["n_bins"] == 4 and conv["trials"] == len(rows)  # 2x1 cells: 4 bins
    assert (out / "gamma_n.png").stat().st_size > 10_000 and (out / "report.html").stat().st_size > 5_000

    # resume: the same search with a larger target and the potential file elsewhere (same bytes)
    moved = tmp_path / "elsewhere" / CU.name
    moved.parent.mkdir()
    shutil.copy(CU, moved)
    again = [a if a != str(CU) else str(moved) for a in CU_TILT]
    res = _cli("reference", "--structures", 7, "--out", out, "--workers", 1, *again)
    assert res.returncode == 0, res.stderr
    db = CampaignDB(out / "campaign.db")
    trials = [r.trial for r in db.rows(source="reference")]
    assert len(trials) == len(set(trials)) and db.count("reference", "ok") == 7
    # other settings or another potential are refused before anything runs
    changed = tmp_path / "changed" / CU.name
    changed.parent.mkdir()
    changed.write_text(CU.read_text().replace("Mishin Cu EAM1", "Mishin Cu EAM1 (edited)"))
    for args, why in (([a if a != str(CU) else str(changed) for a in CU_TILT], "potential sha256"),
                      ([a if a != "300" else "400" for a in CU_TILT], "md_steps"),
                      ([a if a != "2,1,0" else "3,1,0" for a in CU_TILT], "plane")):
        res = _cli("reference", "--structures", 8, "--out", out, "--workers", 1, *args)
        assert res.returncode == 2 and "other settings" in res.stderr and why in res.stderr, res.stderr
    assert CampaignDB(out / "campaign.db").db.count() == len(trials)

    (out / "convergence.json").unlink()
    rep = _cli("reference", "--report", out, timeout=120)
    assert rep.returncode == 0, rep.stderr
    assert json.loads((out / "convergence.json").read_text())["trials"] == len(trials)
    try:
        import ovito  # noqa: F401
    except ImportError:
        return
    from gbsearch.analysis.render import render_campaign
    (done,) = render_campaign(out, best=1, size=(320, 240))
    assert done.structure_counts.get("FCC", 0) > 100 and done.side_png.stat().st_size > 5_000


def test_diffusion_campaign_refuses_a_tilt_in_one_line(tmp_path):
    res = _cli("run", "--plane", "5,5,2", "--axis", "1,-1,0", "--out", tmp_path / "run", timeout=120)
    assert res.returncode == 2, res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "covers <100> twist boundaries only" in lines[0], res.stderr
    assert not (tmp_path / "run").exists()
