"""``gbsearch reference``: the GRIP-style grand-canonical reference search."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app


@app.command()
def reference(
    misorientation: float = typer.Option(36.87, "--misorientation", "-m", help="Twist angle, degrees (CSL)."),
    structures: int = typer.Option(300, help="Target number of distinct relaxed structures."),
    out: Path = typer.Option(Path("runs/reference"), "--out", "-o", help="Campaign folder."),
    seed: int = typer.Option(0, help="Master seed: trial i is drawn from (seed, i)."),
    workers: Optional[int] = typer.Option(None, help="Local worker processes (default: all cores)."),
    scheduler: Optional[str] = typer.Option(None, help="Address of an existing Dask scheduler."),
    database: Optional[str] = typer.Option(None, help="ASE database URL (default: OUT/campaign.db; "
                                                       "postgresql://... for PostgreSQL)."),
    replicate: tuple[int, int] = typer.Option((2, 2), help="In-plane supercell of the CSL cell."),
    random_supercells: bool = typer.Option(False, help="Draw supercells from 1x1 up to the --replicate size."),
    n_fixed: int = typer.Option(8, help="Fixed planes per grain."),
    n_free: int = typer.Option(8, help="Free planes per grain."),
    md_probability: float = typer.Option(0.95, help="Share of trials with an MD anneal."),
    md_temperature: tuple[float, float] = typer.Option((1000.0, 2500.0), help="MD temperature range, K."),
    md_steps: tuple[int, int] = typer.Option((5000, 300_000), help="MD length range (log-uniform), steps of 2 fs."),
    insert_probability: float = typer.Option(0.0, help="Share of trials that insert atoms instead of deleting."),
    max_trials: Optional[int] = typer.Option(None, help="Stop after this many trials (default 20 x target)."),
):
    """Grand-canonical reference search: random shifts, [n], perturbations, MD and CG.
    Re-running the same command resumes where it stopped."""
    from gbsearch.store.database import CampaignDB
    from gbsearch.driver.trials import SearchSettings
    from gbsearch.driver.reference import DB_NAME, run_search
    from gbsearch.analysis.report import write_report

    if random_supercells:
        reps = tuple((i, j) for i in range(1, replicate[0] + 1) for j in range(1, replicate[1] + 1))
    else:
        reps = (tuple(replicate),)
    settings = SearchSettings(misorientation=misorientation, replicates=reps, n_fixed=n_fixed,
                              n_free=n_free, md_probability=md_probability,
                              md_temperatures=tuple(md_temperature), md_steps=tuple(md_steps),
                              insert_probability=insert_probability)
    outcome = run_search(out, structures, settings, seed=seed, workers=workers, scheduler=scheduler,
                         database=database, max_trials=max_trials)
    db = CampaignDB(database or out / DB_NAME)
    text = write_report(db, out, title=f"{misorientation}° <100> twist, W (Zhou 2004)")
    typer.echo(text)
    typer.echo(f"{outcome.trials_run} trials run now; wrote {out / 'table.csv'}, {out / 'gamma_n.png'}")
