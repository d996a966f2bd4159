"""The whole chain on a tiny box: reference search → tiny model training → in-painting →
decoding → parallel relaxation → table, plot, summary; plus resume and bad input."""
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.search.campaign import run_campaign
from gbsearch.store.database import CampaignDB
from gbsearch.errors import CheckpointError, InputError
from gbsearch.search.trials import SearchSettings

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory, client):
    """A real (tiny, briefly trained) in-painting model on a real tiny reference search.

    ε-prediction: after 30 steps a v-model's clipped samples are dense noise that decodes to
    overlapping atoms LAMMPS cannot relax, and these tests need candidates that relax."""
    from gbsearch.gbmodel.model import load_reference_structures, train_gb_model
    from gbsearch.search.reference import run_search
    base = tmp_path_factory.mktemp("tiny")
    run_search(base / "ref", 6, TINY, seed=3, client=client, progress=False)
    structures = load_reference_structures(base / "ref")
    res = train_gb_model(structures, base / "model", steps=30, batch_size=2, base_channels=8,
                         val_every=15, progress=False, lr=1e-3, prediction_type="epsilon")
    losses = [h["loss"] for h in res.history if h.get("loss") is not None]
    assert losses and np.isfinite(losses).all()
    return base / "model" / "model.pt"


def test_full_chain_on_a_tiny_box(tmp_path, tiny_model, client):
    out = tmp_path / "run"
    res = run_campaign(36.87, candidates=3, out=out, model=tiny_model, client=client, progress=False)
    table = pd.read_csv(out / "table.csv")
    diff = table[table.source == "diffusion"]
    assert len(diff) == 3 and set(diff.status) <= {"ok", "failed", "duplicate"}
    assert (out / "gamma_n.png").exists() and (out / "candidates.extxyz").exists()
    for atoms in res.structures:
        assert atoms.info["source"] == "diffusion" and 0 <= atoms.info["n_frac"] < 1
        assert np.isfinite(atoms.info["gamma_J_m2"])
    gammas = [a.info["gamma_J_m2"] for a in res.structures]
    assert gammas == sorted(gammas)
    import json
    assert json.loads((out / "campaign.json").read_text())["anneal"] == [1500.0, 5000]   # the default


def test_candidates_are_annealed_before_cg(tiny_model):
    from gbsearch.search.campaign import anneal_for, relax_candidate
    from gbsearch.gbmodel.model import GBGenerator
    slab = GBGenerator.load(tiny_model, device="cpu").template.build(shift=(0.3, 0.2))
    annealed = relax_candidate(slab, 4, None, anneal_for(4, 0, 1500.0, 300))
    plain = relax_candidate(slab, 4, None, anneal_for(4, 0, 1500.0, 0))
    assert annealed["status"] == plain["status"] == "ok"
    assert annealed["spec"]["md_steps"] == annealed["atoms"].info["md_steps"] == 300
    assert annealed["spec"]["md_seed"] == 5 and anneal_for(4, 1, 1500.0, 300).seed != 5
    assert "md_steps" not in plain["spec"] and plain["atoms"].info["md_steps"] == 0
    assert annealed["atoms"].info["gamma_J_m2"] != plain["atoms"].info["gamma_J_m2"]
    # one free atom has no temperature: CG only, and recorded as such
    fixed = np.isin(slab.arrays["region"], FIXED_REGIONS)
    keep = fixed.copy()
    keep[np.flatnonzero(~fixed)[0]] = True
    rec = relax_candidate(slab[keep], 0, None, anneal_for(0, 0, 1500.0, 300))
    assert rec["status"] == "ok" and "md_steps" not in rec["spec"] and rec["atoms"].info["md_steps"] == 0


def test_candidates_keep_fixed_grains_exactly(tiny_model):
    from gbsearch.gbmodel.model import GBGenerator
    gen = GBGenerator.load(tiny_model, device="cpu")
    cands = gen.generate(2, seed=1)
    for cand in cands:
        assert cand.info["upper_dz"] in gen.upper_dz            # a height the model was trained on
        slab = gen.template.slab_for(cand)
        fixed_c = np.isin(cand.arrays["region"], FIXED_REGIONS)
        fixed_s = np.isin(slab.arrays["region"], FIXED_REGIONS)
        assert np.array_equal(cand.positions[fixed_c], slab.positions[fixed_s])


