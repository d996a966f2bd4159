"""Crystal-phase experiment (issue 8): metrics, tiny particle and voxel models (CPU, < 90 s)."""
import numpy as np
import pytest
import torch

from gbsearch.crystal import metrics as M
from gbsearch.crystal.phases import PHASES, augmented, perfect_crystal

torch.set_num_threads(min(torch.get_num_threads(), 2))


@pytest.mark.parametrize("phase", ["sc", "bcc", "fcc"])
def test_metrics_perfect_and_disordered(phase):
    spec = PHASES[phase]
    m = M.structure_metrics(perfect_crystal(spec), spec)
    assert m["n_atoms"] == spec.n_atoms and m["count_exact"]
    assert m["ptm_fraction"] == 1.0
    # Steinhardt q4/q6 of the ideal lattices (first shell; BCC with 8+6 neighbours)
    q4, q6 = {"sc": (0.764, 0.354), "bcc": (0.036, 0.511), "fcc": (0.191, 0.575)}[phase]
    assert m["q4_mean"] == pytest.approx(q4, abs=0.01) and m["q6_mean"] == pytest.approx(q6, abs=0.01)
    rng = np.random.default_rng(0)
    assert M.structure_metrics(augmented(spec, rng, 0.05), spec)["ptm_fraction"] == 1.0
    rand = rng.uniform(0, spec.L, (spec.n_atoms, 3))
    assert M.structure_metrics(rand, spec)["ptm_fraction"] < 0.2
    missing = M.structure_metrics(perfect_crystal(spec)[1:], spec)
    assert not missing["count_exact"] and missing["ptm_fraction"] < 1.0
    r, g = M.rdf(perfect_crystal(spec), spec.L)
    assert r[np.nonzero(g > 0)[0][0]] == pytest.approx(2.74, abs=0.15)   # first shell at the NN distance
    # a collapsed pair: one atom moved onto another (0.1 Å away, across the periodic boundary)
    assert m["close_pair_fraction"] == 0.0
    pos = perfect_crystal(spec).copy()
    pos[1] = pos[0] + np.array([-0.1, 0.0, 0.0])
    assert M.structure_metrics(pos, spec)["close_pair_fraction"] == pytest.approx(2 / spec.n_atoms)


def test_summarize():
    rows = [{"n_atoms": 10, "count_exact": True, "ptm_fraction": 1.0},
            {"n_atoms": 30, "count_exact": False, "ptm_fraction": 0.5}]
    s = M.summarize(rows)
    assert s["count_exact_frac"] == 0.5 and s["ptm_atom_frac"] == pytest.approx(25 / 40)


def test_tiny_particle_model_trains_and_samples():
    from gbsearch.crystal.particle import displaced_starts, load_particle, sample_particle, save_particle, train_particle
    model, hist = train_particle("fcc", steps=30, batch_size=4, lr=3e-3, hidden=16, layers=2, log_every=10)
    assert hist[-1]["loss"] < hist[0]["loss"]
    n_atoms = PHASES["fcc"].n_atoms
    for method in ("ode", "sde"):
        x = sample_particle(model, 2, n_atoms, steps=5, method=method)
        assert x.shape == (2, n_atoms, 3) and torch.isfinite(x).all() and (x >= 0).all() and (x < 1).all()
    x = sample_particle(model, 2, n_atoms, steps=5, start=displaced_starts(PHASES["fcc"], 2, 0.2), t_start=0.2)
    assert x.shape == (2, n_atoms, 3)


def test_particle_roundtrip(tmp_path):
    from gbsearch.crystal.particle import load_particle, save_particle, train_particle
    model, _ = train_particle("sc", steps=2, batch_size=2, hidden=8, layers=1)
    save_particle(model, tmp_path / "p.pt")
    m2 = load_particle(tmp_path / "p.pt")
    x = torch.rand(1, PHASES["sc"].n_atoms, 3)
    s = torch.tensor([0.1])
    assert torch.allclose(model(x, s), m2(x, s), atol=5e-2 * model(x, s).abs().max().item() + 1e-4)


