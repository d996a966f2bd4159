"""``gbsearch train`` and ``gbsearch generate``: the GB diffusion model."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.driver.config import describe


@app.command()
def train(
    reference: Path = typer.Option(Path("runs/reference"), "--reference", "-r", help="Reference campaign folder (or its database)."),
    out: Path = typer.Option(Path("runs/model"), "--out", "-o", help="Training folder (checkpoints; model.pt at the end)."),
    steps: int = typer.Option(30_000, help="Total optimizer steps (a resumed run continues to this)."),
    batch_size: int = typer.Option(4, help="Batch size per process."),
    channels: int = typer.Option(32, help="Base channels of the U-Net."),
    lr: float = typer.Option(2e-4, help="AdamW learning rate (halved on validation plateau)."),
    n_window: Optional[tuple[float, float]] = typer.Option(None, help="Train only on structures with LO <= [n] < HI."),
    val_every: int = typer.Option(500, help="Validate and checkpoint every N steps."),
    max_time: Optional[float] = typer.Option(None, help="Stop after this many seconds (checkpointed; re-run resumes)."),
    seed: int = typer.Option(0),
    loader_workers: int = typer.Option(0, help="Unused by GB training, which encodes its batches on the training device itself; kept so older commands still run."),
    prediction: str = typer.Option("v_prediction", help="What the network predicts: v_prediction or epsilon."),
    ema: float = typer.Option(0.999, help="Decay of the weight average that is validated and shipped (0 = none)."),
):
    """Train an in-painting GB diffusion model on a reference search (CUDA when present;
    under `torchrun --nproc_per_node N` on several GPUs). Re-running resumes from OUT/last.pt."""
    from gbsearch.errors import InputError
    from gbsearch.gbmodel.model import train_gb_model
    from gbsearch.io_utils import writable_dir
    from gbsearch.provenance import git_commit
    from gbsearch.store.database import load_reference_structures

    if prediction not in ("v_prediction", "epsilon"):
        raise InputError(f"--prediction must be v_prediction or epsilon, not {prediction!r}")
    if not 0 <= ema < 1:
        raise InputError(f"--ema must be in [0, 1), not {ema}")
    writable_dir(out)
    structures = load_reference_structures(reference, n_window)
    typer.echo(f"{len(structures)} reference structures"
               + (f" with {n_window[0]} <= [n] < {n_window[1]}" if n_window else ""))
    provenance = {"command": " ".join(["gbsearch", *sys.argv[1:]]), "seed": seed, "commit": git_commit(short=True),
                  "reference": str(reference)}
    res = train_gb_model(structures, out, steps, batch_size=batch_size, base_channels=channels, lr=lr,
                         seed=seed, val_every=val_every, max_time=max_time, provenance=provenance,
                         n_window=n_window, num_workers=loader_workers, prediction_type=prediction,
                         ema_decay=ema or None)
    if res.step >= steps:
        typer.echo(f"done: {res.step} steps, best validation loss {res.best_val_loss}; wrote {out / 'model.pt'}")
    else:
        typer.echo(f"stopped at step {res.step} of {steps} (checkpointed; re-run the same command to continue); "
                   f"best validation loss {res.best_val_loss}; wrote {out / 'model.pt'}")


@app.command()
def generate(
    model: Optional[Path] = typer.Option(None, "--model", help="Model file (default: the bundled one for --misorientation)."),
    misorientation: Optional[float] = typer.Option(None, "--misorientation", "-m", help=describe("misorientation")),
    n: int = typer.Option(16, "-n", "--candidates", help="Number of candidates."),
    output: Path = typer.Option(Path("candidates.extxyz"), "--output", "-o"),
    seed: Optional[int] = typer.Option(None, help=describe("seed")),
    batch_size: int = typer.Option(16),
    nfe: Optional[int] = typer.Option(None, "--nfe", help=describe("nfe")),
):
    """In-paint unrelaxed candidate GB structures (extended XYZ, one frame each)."""
    from ase.io import write

    from gbsearch.gbmodel.model import GBGenerator, model_for
    from gbsearch.io_utils import writable_path
    from gbsearch.driver.config import CampaignConfig

    cfg = CampaignConfig.build(misorientation=misorientation, nfe=nfe, seed=seed)
    path = model_for(cfg.boundary, model)
    writable_path(output)
    gen = GBGenerator.load(path)
    cands = gen.generate(n, seed=cfg.seed, batch_size=batch_size, steps=cfg.nfe, progress=True)
    write(output, cands, format="extxyz")
    from gbsearch.geometry.properties import atom_fraction
    fr = [atom_fraction(c) for c in cands]
    typer.echo(f"wrote {len(cands)} candidates to {output}; [n] values: "
               + ", ".join(f"{v:.2f}" for v in fr[:20]) + (" ..." if len(fr) > 20 else ""))