def test_resume_relaxes_only_what_is_missing(tmp_path, tiny_model, client):
    out = tmp_path / "run"
    run_campaign(36.87, candidates=2, out=out, model=tiny_model, client=client, progress=False)
    db = CampaignDB(out / "campaign.db")
    first = {r.trial: r.id for r in db.rows(source="diffusion")}
    # Simulate a kill after the first relaxation: drop the second row, then re-run.
    db.db.delete([first[1]])
    run_campaign(36.87, candidates=2, out=out, model=tiny_model, client=client, progress=False)
    rows = {r.trial: r.id for r in CampaignDB(out / "campaign.db").rows(source="diffusion")}
    assert sorted(rows) == [0, 1] and rows[0] == first[0]       # row 0 untouched, 1 redone
    # Resuming with other generation settings would mix two samplers' candidates: refused.
    with pytest.raises(InputError, match="another nfe 20 \\(asked: 30\\)"):
        run_campaign(36.87, candidates=2, out=out, model=tiny_model, client=client, progress=False, nfe=30)
    # ... and so would relaxing the rest another way
    with pytest.raises(InputError, match="another anneal"):
        run_campaign(36.87, candidates=2, out=out, model=tiny_model, client=client, progress=False, anneal_steps=0)
    with pytest.raises(InputError, match="nfe must be at least 1"):
        run_campaign(36.87, candidates=2, out=tmp_path / "x", model=tiny_model, client=client, progress=False, nfe=0)
    with pytest.raises(InputError, match="anneal steps"):
        run_campaign(36.87, candidates=2, out=tmp_path / "x", model=tiny_model, progress=False, anneal_steps=-5)
    with pytest.raises(InputError, match="anneal temperature"):
        run_campaign(36.87, candidates=2, out=tmp_path / "x", model=tiny_model, progress=False,
                     anneal_temperature=-300)
    assert not (tmp_path / "x").exists()


def test_bad_input_messages(tmp_path, tiny_model):
    with pytest.raises(InputError, match="not a coincidence-site-lattice.*nearest CSL angles"):
        run_campaign(30.0, out=tmp_path / "a", progress=False)
    with pytest.raises(InputError, match="(?s)no bundled model for Σ13.*gbsearch reference.*gbsearch train"):
        run_campaign(22.62, out=tmp_path / "b", progress=False)
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError):
        run_campaign(36.87, candidates=1, out=tmp_path / "c", model=corrupt, progress=False)
    ro = tmp_path / "readonly"
    ro.mkdir()
    os.chmod(ro, 0o500)
    if os.access(ro, os.W_OK):      # root ignores permissions: use a path under a file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        bad_out = blocker / "sub"
    else:
        bad_out = ro / "sub"
    with pytest.raises(InputError, match="cannot create output folder|not writable"):
        run_campaign(36.87, candidates=1, out=bad_out, model=tiny_model, progress=False)


def test_cli_run_reports_clear_errors(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "run", "--misorientation", "31",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "nearest CSL angles" in res.stderr


def test_a_candidate_that_cannot_be_relaxed_is_recorded_and_the_campaign_goes_on(tmp_path, tiny_model, client):
    import json

    from ase.io import write

    from gbsearch.gbmodel.model import GBGenerator
    out = tmp_path / "run"
    out.mkdir()
    template = GBGenerator.load(tiny_model, device="cpu").template
    good = template.build(shift=(0.3, 0.2))
    bad = template.build()
    bad.positions[len(bad) // 2, 2] = bad.cell[2, 2] + 2.0     # a decoded atom beyond the open z edge
    write(out / "candidates.extxyz", [good, bad], format="extxyz")
    # a campaign.json from before nfe and anneal were recorded: 60 NFE, CG only
    (out / "campaign.json").write_text(json.dumps({"model": str(tiny_model), "candidates": 2, "seed": 0}))
    res = run_campaign(36.87, candidates=2, out=out, model=tiny_model, client=client, progress=False,
                       nfe=60, anneal_steps=0)
    rows = {r.trial: r for r in CampaignDB(out / "campaign.db").rows(source="diffusion")}
    assert rows[0].status == "ok" and len(res.structures) == 1
    assert rows[1].status == "failed" and "outside the cell" in rows[1].data["error"]
    assert "failed" in (out / "summary.txt").read_text()


def test_cli_train_refuses_unknown_prediction_type(tmp_path):
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "train", "--prediction", "x0",
                          "--out", str(tmp_path / "m")], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "v_prediction or epsilon" in res.stderr