def test_particle_heads_and_warm_start(tmp_path):
    from gbsearch.crystal.particle import load_particle, save_particle, train_particle
    # free head + directional Fourier features, focused noise levels, EMA: trains and round-trips
    model, hist = train_particle("fcc", steps=3, batch_size=2, hidden=8, layers=1, free_head=True,
                                 dir_fourier=True, focus=0.5, ema=0.9, log_every=1)
    assert model.cfg.free_head and model.cfg.dir_fourier and len(hist) == 3
    save_particle(model, tmp_path / "f.pt")
    x = torch.rand(1, PHASES["fcc"].n_atoms, 3)
    s = torch.tensor([0.05])
    assert torch.allclose(model(x, s), load_particle(tmp_path / "f.pt")(x, s),
                          atol=5e-2 * model(x, s).abs().max().item() + 1e-4)
    # adding the zero-initialised free head to a checkpoint without one changes nothing
    plain, _ = train_particle("fcc", steps=2, batch_size=2, hidden=8, layers=1, free_head=False, dir_fourier=False)
    save_particle(plain, tmp_path / "p.pt")
    a, b = load_particle(tmp_path / "p.pt"), load_particle(tmp_path / "p.pt", free_head=True)
    assert b.cfg.free_head and torch.equal(a(x, s), b(x, s))
    # warm start continues from the checkpoint
    m2, _ = train_particle("fcc", steps=1, batch_size=2, init=tmp_path / "f.pt")
    assert m2.cfg.hidden == 8 and m2.cfg.free_head



def test_particle_loader_names_the_file_of_a_bad_model(tmp_path):
    import re
    from gbsearch.crystal.particle import load_particle, save_particle, train_particle
    from gbsearch.errors import CheckpointError
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"not a particle model at all")
    with pytest.raises(CheckpointError, match=re.escape(f"particle model checkpoint {garbage} is unreadable or corrupt")):
        load_particle(garbage)
    with pytest.raises(CheckpointError, match=re.escape(f"particle model checkpoint not found: {tmp_path / 'nope.pt'}")):
        load_particle(tmp_path / "nope.pt")
    foreign = tmp_path / "foreign.pt"
    torch.save({"config": {}, "state": {}}, foreign)         # no format tag
    with pytest.raises(CheckpointError, match=re.escape(f"{foreign} is not a gbsearch particle model checkpoint")):
        load_particle(foreign)
    model, _ = train_particle("sc", steps=1, batch_size=2, hidden=8, layers=1)
    good = tmp_path / "good.pt"
    save_particle(model, good)
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match=re.escape(f"particle model checkpoint {trunc} is unreadable or corrupt")):
        load_particle(trunc)
    # the right tag, but weights of another width
    ck = torch.load(good, weights_only=True)
    ck["config"]["hidden"] = 16
    wrong = tmp_path / "wrong.pt"
    torch.save(ck, wrong)
    with pytest.raises(CheckpointError, match=re.escape(f"particle model {wrong}: weights do not match its config")):
        load_particle(wrong)
    ck["config"] = {**ck["config"], "hidden": 8, "depth": 3}
    torch.save(ck, wrong)
    with pytest.raises(CheckpointError, match=r"config has unknown entries \['depth'\]"):
        load_particle(wrong)


@pytest.mark.parametrize("phase", ["sc", "bcc", "fcc"])
def test_shipped_particle_models_load(phase):
    from gbsearch.crystal import experiment as E
    from gbsearch.crystal.particle import FORMAT, load_particle, read_particle
    path = E.weights_path("particle", phase)
    assert read_particle(path)["format"] == FORMAT
    model = load_particle(path)
    assert model.cfg.L == pytest.approx(PHASES[phase].L) and model.cfg.free_head and not model.training

