"""One in-painting model for many <100> twist boundaries (issue 17): per-boundary grids, a real
tiny model trained on two boundaries' tiny reference searches, candidates for a boundary it
never saw, the limits it refuses past, and the campaign's note when the boundary is unseen."""
import dataclasses

import numpy as np
import pandas as pd
import pytest

from gbsearch.diffusion.train import plateaued
from gbsearch.driver.trials import SearchSettings
from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_REGIONS, twist_bicrystal
from gbsearch.geometry.csl import as_boundary
from gbsearch.gbmodel.model import MODEL_DIR, TRANSFER_MODEL
from gbsearch.gbmodel.slab_voxels import SlabTemplate

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))


@pytest.mark.parametrize("angle, sigma, rep, cell_voxels", [
    (36.87, 5, (2, 2), 14), (22.62, 13, (1, 1), 22), (28.07, 17, (1, 1), 26),
    (16.26, 25, (1, 1), 32), (18.92, 37, (1, 1), 38), (12.68, 41, (1, 1), 40)])
def test_each_boundary_gets_whole_even_voxels_per_cell(angle, sigma, rep, cell_voxels):
    t = SlabTemplate.for_boundary(angle)
    grid = t.grid()
    assert as_boundary(angle).sigma == sigma and t.replicate == rep
    assert t.cell_voxels() == cell_voxels and grid.shape[:2] == (rep[0] * cell_voxels, rep[1] * cell_voxels)
    assert all(abs(h - 0.5) / 0.5 < 0.04 for h in grid.spacing[:2])      # BOUNDARIES.md: 0.495-0.519 Å
    # other replications keep the voxel edge of the 1×1 cell
    wide = dataclasses.replace(t, replicate=(1, 3)).grid()
    assert wide.shape[:2] == (cell_voxels, 3 * cell_voxels)
    assert np.allclose(wide.spacing[:2], SlabTemplate.for_boundary(angle, replicate=(1, 1)).grid().spacing[:2])


def test_plateau_needs_every_boundary_to_stop_improving():
    rec = lambda a, b: {"val_loss": (a + b) / 2, "val_groups": {"Σ5": a, "Σ17": b}}   # noqa: E731
    flat = [rec(1.0, 1.0), rec(0.5, 0.8), rec(0.499, 0.799), rec(0.498, 0.80)]
    assert plateaued(flat, patience=2, min_delta=0.01)
    still = flat[:-1] + [rec(0.498, 0.70)]          # Σ17 still falls by more than 1 %
    assert not plateaued(still, patience=2, min_delta=0.01)
    assert not plateaued(flat[:2], patience=2)      # too few validations to tell


@pytest.fixture(scope="module")
def transfer_model(tmp_path_factory, client):
    """A real tiny model trained on tiny reference searches of Σ5 and Σ17 (never Σ13)."""
    from gbsearch.driver.reference import run_search
    from gbsearch.gbmodel.model import train_transfer_model
    from gbsearch.store.database import load_reference_structures
    base = tmp_path_factory.mktemp("transfer")
    structures = []
    for angle in (36.87, 28.07):
        run_search(base / f"ref{angle:g}", 4, dataclasses.replace(TINY, misorientation=angle), seed=5,
                   client=client, progress=False)
        structures += load_reference_structures(base / f"ref{angle:g}")
    res = train_transfer_model(structures, base / "model", steps=30, batch_size=2, base_channels=8,
                               val_every=10, progress=False, lr=1e-3, prediction_type="epsilon", val_fraction=0.25,
                               keep_every=15)
    recs = [h for h in res.history if h.get("val_groups")]
    assert recs and set(recs[-1]["val_groups"]) == {"Σ5", "Σ17"}
    assert all(np.isfinite(v) for v in recs[-1]["val_groups"].values())
    return base / "model" / "model.pt"


def test_candidate_for_a_boundary_never_seen(transfer_model):
    from gbsearch.gbmodel.model import GBGenerator, model_for, model_sigmas
    b = as_boundary(22.62)
    assert model_sigmas(transfer_model) is None and model_for(b, transfer_model) == transfer_model
    gen = GBGenerator.load(transfer_model, device="cpu", boundary=b)
    assert gen.trained_on == [5, 17] and gen.boundary.sigma == 13
    cands = gen.generate(2, seed=1, steps=4, batch_size=2)
    perfect = twist_bicrystal(22.62, replicate=(1, 1), n_fixed=7, n_free=4)
    for cand in cands:
        assert np.allclose(cand.cell.array[:2], perfect.cell.array[:2])     # z: the upper grain's drawn height
        assert cand.info["sigma"] == 13 and cand.info["n_plane"] == 13
        fixed = np.isin(cand.arrays["region"], FIXED_REGIONS)
        slab = gen.template.slab_for(cand)
        assert np.array_equal(cand.positions[fixed], slab.positions[np.isin(slab.arrays["region"], FIXED_REGIONS)])
        assert fixed.sum() == 2 * 7 * 13


