"""Training loop and checkpoints: loss falls, resume, LR halving on plateau, CheckpointError,
TrainConfig checks and its record in the checkpoint."""

import pytest
import torch

from gbsearch.diffusion import ScheduleConfig, TrainConfig, UNetConfig, load_checkpoint, train
from gbsearch.diffusion.synthetic import LatticeBlobs
from gbsearch.diffusion.train import decayed_lr
from gbsearch.errors import CheckpointError, InputError

SHAPE = (8, 8, 8)
GRID = {"shape": list(SHAPE), "lengths": [6.4, 6.4, 6.4], "origin": [0.0, 0.0, 0.0],
        "periodic": [True, True, True]}


def tiny_cfg(**kw) -> UNetConfig:
    cfg = dict(base_channels=8, channel_mult=(1, 2), num_res_blocks=1, norm_groups=4,
               periodic=(True, True, True))
    cfg.update(kw)
    return UNetConfig(**cfg)


def data(n=32, seed=0, **kw):
    return LatticeBlobs(n, SHAPE, a=4, seed=seed, **kw)


def test_small_unet_loss_falls(tmp_path):
    res = train(tiny_cfg(), data(64), data(8, seed=1), tmp_path,
                TrainConfig(steps=40, batch_size=4, lr=3e-3, val_every=20), progress=False)
    vals = [h["val_loss"] for h in res.history]
    assert [h["step"] for h in res.history] == [0, 20, 40]
    assert vals[0] == pytest.approx(1.0, abs=0.1)  # zero-initialised eps-model: loss ~ E[eps^2]
    assert vals[-1] < 0.6 * vals[0], vals
    assert res.history[-1]["loss"] < 0.7
    assert (tmp_path / "last.pt").exists() and (tmp_path / "best.pt").exists()


def test_keep_every_keeps_sampling_snapshots(tmp_path):
    res = train(tiny_cfg(), data(8), None, tmp_path, steps=6, batch_size=2, val_every=3, keep_every=2,
                progress=False)
    kept = sorted(p.name for p in tmp_path.glob("step_*.pt"))
    assert kept == ["step_000002.pt", "step_000004.pt", "step_000006.pt"]
    model, _, meta = load_checkpoint(tmp_path / "step_000006.pt")
    assert meta["step"] == 6
    for k, v in res.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v.cpu())
    snap = torch.load(tmp_path / "step_000002.pt", weights_only=True)
    assert snap["optimizer_state"] is None and snap["step"] == 2
    with pytest.raises(InputError, match="keep_every"):
        TrainConfig(keep_every=0)


def test_checkpoint_is_self_describing_and_reloads(tmp_path):
    sched_cfg = ScheduleConfig(prediction_type="v_prediction")
    res = train(tiny_cfg(), data(8), None, tmp_path, steps=3, batch_size=2, val_every=3,
                schedule_cfg=sched_cfg, grid=GRID, progress=False)
    model, scheduler, meta = load_checkpoint(tmp_path / "last.pt", expect={"grid": GRID})
    for k, v in res.model.state_dict().items():
        assert torch.equal(model.state_dict()[k], v.cpu())
    assert meta["step"] == 3
    assert meta["data_scale"] == pytest.approx(res.data_scale) and 0.05 < meta["data_scale"] < 0.5
    assert meta["grid"]["shape"] == [8, 8, 8] and meta["grid"]["spacing"] == pytest.approx([0.8] * 3)
    assert meta["model_config"] == tiny_cfg().to_dict()
    assert meta["schedule_config"]["prediction_type"] == "v_prediction"
    assert scheduler.config.prediction_type == "v_prediction" and scheduler.config.solver_order == 3
    assert not model.training


def test_resume_continues_from_last_checkpoint(tmp_path):
    first = train(tiny_cfg(), data(16), data(4, seed=1), tmp_path, steps=6, batch_size=2,
                  val_every=3, progress=False)
    saved = {k: v.clone() for k, v in first.model.state_dict().items()}
    # Asking for the same number of steps again does nothing but load.
    again = train(tiny_cfg(), data(16), data(4, seed=1), tmp_path, steps=6, batch_size=2,
                  val_every=3, progress=False)
    assert again.step == 6
    for k, v in again.model.state_dict().items():
        assert torch.equal(v, saved[k])
    more = train(tiny_cfg(), data(16), data(4, seed=1), tmp_path, steps=9, batch_size=2,
                 val_every=3, progress=False)
    assert more.step == 9
    assert [h["step"] for h in more.history] == [0, 3, 6, 9]
    assert more.data_scale == first.data_scale
    _, _, meta = load_checkpoint(tmp_path / "last.pt")
    assert meta["step"] == 9