def test_tiny_voxel_model_trains_and_samples(tmp_path):
    from gbsearch.crystal.voxel_model import generate_voxel, load_voxel, train_voxel
    spec = PHASES["fcc"]
    r = train_voxel("fcc", tmp_path / "vox", steps=24, batch_size=2, lr=3e-3, tiny=True, progress=False,
                    val_every=8, val_items=4)
    losses = [h["val_loss"] for h in r.history]
    assert losses[-1] < losses[0]
    model, sch, meta = load_voxel(tmp_path / "vox" / "last.pt")
    pos, vox = generate_voxel(model, sch, meta["data_scale"], spec, 2, steps=6)
    assert vox.shape == (2, *spec.grid_shape) and len(pos) == 2
    assert all(p.ndim == 2 and p.shape[1] == 3 for p in pos)


def test_start_time_units():
    from gbsearch.crystal.particle import displaced_starts, start_time
    from gbsearch.crystal.phases import NN
    sc = PHASES["sc"]
    # 20 % of d_NN in the 4×4×4 SC cell (L = 4 d_NN) is sigma = 0.2/4 = 0.05 = 0.125 sigma_max
    assert start_time("sc", 0.2, "d_nn") == pytest.approx(0.2 * NN / (0.4 * sc.L)) == pytest.approx(0.125, rel=1e-4)
    assert start_time(sc, 0.2, "sigma_max") == 0.2
    with pytest.raises(ValueError, match="d_nn"):
        start_time(sc, 0.2, "angstrom")
    # the starts have the stated displacement: std of (start - nearest site) per component, in Å
    x = displaced_starts(sc, 64, start_time(sc, 0.05, "d_nn"), seed=3).numpy() * sc.L
    # remove each structure's random translation (a circular mean per axis), then wrap to the nearest site
    off = np.angle(np.exp(2j * np.pi * x / sc.a).mean(axis=1, keepdims=True)) / (2 * np.pi)
    d = x / sc.a - off
    d = (d - np.round(d)) * sc.a
    assert d.std() == pytest.approx(0.05 * NN, rel=0.05)


def test_particle_loss_at_and_time_limited_training():
    from gbsearch.crystal.particle import loss_at, train_particle
    model, hist = train_particle("sc", steps=10 ** 6, batch_size=2, hidden=8, layers=1, max_time=1.0, log_every=5)
    assert hist[-1]["step"] < 10 ** 6            # stopped by max_time, with the decayed learning rate
    val = loss_at(model, "sc", sigmas=(0.02, 0.1), n=8)
    assert set(val) == {0.02, 0.1} and all(np.isfinite(v) and v > 0 for v in val.values())


def test_lattice_order():
    from gbsearch.crystal.phases import NN, lattice_order
    assert lattice_order("sc", 0.0) == 1.0
    # SC at sigma = a/2: the density wave is gone (exp(-pi^2/2) = 0.0072)
    assert lattice_order("sc", 0.5 * NN) == pytest.approx(np.exp(-np.pi ** 2 / 2))
    # in units of d_NN, BCC and FCC lose their order at the same rate (k_min d_NN = sqrt(3/2) in both)
    assert lattice_order("bcc", 0.2 * NN) == pytest.approx(lattice_order("fcc", 0.2 * NN))


def test_crystal_cli_displaced_start(tmp_path):
    """Shipped particle weights, a start displaced by 5 % of d_NN, a few sampler steps; and a bad unit."""
    import json
    from typer.testing import CliRunner
    from gbsearch.cli import app
    out = tmp_path / "m.json"
    res = CliRunner().invoke(app, ["crystal", "--phase", "fcc", "--model", "particle", "--n", "2", "--start", "0.05",
                                   "--sampler-steps", "40", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(out.read_text())["summary"]
    assert summary["start_unit"] == "d_nn" and summary["count_exact_frac"] == 1.0
    # 5 % of d_NN is an easy start: the shipped model returns the crystal
    assert summary["ptm_atom_frac"] >= 0.95
    res = CliRunner().invoke(app, ["crystal", "--phase", "fcc", "--model", "particle", "--n", "1", "--start", "0.05",
                                   "--start-unit", "angstrom"])
    assert res.exit_code != 0 and "d_nn" in res.output