def test_kept_snapshots_are_models_of_their_step(transfer_model):
    """keep_every's snapshots are exported as models of any boundary, each recording its step."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.gbmodel.model import GBGenerator
    snaps = sorted(transfer_model.parent.glob("model_step_*.pt"))
    assert [p.name for p in snaps] == ["model_step_000015.pt", "model_step_000030.pt"]
    prov = read_checkpoint(snaps[0])["extra"]["provenance"]
    assert prov["steps"] == 15 and prov["snapshot"] is True
    gen = GBGenerator.load(snaps[0], device="cpu", boundary=22.62)
    assert gen.trained_on == [5, 17]
    assert len(gen.generate(1, seed=0, steps=3, batch_size=1)) == 1


def test_train_command_takes_several_references(transfer_model, tmp_path):
    """`gbsearch train -r A -r B` makes a model of any boundary, recording both references."""
    from typer.testing import CliRunner

    from gbsearch.cli import app
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.gbmodel.model import model_sigmas, model_trained_on
    base = transfer_model.parents[1]
    res = CliRunner().invoke(app, ["train", "-r", str(base / "ref36.87"), "-r", str(base / "ref28.07"),
                                   "--out", str(tmp_path / "m"), "--steps", "4", "--batch-size", "2",
                                   "--channels", "8", "--val-every", "2", "--prediction", "epsilon"])
    assert res.exit_code == 0, res.output
    assert "of Σ5, Σ17" in res.output and "done: 4 steps" in res.output
    model = tmp_path / "m" / "model.pt"
    assert model_sigmas(model) is None and model_trained_on(model) == [5, 17]
    prov = read_checkpoint(model)["extra"]["provenance"]
    assert prov["reference"] == [str(base / "ref36.87"), str(base / "ref28.07")]


def test_overlapped_decoding_hands_on_the_same_candidates_in_order(transfer_model):
    """The GPU path (atoms merged in threads while the next batch samples), run on the CPU:
    the same candidates as inline decoding, handed to on_batch batch by batch in order."""
    from gbsearch.gbmodel.model import GBGenerator
    gen = GBGenerator.load(transfer_model, device="cpu", boundary=28.07)
    inline = gen.generate(3, seed=2, steps=3, batch_size=1, overlap=False)
    seen = []
    threaded = gen.generate(3, seed=2, steps=3, batch_size=1, overlap=True,
                            on_batch=lambda done: seen.append([c.info["candidate"] for c in done]))
    assert seen == [[0], [1], [2]]
    for a, b in zip(inline, threaded):
        assert np.array_equal(a.positions, b.positions) and a.info == b.info


@pytest.mark.skipif(not (MODEL_DIR / TRANSFER_MODEL).exists(), reason="no transferable model bundled")
def test_bundled_model_proposes_sane_cores_for_unseen_sigma13():
    """The shipped model on Σ13, which it never saw: every candidate's free region holds within
    two GB planes' worth of sites of the perfect crystal's count."""
    from gbsearch.gbmodel.model import GBGenerator, bundled_model
    path = bundled_model(22.62)
    assert path.name == TRANSFER_MODEL
    gen = GBGenerator.load(path, device="cpu", boundary=22.62)
    assert 13 not in gen.trained_on
    perfect = twist_bicrystal(22.62)
    for cand in gen.generate(2, seed=0, steps=10, batch_size=1, solver="unipc"):
        n_free = int((~np.isin(cand.arrays["region"], FIXED_REGIONS)).sum())
        assert abs(n_free - perfect.info["n_free_bulk"]) <= 2 * perfect.info["n_plane"], n_free


def test_limits_and_missing_boundary_are_clear_errors(transfer_model):
    from gbsearch.gbmodel.model import GBGenerator, model_for
    with pytest.raises(InputError, match=r"31\.8 Å wide, more than the 30 Å .*up to Σ89"):
        model_for(as_boundary(11.42), transfer_model)               # Σ101
    with pytest.raises(InputError, match="name the boundary"):
        GBGenerator.load(transfer_model, device="cpu")


def test_campaign_on_an_unseen_boundary_says_so(tmp_path, transfer_model, client):
    from gbsearch.driver.campaign import run_campaign
    out = tmp_path / "run13"
    res = run_campaign(misorientation=22.62, candidates=2, out=out, model=transfer_model, client=client,
                       progress=False, nfe=4, anneal_steps=0)
    table = pd.read_csv(out / "table.csv")
    assert len(table[table.source == "diffusion"]) == 2
    summary = (out / "summary.txt").read_text()
    assert "Σ13 22.62° was not in the model's training set (Σ5, Σ17)" in summary
    assert res.summary.endswith(summary.strip().splitlines()[-1])


def test_checkpoint_choice_applies_the_ship_rule(transfer_model, tmp_path):
    """scripts/choose_transfer_checkpoint.py on a real run's snapshots: a snapshot with two more
    candidates outside the atom-count range on one boundary is refused with that reason, the one
    within the margins ships, and a shipped model with the lower validation on one boundary
    keeps every candidate out."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from gbsearch.diffusion.checkpoint import read_checkpoint
    s15, s30 = (str(transfer_model.parent / f"model_step_0000{n}.pt") for n in (15, 30))
    best = str(transfer_model)
    history = read_checkpoint(transfer_model)["history"]
    # The tiny run validates every 10 steps; a record at step 15 (a copy of step 10's) lets the
    # rule judge that snapshot too instead of refusing it for want of a validation.
    history.append({**next(r for r in history if r["step"] == 10), "step": 15})
    (tmp_path / "history.json").write_text(json.dumps(history))
    outside = {"Σ5": {"shipped": 1, s15: 3, s30: 2, best: 5}, "Σ17": {"shipped": 0, s15: 0, s30: 1, best: 0}}
    counts = []
    for b, rows in outside.items():
        f = tmp_path / f"counts{b}.json"
        f.write_text(json.dumps({"boundary": b, "models": {m: {"outside_reference_range": n} for m, n in rows.items()}}))
        counts.append(str(f))
    script = Path(__file__).resolve().parents[1] / "scripts" / "choose_transfer_checkpoint.py"

    def choose(shipped_val: dict) -> dict:
        (tmp_path / "val.json").write_text(json.dumps({"step": 0, "val_groups": shipped_val}))
        subprocess.run([sys.executable, str(script), "--history", str(tmp_path / "history.json"),
                        "--shipped-val", str(tmp_path / "val.json"), "--shipped", "shipped", "--counts", *counts,
                        "--candidates", s15, s30, best, "--out", str(tmp_path / "choice.json")],
                       check=True, capture_output=True)
        return json.loads((tmp_path / "choice.json").read_text())

    res = choose({"Σ5": 1e9, "Σ17": 1e9})
    rows = {r["model"]: r for r in res["candidates"]}
    assert res["choice"] == s30 and rows[s30]["eligible"] and rows[s30]["outside_total"] == 3
    assert not rows[s15]["eligible"] and "on Σ5" in rows[s15]["why"]
    # model.pt is judged at its best validation's step; when that is step 30 it is the s30 snapshot
    # and listed once, otherwise it is a row of its own.
    best_step = min((r for r in history if r.get("val_loss") is not None), key=lambda r: r["val_loss"])["step"]
    assert sorted(r["step"] for r in res["candidates"]) == sorted({15, 30, best_step})
    res = choose({"Σ5": 1e9, "Σ17": 0.0})
    assert res["choice"] is None
    assert all("validation loss not below the shipped model's on Σ17" in r["why"] for r in res["candidates"])


def test_count_rule_allows_one_more_per_boundary_and_two_in_all():
    """The atom-count part of the ship rule (scripts/choose_transfer_checkpoint.py), which the
    12-05f rule reuses: +1 on every boundary passes each boundary's margin but not the +2 in all."""
    import sys
    from pathlib import Path
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from choose_transfer_checkpoint import count_reasons

    base = {"Σ5": 1, "Σ17": 1, "Σ25": 1}
    assert count_reasons({"Σ5": 2, "Σ17": 2, "Σ25": 1}, base) == []
    assert count_reasons({"Σ5": 2, "Σ17": 2, "Σ25": 2}, base) == ["6 outside in all against the shipped model's 3 + 2"]
    why = count_reasons({"Σ5": 3, "Σ17": 0, "Σ25": 0}, base)
    assert why == ["more than one more candidate outside the atom-count range on Σ5"]
