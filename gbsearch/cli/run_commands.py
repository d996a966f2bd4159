"""``gbsearch run``: the main job."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app

DEFAULTS = {"misorientation": 36.87, "seed": 0}     # candidates, nfe, anneal: run_campaign's defaults


@app.command()
def run(
    misorientation: Optional[float] = typer.Option(None, "--misorientation", "-m", help="Twist angle, degrees (a <100> CSL angle) [default: 36.87]."),
    candidates: Optional[int] = typer.Option(None, "--candidates", "-n", help="Number of in-painted candidates to relax [default: 12; ~22 s each to generate at 20 NFE on 2 CPU cores without bf16, 0.2 s on an H100]."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Campaign folder [default: runs/run-ANGLE]."),
    model: Optional[Path] = typer.Option(None, "--model", help="Model file [default: bundled for the boundary]."),
    scheduler: Optional[str] = typer.Option(None, help="Address of an existing Dask scheduler."),
    workers: Optional[int] = typer.Option(None, help="Local relaxation workers [default: all cores]."),
    config: Optional[Path] = typer.Option(None, "--config", help="Campaign configuration (YAML, see workflows/campaign.yaml); options given here win."),
    database: Optional[str] = typer.Option(None, help="ASE database URL [default: OUT/campaign.db]."),
    seed: Optional[int] = typer.Option(None, help="Seed of the candidate generation [default: 0]."),
    nfe: Optional[int] = typer.Option(None, "--nfe", help="Solver steps (network evaluations) per candidate [default: 20; SPEC: 60]; generation time scales with it."),
    anneal_temperature: Optional[float] = typer.Option(None, "--anneal-temperature", help="Temperature (K) of the short NVT anneal before CG [default: 1500]."),
    anneal_steps: Optional[int] = typer.Option(None, "--anneal-steps", help="MD steps (2 fs) of that anneal per candidate; 0 = CG only, as in the paper [default: 5000]."),
    train: bool = typer.Option(False, "--train", help="No bundled model? Run a reference search and train one first."),
):
    """Search a GB: in-paint candidates, relax them in parallel, tabulate γ_GB against [n]
    next to the reference search, plot, summarise. Re-running resumes."""
    from gbsearch.search.campaign import run_campaign

    given = dict(misorientation=misorientation, candidates=candidates, out=out, model=model,
                 scheduler=scheduler, workers=workers, database=database, seed=seed, nfe=nfe,
                 anneal_temperature=anneal_temperature, anneal_steps=anneal_steps)
    cfg = {}
    if config is not None:
        from gbsearch.search.workflow_files import load_campaign_config
        cfg = {k: v for k, v in load_campaign_config(config).items() if v is not None}
    opt = {k: (v if v is not None else cfg.get(k, DEFAULTS.get(k))) for k, v in given.items()}
    client = None
    if cfg.get("cluster") and opt["scheduler"] is None:
        from gbsearch.search.workflow_files import load_cluster
        client = load_cluster(cfg["cluster"])
    relax_settings = None
    if any(k.startswith("relax_") for k in cfg):
        from gbsearch.relaxation.engine import RelaxSettings
        relax_settings = RelaxSettings(**{k[6:]: v for k, v in cfg.items() if k.startswith("relax_")})
    if train and opt["model"] is None:
        opt["model"] = _train_first(opt["misorientation"], opt["out"], opt["workers"], opt["scheduler"])
    try:
        res = run_campaign(opt["misorientation"], opt["candidates"], opt["out"], opt["model"], opt["scheduler"],
                           opt["workers"], opt["seed"], opt["database"], client=client,
                           relax_settings=relax_settings, nfe=opt["nfe"],
                           anneal_temperature=opt["anneal_temperature"], anneal_steps=opt["anneal_steps"])
    finally:
        if client is not None:
            client.close()
    typer.echo(res.summary)
    typer.echo(f"table: {res.out_dir / 'table.csv'}  plot: {res.out_dir / 'gamma_n.png'}")


def _train_first(misorientation: float, out: Optional[Path], workers, scheduler) -> Path:
    """--train: a small reference search and a short training run inside the campaign folder."""
    from gbsearch.gbmodel.model import bundled_model, load_reference_structures, train_gb_model
    from gbsearch.search.trials import SearchSettings
    from gbsearch.search.reference import run_search

    existing = bundled_model(misorientation)
    if existing is not None:
        return existing
    base = Path(out or f"runs/run-{misorientation:g}")
    run_search(base / "reference", 100, SearchSettings(misorientation=misorientation, replicates=((1, 1),),
                                                        md_steps=(1000, 5000)),
               workers=workers, scheduler=scheduler)
    train_gb_model(load_reference_structures(base / "reference"), base / "model", steps=3000)
    return base / "model" / "model.pt"
