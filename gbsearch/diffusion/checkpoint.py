"""Self-describing checkpoints of the voxel diffusion model.

A checkpoint is a `torch.save`d dict of plain types and tensors (loadable with
weights_only=True):
    format, version, model_config, schedule_config, data_scale, grid (shape, lengths, origin,
    periodic, spacing; or None), step, model_state, optimizer_state, lr_scheduler_state,
    best_val_loss, history, extra, and optionally ema_state (averaged weights; when present
    they are the ones `build_model` / `load_checkpoint` return).
"""

from __future__ import annotations

from pathlib import Path

import torch

from gbsearch.checkpoint_io import read_checkpoint_file
from gbsearch.errors import CheckpointError
from gbsearch.io_utils import atomic_path

from .schedule import ScheduleConfig, make_scheduler
from .unet import UNet3D, UNetConfig

FORMAT = "gbsearch.voxel-diffusion"
VERSION = 1
_REQUIRED = ("model_config", "schedule_config", "data_scale", "step", "model_state")


def grid_meta(grid) -> dict | None:
    """Plain-dict description of a voxel grid (VoxelGrid-like object or dict; None passes).

    Keys: shape (voxels per axis), lengths (Å), origin (Å), periodic, spacing (Å per voxel)."""
    if grid is None:
        return None
    get = grid.get if isinstance(grid, dict) else (lambda k, d=None: getattr(grid, k, d))
    shape = [int(v) for v in get("shape")]
    meta = {"shape": shape}
    for key in ("lengths", "origin"):
        val = get(key)
        if val is not None:
            meta[key] = [float(v) for v in val]
    if get("periodic") is not None:
        meta["periodic"] = [bool(v) for v in get("periodic")]
    if "lengths" in meta:
        meta["spacing"] = [length / n for length, n in zip(meta["lengths"], shape)]
    return meta


def save_checkpoint(path, *, model, model_cfg: UNetConfig, schedule_cfg: ScheduleConfig,
                    data_scale: float, step: int, grid=None, optimizer=None, lr_scheduler=None,
                    best_val_loss: float | None = None, history=None, extra: dict | None = None,
                    ema=None) -> Path:
    """Write a checkpoint atomically (temp file + rename, so a killed run never leaves half a file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    ckpt = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": model_cfg.to_dict(),
        "schedule_config": schedule_cfg.to_dict(),
        "data_scale": float(data_scale),
        "grid": grid_meta(grid),
        "step": int(step),
        "model_state": state,
        "optimizer_state": optimizer.state_dict() if optimizer is not None else None,
        "lr_scheduler_state": lr_scheduler.state_dict() if lr_scheduler is not None else None,
        "best_val_loss": None if best_val_loss is None else float(best_val_loss),
        "history": list(history or []),
        "extra": dict(extra or {}),
    }
    if ema is not None:
        ckpt["ema_state"] = {k: v.detach().cpu() for k, v in ema.state_dict().items()}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def read_checkpoint(path) -> dict:
    """Load and validate a checkpoint dict; CheckpointError if missing, corrupt or foreign."""
    return read_checkpoint_file(path, FORMAT, "voxel-diffusion", version=VERSION, required=_REQUIRED)


def check_compatible(ckpt: dict, path, expect: dict) -> None:
    """Raise CheckpointError where the checkpoint disagrees with `expect`.

    expect keys: model_config, schedule_config (dicts or config objects), grid (grid meta or
    VoxelGrid-like; compares shape and periodic, and lengths to 1e-6 Å), data_scale."""
    def as_dict(v):
        return v.to_dict() if hasattr(v, "to_dict") else dict(v)

    for key in ("model_config", "schedule_config"):
        if expect.get(key) is not None and as_dict(expect[key]) != ckpt[key]:
            want, have = as_dict(expect[key]), ckpt[key]
            diff = {k: (have.get(k), want.get(k)) for k in set(want) | set(have) if have.get(k) != want.get(k)}
            raise CheckpointError(f"checkpoint {path}: {key} differs (checkpoint, requested): {diff}")
    if expect.get("grid") is not None:
        want, have = grid_meta(expect["grid"]), ckpt.get("grid")
        if have is None:
            raise CheckpointError(f"checkpoint {path} records no voxel grid; requested {want}")
        for key in ("shape", "periodic"):
            if key in want and key in have and want[key] != have[key]:
                raise CheckpointError(f"checkpoint {path}: grid {key} {have[key]} != requested {want[key]}")
        if "lengths" in want and "lengths" in have and any(
                abs(a - b) > 1e-6 for a, b in zip(want["lengths"], have["lengths"])):
            raise CheckpointError(f"checkpoint {path}: grid lengths {have['lengths']} != requested {want['lengths']} Å")
    if expect.get("data_scale") is not None and abs(float(expect["data_scale"]) - ckpt["data_scale"]) > 1e-12:
        raise CheckpointError(f"checkpoint {path}: data scale {ckpt['data_scale']} != requested {expect['data_scale']}")


def build_model(ckpt: dict, path="<checkpoint>") -> UNet3D:
    """U-Net from a checkpoint dict with its sampling weights (the average when the checkpoint
    has one); CheckpointError if they do not fit."""
    try:
        model = UNet3D(UNetConfig.from_dict(ckpt["model_config"]))
        model.load_state_dict(ckpt.get("ema_state") or ckpt["model_state"])
    except (ValueError, TypeError, RuntimeError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not match its model config: "
                              f"{str(exc).splitlines()[0]}") from exc
    return model


def load_checkpoint(path, device="cpu", expect: dict | None = None):
    """(model, scheduler, meta) from a checkpoint file.

    model: UNet3D in eval mode on `device`; scheduler: a fresh DPM-Solver scheduler for the
    stored schedule; meta: the checkpoint dict without the weights and optimizer state
    (data_scale, grid, step, model_config, schedule_config, ...).
    expect: optional dict checked with `check_compatible` (e.g. {"grid": grid}).
    """
    ckpt = read_checkpoint(path)
    check_compatible(ckpt, path, expect or {})
    model = build_model(ckpt, path).to(device).eval()
    try:
        scheduler = make_scheduler(ScheduleConfig.from_dict(ckpt["schedule_config"]))
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: bad schedule config: {exc}") from exc
    meta = {k: v for k, v in ckpt.items()
            if k not in ("model_state", "ema_state", "optimizer_state", "lr_scheduler_state")}
    meta["path"] = str(path)
    return model, scheduler, meta
