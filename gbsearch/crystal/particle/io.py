"""Particle-model files: {"format": FORMAT, "config": ParticleConfig dict, "state": weights
(fp16 except the Fourier frequencies), "provenance_json": str}, saved with torch.save and
loaded with weights_only=True. The shipped gbsearch/data/crystal/particle_*.pt are this format."""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import torch

from gbsearch.checkpoint_io import CheckpointError, read_checkpoint_file

from .network import ParticleConfig, ParticleScoreNet

FORMAT = "gbsearch-crystal-particle"


def save_particle(model: ParticleScoreNet, path, provenance: dict | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": FORMAT, "config": model.cfg.to_dict(),
                "state": {k: v.half() if v.is_floating_point() and not k.endswith(".w") else v
                          for k, v in model.state_dict().items()},
                "provenance_json": json.dumps(provenance or {}, default=float)}, path)


def read_particle(path) -> dict:
    """The checked contents of a particle-model file; CheckpointError naming the file if it is
    missing, unreadable, not a particle model, or lacks / garbles its config or weights."""
    obj = read_checkpoint_file(path, FORMAT, "particle model", required=("config", "state"))
    known = {f.name for f in fields(ParticleConfig)}
    if not isinstance(obj["config"], dict) or set(obj["config"]) - known:
        extra = sorted(set(obj["config"]) - known) if isinstance(obj["config"], dict) else obj["config"]
        raise CheckpointError(f"particle model {path}: config has unknown entries {extra}")
    state = obj["state"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"particle model {path}: 'state' is not a dict of weight tensors")
    return obj


def load_particle(path, free_head: bool | None = None) -> ParticleScoreNet:
    """Load a particle model (eval mode, fp32); free_head=True adds a (zero-initialised) free head
    to one saved without. CheckpointError naming the file when it is not a loadable model."""
    obj = read_particle(path)
    cfg = dict(obj["config"])
    if free_head is not None and free_head and not cfg.get("free_head", 0):
        cfg["free_head"] = 1
    try:
        model = ParticleScoreNet(ParticleConfig(**cfg))
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"particle model {path}: bad config {cfg}: {exc}") from exc
    try:
        missing, unexpected = model.load_state_dict({k: v.float() for k, v in obj["state"].items()}, strict=False)
    except RuntimeError as exc:  # shapes that do not fit the config
        raise CheckpointError(f"particle model {path}: weights do not match its config: "
                              f"{str(exc).splitlines()[0]}") from exc
    if unexpected or any(not k.startswith("dec_free.") for k in missing):
        raise CheckpointError(f"particle model {path}: weights do not match its config: "
                              f"missing {missing}, unexpected {unexpected}")
    return model.eval()