def test_max_time_stops_early_and_resumes(tmp_path):
    res = train(tiny_cfg(), data(8), None, tmp_path, steps=50, batch_size=2, val_every=10,
                max_time=0.0, progress=False)
    assert res.step == 1
    _, _, meta = load_checkpoint(tmp_path / "last.pt")
    assert meta["step"] == 1


def test_learning_rate_halves_on_plateau(tmp_path):
    # A learning rate too small to change the weights: validation loss stays flat.
    res = train(tiny_cfg(), data(8), data(4, seed=1), tmp_path,
                TrainConfig(steps=6, batch_size=2, lr=1e-12, val_every=2, lr_patience=0, min_lr=0.0), progress=False)
    lrs = [h["lr"] for h in res.history]
    assert lrs[0] == 1e-12
    assert lrs[-1] == pytest.approx(1e-12 * 0.5 ** 2)  # halved at steps 4 and 6


def test_learning_rate_decays_linearly_then_holds(tmp_path):
    # The decay replaces the halving: a flat validation loss (lr far too small to move the
    # weights) would halve it at every validation with lr_patience=0.
    cfg = TrainConfig(steps=6, batch_size=2, lr=1e-12, min_lr=1e-13, lr_decay_steps=3, val_every=2, lr_patience=0)
    res = train(tiny_cfg(), data(8), data(4, seed=1), tmp_path, cfg, progress=False)
    # step 0's record (before training) holds lr; one at step s the LR of the step just taken
    assert [h["step"] for h in res.history] == [0, 2, 4, 6]
    assert [h["lr"] for h in res.history] == pytest.approx([1e-12, 7e-13, 1e-13, 1e-13], rel=1e-9)
    assert decayed_lr(cfg, 0) == cfg.lr


