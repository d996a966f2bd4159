"""``gbsearch train`` and ``gbsearch generate``: the GB diffusion model."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.driver.config import describe


_DEFAULT = "[default: gb_train_config()'s]"


@app.command()
def train(
    reference: list[Path] = typer.Option([Path("runs/reference")], "--reference", "-r",
                                         help="Reference campaign folder (or its database); repeat it for a model of "
                                              "several boundaries (transferable to any <100> twist)."),
    out: Path = typer.Option(Path("runs/model"), "--out", "-o", help="Training folder (checkpoints; model.pt at the end)."),
    steps: Optional[int] = typer.Option(None, help=f"Total optimizer steps (a resumed run continues to this). {_DEFAULT}"),
    batch_size: Optional[int] = typer.Option(None, help=f"Batch size per process. {_DEFAULT}"),
    channels: Optional[int] = typer.Option(None, help="Base channels of the U-Net [default: train_gb_model's]."),
    lr: Optional[float] = typer.Option(None, help=f"AdamW learning rate (halved on validation plateau). {_DEFAULT}"),
    n_window: Optional[tuple[float, float]] = typer.Option(None, help="Train only on structures with LO <= [n] < HI."),
    val_every: Optional[int] = typer.Option(None, help=f"Validate and checkpoint every N steps. {_DEFAULT}"),
    max_time: Optional[float] = typer.Option(None, help="Stop after this many seconds (checkpointed; re-run resumes)."),
    seed: Optional[int] = typer.Option(None, help=f"Random seed (also draws the validation split). {_DEFAULT}"),
    loader_workers: Optional[int] = typer.Option(None, help="Unused by GB training, which encodes its batches on the training device itself; kept so older commands still run."),
    prediction: Optional[str] = typer.Option(None, help="What the network predicts: v_prediction or epsilon [default: train_gb_model's]."),
    ema: Optional[float] = typer.Option(None, help=f"Decay of the weight average that is validated and shipped (0 = none). {_DEFAULT}"),
    until_plateau: Optional[int] = typer.Option(None, help="Stop once no boundary's validation loss fell 1 % over this many validations."),
    init: Optional[Path] = typer.Option(None, help="Start a fresh run from this model file's weights (same architecture)."),
    keep_every: Optional[int] = typer.Option(None, help="Also keep every N-th step's weights as OUT/model_step_N.pt, to choose among afterwards."),
    lr_decay_steps: Optional[int] = typer.Option(None, help="Lower the learning rate linearly to --min-lr over the run's first N steps, instead of halving it on plateaus."),
    min_lr: Optional[float] = typer.Option(None, help=f"Floor of the learning rate (halving or decay). {_DEFAULT}"),
):
    """Train an in-painting GB diffusion model on a reference search (CUDA when present;
    under `torchrun --nproc_per_node N` on several GPUs). Re-running resumes from OUT/last.pt.
    Unset options keep their one default in the code: the training settings' are
    gbsearch.gbmodel.model.gb_train_config()'s (print it to see them). Reference structures of
    several boundaries make one model for any <100> twist boundary (train_transfer_model)."""
    from gbsearch.errors import InputError
    from gbsearch.gbmodel.model import gb_train_config, train_gb_model, train_transfer_model
    from gbsearch.io_utils import writable_dir
    from gbsearch.provenance import git_commit
    from gbsearch.store.database import load_reference_structures

    if prediction not in (None, "v_prediction", "epsilon"):
        raise InputError(f"--prediction must be v_prediction or epsilon, not {prediction!r}")
    given = {"steps": steps, "batch_size": batch_size, "lr": lr, "val_every": val_every, "max_time": max_time,
             "seed": seed, "num_workers": loader_workers, "stop_patience": until_plateau, "keep_every": keep_every,
             "lr_decay_steps": lr_decay_steps, "min_lr": min_lr}
    settings = {k: v for k, v in given.items() if v is not None}
    if ema is not None:
        settings["ema_decay"] = ema or None     # 0 = no weight average
    config = gb_train_config(**settings)       # InputError naming the setting when a value is bad
    model_kw = {k: v for k, v in {"base_channels": channels, "prediction_type": prediction}.items() if v is not None}
    writable_dir(out)
    structures = [a for ref in reference for a in load_reference_structures(ref, n_window)]
    sigmas = sorted({int(a.info["sigma"]) for a in structures})
    typer.echo(f"{len(structures)} reference structures of " + ", ".join(f"Σ{v}" for v in sigmas)
               + (f" with {n_window[0]} <= [n] < {n_window[1]}" if n_window else ""))
    provenance = {"command": " ".join(["gbsearch", *sys.argv[1:]]), "seed": config.seed, "commit": git_commit(short=True),
                  "reference": [str(r) for r in reference]}
    if len(sigmas) > 1 or init is not None:
        if n_window:
            raise InputError("--n-window applies to a one-boundary model; leave it out with several references")
        res = train_transfer_model(structures, out, config, provenance=provenance, init_from=init, **model_kw)
    else:
        res = train_gb_model(structures, out, config, provenance=provenance, n_window=n_window, **model_kw)
    if res.step >= config.steps or res.plateaued:
        typer.echo(f"done: {res.step} steps, best validation loss {res.best_val_loss}; wrote {out / 'model.pt'}")
    else:
        typer.echo(f"stopped at step {res.step} of {config.steps} (checkpointed; re-run the same command to continue); "
                   f"best validation loss {res.best_val_loss}; wrote {out / 'model.pt'}")


@app.command()
def distill(
    model: Path = typer.Option(..., "--model", help="The GB model file to distil (the teacher)."),
    out: Path = typer.Option(Path("runs/student"), "--out", "-o", help="Training folder (checkpoints; model.pt at the end)."),
    trajectories: int = typer.Option(2048, help="Teacher candidates per boundary to learn from."),
    val_trajectories: int = typer.Option(64, help="Teacher candidates per boundary to validate on (other seeds)."),
    boundary: Optional[list[float]] = typer.Option(None, "--misorientation", "-m",
                                                   help="Boundary to distil a model of any boundary on (repeat; "
                                                        "default: those it was trained on)."),
    steps: Optional[int] = typer.Option(None, help="Student optimizer steps [default: distill_gb_model's]."),
    batch_size: Optional[int] = typer.Option(None, help="Student batch size [default: distill_gb_model's]."),
    lr: Optional[float] = typer.Option(None, help="AdamW learning rate [default: distill_gb_model's]."),
    max_time: Optional[float] = typer.Option(None, help="Stop after this many seconds (checkpointed; re-run resumes)."),
    until_plateau: Optional[int] = typer.Option(None, help="Stop once no boundary's validation loss fell 1 % over this many validations."),
    seed: Optional[int] = typer.Option(None, help="Seed of the trajectories and of training [default: 0]."),
    init: Optional[Path] = typer.Option(None, help="Start from this student's weights (same teacher) instead of the teacher's."),
):
    """Distil a GB model into a few-step student (issue 16): the teacher in-paints candidates as a
    campaign does, and the student learns to reach each trajectory's end from any point of it,
    so it samples in 1-20 network evaluations (default 4). CUDA when present; re-running resumes."""
    from gbsearch.gbmodel.distill import distill_gb_model
    from gbsearch.io_utils import writable_dir
    from gbsearch.provenance import git_commit

    given = {"steps": steps, "batch_size": batch_size, "lr": lr, "max_time": max_time, "seed": seed,
             "stop_patience": until_plateau}
    writable_dir(out)
    res = distill_gb_model(model, out, trajectories=trajectories, val_trajectories=val_trajectories,
                           boundaries=boundary or None, init=init,
                           provenance={"command": " ".join(["gbsearch", *sys.argv[1:]]), "commit": git_commit(short=True)},
                           **{k: v for k, v in given.items() if v is not None})
    typer.echo(f"{res.step} steps, best validation loss {res.best_val_loss}; wrote {out / 'model.pt'}")


@app.command()
def generate(
    model: Optional[Path] = typer.Option(None, "--model", help="Model file (default: the bundled one for --misorientation)."),
    misorientation: Optional[float] = typer.Option(None, "--misorientation", "-m", help=describe("misorientation")),
    n: int = typer.Option(16, "-n", "--candidates", help="Number of candidates."),
    output: Path = typer.Option(Path("candidates.extxyz"), "--output", "-o"),
    seed: Optional[int] = typer.Option(None, help=describe("seed")),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help=describe("batch_size")),
    nfe: Optional[int] = typer.Option(None, "--nfe", help=describe("nfe")),
    solver: Optional[str] = typer.Option(None, "--solver", help=describe("solver")),
    runtime: Optional[str] = typer.Option(None, "--runtime", help=describe("runtime")),
):
    """In-paint unrelaxed candidate GB structures (extended XYZ, one frame each)."""
    from ase.io import write

    from gbsearch.gbmodel.model import GBGenerator, model_for
    from gbsearch.io_utils import writable_path
    from gbsearch.driver.config import CampaignConfig

    cfg = CampaignConfig.build(misorientation=misorientation, nfe=nfe, seed=seed, solver=solver, batch_size=batch_size,
                               runtime=runtime)
    path = model_for(cfg.boundary, model)
    writable_path(output)
    import torch
    gen = GBGenerator.load(path, runtime="torch" if torch.cuda.is_available() else cfg.runtime,
                           boundary=cfg.boundary)
    if cfg.boundary.sigma not in gen.trained_on:
        typer.echo(f"{cfg.boundary.label} was not in the model's training set "
                   f"({', '.join(f'Σ{v}' for v in gen.trained_on)})")
    cands = gen.generate(n, seed=cfg.seed, batch_size=cfg.batch_for(gen.device), steps=cfg.nfe, progress=True,
                         solver=cfg.solver)
    write(output, cands, format="extxyz")
    from gbsearch.geometry.properties import atom_fraction
    fr = [atom_fraction(c) for c in cands]
    typer.echo(f"wrote {len(cands)} candidates to {output}; [n] values: "
               + ", ".join(f"{v:.2f}" for v in fr[:20]) + (" ..." if len(fr) > 20 else ""))
