"""``gbsearch crystal``: the crystal-phase experiment (SPEC §5–6): voxel model vs particle baseline."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app


@app.command("crystal")
def crystal(
    phase: str = typer.Option("bcc", "--phase", help="sc, bcc or fcc."),
    model: str = typer.Option("voxel", "--model", help="voxel (U-Net + W decoder) or particle (GNN, VE-SDE)."),
    train: bool = typer.Option(False, "--train", help="Train first (into --weights-dir) instead of using the shipped weights."),
    steps: int = typer.Option(1500, help="Training steps (with --train)."),
    train_time: Optional[float] = typer.Option(None, help="Stop training after this many seconds."),
    weights_dir: Optional[Path] = typer.Option(None, help="Weights folder (default: shipped gbsearch/data/crystal, "
                                                         "or runs/crystal with --train)."),
    n: int = typer.Option(64, "--n", help="Structures to generate."),
    start: str = typer.Option("uniform", help="Particle model: 'uniform' random start, or the crystal with a Gaussian "
                                             "displacement of this size (see --start-unit), e.g. 0.2."),
    start_unit: str = typer.Option("d_nn", help="Unit of a displaced --start: d_nn (std per component as a fraction "
                                                "of the nearest-neighbour distance) or sigma_max (fraction of the "
                                                "schedule's sigma_max = 0.4 in fractional coordinates)."),
    method: str = typer.Option("sde", help="Particle sampler: sde (reverse SDE) or ode (probability flow)."),
    sampler_steps: Optional[int] = typer.Option(None, help="Sampler steps (voxel 60 NFE, particle 1000 from t=1)."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write per-structure metrics + summary JSON here."),
    xyz: Optional[Path] = typer.Option(None, help="Also write the generated structures (extxyz)."),
):
    """Train and/or generate crystals of one phase and report atom counts, q4/q6 and PTM fractions."""
    import numpy as np
    import torch

    from gbsearch.crystal import experiment as E
    from gbsearch.crystal.phases import phase_spec
    from gbsearch.provenance import git_commit

    torch.set_num_threads(max(1, min(torch.get_num_threads(), 2)))
    spec = phase_spec(phase)
    if model not in ("voxel", "particle"):
        raise typer.BadParameter("--model must be voxel or particle")
    wdir = weights_dir or (Path("runs/crystal") if train else E.DATA)
    if train:
        t0 = time.time()
        if model == "voxel":
            from gbsearch.crystal.voxel_model import train_voxel
            r = train_voxel(phase, wdir / f"voxel_{phase}_run", steps=steps, seed=seed, max_time=train_time)
            E.slim_checkpoint(r.checkpoint, E.weights_path("voxel", phase, wdir))
        else:
            from gbsearch.crystal.particle import save_particle, train_particle
            m, hist = train_particle(phase, steps=steps, seed=seed, max_time=train_time)
            save_particle(m, E.weights_path("particle", phase, wdir),
                          {"command": "gbsearch " + " ".join(sys.argv[1:]), "seed": seed,
                           "commit": git_commit(), "history": hist})
        typer.echo(f"trained {model} on {phase} in {time.time() - t0:.0f} s -> {E.weights_path(model, phase, wdir)}")
    t0 = time.time()
    if start == "uniform":
        st = start
    else:
        from gbsearch.crystal.particle import start_time
        try:
            st = start_time(spec, float(start), start_unit)
        except ValueError as e:
            raise typer.BadParameter(f"--start/--start-unit: {e}") from None
        if not 0.0 <= st <= 1.0:
            raise typer.BadParameter(f"--start {start} {start_unit} is sigma = {st:.3f} sigma_max, outside [0, 1]")
    device = "cuda" if torch.cuda.is_available() else None
    pos = E.generate(model, phase, n, seed=seed, weights_dir=wdir, start=st, method=method, steps=sampler_steps,
                     device=device)
    rows, summary = E.evaluate(pos, phase)
    summary.update({"phase": phase, "model": model, "start": start,
                    "start_unit": start_unit if start != "uniform" else None, "method": method, "ideal_atoms": spec.n_atoms,
                    "generate_s": round(time.time() - t0, 1)})
    typer.echo(json.dumps(summary, indent=1))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"summary": summary, "structures": rows}, indent=1))
    if xyz is not None:
        from ase import Atoms
        from ase.io import write

        from gbsearch.geometry.material import TUNGSTEN   # the shipped W decoder's element
        write(xyz, [Atoms([TUNGSTEN.symbol] * len(p), positions=p, cell=np.eye(3) * spec.L, pbc=True) for p in pos],
              format="extxyz")