def test_known_mask_training_counts_only_unknown_voxels(tmp_path):
    res = train(tiny_cfg(periodic=(True, True, False)), data(16, known_slabs=2), data(4, seed=1, known_slabs=2),
                tmp_path, steps=4, batch_size=2, val_every=2, progress=False)
    assert all(torch.isfinite(torch.tensor(h["val_loss"])) for h in res.history)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"this is not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(bad)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(CheckpointError, match="not a gbsearch"):
        load_checkpoint(foreign)

    run = tmp_path / "run"
    train(tiny_cfg(), data(8), None, run, steps=2, batch_size=2, val_every=2, grid=GRID, progress=False)
    good = (run / "last.pt").read_bytes()
    trunc = tmp_path / "truncated.pt"
    trunc.write_bytes(good[: len(good) // 2])
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(trunc)
    with pytest.raises(CheckpointError, match="grid shape"):
        load_checkpoint(run / "last.pt", expect={"grid": {**GRID, "shape": [8, 8, 16]}})
    # Weights that do not fit the recorded architecture.
    ck = torch.load(run / "last.pt", weights_only=True)
    ck["model_config"]["base_channels"] = 16
    torch.save(ck, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="do not match"):
        load_checkpoint(tmp_path / "mismatch.pt")
    # Resuming with a different architecture is refused, not silently restarted.
    with pytest.raises(CheckpointError, match="model_config differs"):
        train(tiny_cfg(num_res_blocks=2), data(8), None, run, steps=4, batch_size=2, progress=False)


def test_weight_average_is_checkpointed_and_used_for_sampling(tmp_path):
    res = train(tiny_cfg(), data(16), data(4, seed=1), tmp_path, steps=12, batch_size=2, lr=3e-3,
                val_every=6, ema_decay=0.9, progress=False)
    ckpt = torch.load(tmp_path / "last.pt", weights_only=True)
    assert set(ckpt["ema_state"]) == set(ckpt["model_state"])
    differs = [k for k in ckpt["model_state"] if not torch.equal(ckpt["model_state"][k], ckpt["ema_state"][k])]
    assert differs                                          # an average, not a copy
    model, _, meta = load_checkpoint(tmp_path / "last.pt")
    for k, v in model.state_dict().items():
        assert torch.equal(v, ckpt["ema_state"][k])
    assert "ema_state" not in meta
    # Resuming continues the average instead of restarting it from the raw weights.
    more = train(tiny_cfg(), data(16), data(4, seed=1), tmp_path, steps=13, batch_size=2, lr=3e-3,
                 val_every=6, ema_decay=0.9, progress=False)
    w_prev = ckpt["ema_state"]["conv_out.conv.weight"]
    w_raw = more.model.state_dict()["conv_out.conv.weight"].cpu()
    w_ema = more.ema_model.state_dict()["conv_out.conv.weight"].cpu()
    d = min(0.9, 13 / 22)                                   # warm-up: min(decay, (1+step)/(10+step))
    assert torch.allclose(w_ema, d * w_prev + (1 - d) * w_raw, atol=1e-6)


@pytest.mark.parametrize("setting, value", [
    ("steps", 0), ("steps", 2.5), ("batch_size", 0), ("lr", -1e-3), ("lr", float("nan")), ("weight_decay", -0.1),
    ("grad_clip", 0.0), ("val_every", 0), ("ckpt_every", 0), ("lr_patience", -1), ("lr_factor", 1.5),
    ("min_lr", -1.0), ("lr_decay_steps", 0), ("ema_decay", 1.0), ("ema_decay", 0.0), ("seed", -1), ("num_workers", -2),
    ("memory_format", "channels_first"), ("max_time", -5.0), ("resume", "yes"), ("batch_size", True),
])
def test_train_config_rejects_bad_values(setting, value):
    with pytest.raises(InputError, match=rf"{setting} must be .*, got {value!r}"):
        TrainConfig(**{setting: value})
    with pytest.raises(InputError, match=setting):     # copies are checked too
        TrainConfig().updated(**{setting: value})


def test_train_config_reports_every_bad_setting_and_unknown_names(tmp_path):
    with pytest.raises(InputError) as err:
        TrainConfig(lr=0, val_every=-3)
    assert "lr must be a positive number, got 0" in str(err.value)
    assert "val_every must be a positive integer, got -3" in str(err.value)
    with pytest.raises(TypeError, match=r"unknown training setting\(s\) \['learning_rate'\]"):
        train(tiny_cfg(), data(8), None, tmp_path / "run", learning_rate=1e-3, progress=False)
    with pytest.raises(InputError, match="batch_size must be a positive integer"):
        train(tiny_cfg(), data(8), None, tmp_path / "run", TrainConfig(steps=2), batch_size=0, progress=False)
    assert not (tmp_path / "run").exists()             # refused before anything was written
    with pytest.raises(TypeError, match="must be a TrainConfig"):
        train(tiny_cfg(), data(8), None, tmp_path / "run", 40)  # the old positional steps
    with pytest.raises(InputError, match="unknown training settings"):
        TrainConfig.from_dict({"steps": 3, "warmup": 10})
    assert TrainConfig.from_dict(TrainConfig(lr=1e-3, ema_decay=0.99).to_dict()) == TrainConfig(lr=1e-3, ema_decay=0.99)


def test_train_config_is_recorded_and_old_checkpoints_resume(tmp_path):
    cfg = TrainConfig(steps=2, batch_size=2, val_every=2, lr=1e-3)
    train(tiny_cfg(), data(8), None, tmp_path, cfg, grid=GRID, progress=False)
    ck = torch.load(tmp_path / "last.pt", weights_only=True)
    assert ck["extra"]["train_config"] == cfg.to_dict()
    assert TrainConfig.from_dict(ck["extra"]["train_config"]) == cfg
    # A checkpoint written before TrainConfig existed has no record of it: it still resumes.
    del ck["extra"]["train_config"]
    torch.save(ck, tmp_path / "last.pt")
    more = train(tiny_cfg(), data(8), None, tmp_path, cfg.updated(steps=4), grid=GRID, progress=False)
    assert more.step == 4 and [h["step"] for h in more.history] == [0, 2, 4]
    assert more.config.steps == 4
    assert torch.load(tmp_path / "last.pt", weights_only=True)["extra"]["train_config"]["steps"] == 4
