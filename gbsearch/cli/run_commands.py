"""``gbsearch run``: the main job."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.driver.config import describe


def _opt(name: str, *flags: str, **kw):
    """A typer option whose help and default text come from the campaign configuration; None
    means "not given", so the YAML file or the configuration's default applies."""
    return typer.Option(None, *(flags or (f"--{name.replace('_', '-')}",)), help=describe(name), **kw)


@app.command()
def run(
    misorientation: Optional[float] = _opt("misorientation", "--misorientation", "-m"),
    plane: Optional[str] = _opt("plane"),
    axis: Optional[str] = _opt("axis"),
    candidates: Optional[int] = _opt("candidates", "--candidates", "-n"),
    out: Optional[Path] = _opt("out", "--out", "-o"),
    model: Optional[Path] = _opt("model"),
    scheduler: Optional[str] = _opt("scheduler"),
    workers: Optional[int] = _opt("workers"),
    config: Optional[Path] = typer.Option(None, "--config", help="Campaign configuration (YAML, see workflows/campaign.yaml); options given here win."),
    database: Optional[str] = _opt("database"),
    seed: Optional[int] = _opt("seed"),
    nfe: Optional[int] = _opt("nfe", "--nfe"),
    solver: Optional[str] = _opt("solver"),
    batch_size: Optional[int] = _opt("batch_size"),
    runtime: Optional[str] = _opt("runtime"),
    anneal_temperature: Optional[float] = _opt("anneal_temperature"),
    anneal_steps: Optional[int] = _opt("anneal_steps"),
    train: bool = typer.Option(False, "--train", help="Train a model of this boundary first (a small reference search, then training) unless it has its own bundled model; without it, boundaries with no model of their own use the bundled transferable one."),
):
    """Search a GB: in-paint candidates, relax them in parallel, tabulate γ_GB against [n]
    next to the reference search, plot, summarise. Re-running resumes."""
    from gbsearch.driver.campaign import run_campaign
    from gbsearch.driver.config import CampaignConfig

    cfg = CampaignConfig.build(config, misorientation=misorientation, plane=plane, axis=axis, candidates=candidates, out=out,
                               model=model, scheduler=scheduler, workers=workers, database=database,
                               seed=seed, nfe=nfe, solver=solver, batch_size=batch_size, runtime=runtime,
                               anneal_temperature=anneal_temperature,
                               anneal_steps=anneal_steps)
    if train and cfg.model is None:
        cfg = cfg.replace(model=_train_first(cfg))
    res = run_campaign(cfg)
    typer.echo(res.summary)
    typer.echo(f"table: {res.out_dir / 'table.csv'}  plot: {res.out_dir / 'gamma_n.png'}")


def _train_first(cfg) -> Path:
    """--train: a small reference search and a short training run inside the campaign folder."""
    from gbsearch.gbmodel.model import bundled_model, load_reference_structures, train_gb_model
    from gbsearch.driver.reference import run_search
    from gbsearch.driver.trials import SearchSettings

    existing = bundled_model(cfg.boundary, transfer=False)   # --train asks for a model of this boundary
    if existing is not None:
        return existing
    base = cfg.out_dir
    run_search(base / "reference", 100, SearchSettings(misorientation=cfg.boundary.angle_deg, replicates=((1, 1),),
                                                        md_steps=(1000, 5000)),
               workers=cfg.workers, scheduler=cfg.scheduler)
    train_gb_model(load_reference_structures(base / "reference"), base / "model", steps=3000)
    return base / "model" / "model.pt"
