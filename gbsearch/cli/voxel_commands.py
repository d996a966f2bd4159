"""``gbsearch train-decoder``: train the learned voxel → atom decoder (SPEC §3.2)."""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app

_KINDS = "cubic,rotated,window,surface,gb"


@app.command("train-decoder")
def train_decoder(
    out: Path = typer.Option(Path("decoder.pt"), "--out", "-o", help="Checkpoint to write (best validation, fp16)."),
    steps: int = typer.Option(4000, help="Optimiser steps."),
    batch_size: int = typer.Option(8, help="Structures per step."),
    lr: float = typer.Option(2e-3, help="AdamW learning rate (halved on validation plateau)."),
    width: int = typer.Option(64, help="Hidden features of each ConvNeXt."),
    depth: int = typer.Option(2, help="ConvNeXt blocks per module."),
    kernel: int = typer.Option(7, help="Depthwise kernel edge, voxels."),
    spacing: float = typer.Option(0.5, help="Target voxel edge, Å."),
    kinds: str = typer.Option(_KINDS, help="Comma-separated structure kinds to train on."),
    pool: int = typer.Option(200, help="Training structures generated per kind."),
    val: int = typer.Option(16, help="Validation structures per kind."),
    val_every: int = typer.Option(250, help="Validate (and checkpoint) every this many steps."),
    seed: int = typer.Option(0, help="Random seed."),
    time_limit: Optional[float] = typer.Option(None, help="Stop after this many minutes, keeping the best."),
    device: Optional[str] = typer.Option(None, help="cuda / cpu (default: cuda if available)."),
    resume: bool = typer.Option(False, help="Continue from <out stem>.train.pt if present."),
    provenance: Optional[Path] = typer.Option(None, help="Also write a provenance JSON here."),
):
    """Train the voxel decoder (denoiser, classifier, regressor) on synthetic W structures."""
    from gbsearch.voxel.train_decoder import TrainConfig, train

    cfg = TrainConfig(out=str(out), steps=steps, batch_size=batch_size, lr=lr, width=width, depth=depth,
                      kernel=kernel, spacing=spacing, kinds=tuple(k.strip() for k in kinds.split(",") if k.strip()),
                      pool_per_kind=pool, val_per_kind=val, val_every=val_every, seed=seed,
                      time_limit_min=time_limit, device=device, resume=resume)
    result = train(cfg)
    best = min(result["history"], key=lambda h: h["val_score"])
    typer.echo(f"trained {result['step']} steps on {result['device']} in {result['wall_s']:.0f} s; "
               f"best validation: exact {best['val_exact']:.3f}, RMSE {best['val_rmse']:.4f} Å "
               f"(step {best['step']}); wrote {out}")
    if provenance is not None:
        import torch

        from gbsearch.provenance import git_commit
        record = {"command": "gbsearch " + " ".join(sys.argv[1:]), "seed": seed, "commit": git_commit(),
                  "torch": torch.__version__, "device": result["device"], "steps": result["step"],
                  "wall_s": round(result["wall_s"], 1), "scale_s": result["scale"], "best_validation": best,
                  "history": result["history"]}
        provenance.write_text(json.dumps(record, indent=1))
