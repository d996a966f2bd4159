"""``gbsearch reference``: the GRIP-style grand-canonical reference search."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION


@app.command()
def reference(
    misorientation: Optional[float] = typer.Option(
        None, "--misorientation", "-m", help=f"Twist angle, degrees (CSL): about <100> (default {DEFAULT_MISORIENTATION}) "
                                             "or, with --plane --twist, about the plane normal."),
    plane: Optional[str] = typer.Option(None, "--plane", help="GB plane (hkl) of another boundary, e.g. 5,5,2: a "
                                                              "symmetric tilt about --axis (or --twist)."),
    axis: Optional[str] = typer.Option(None, "--axis", help="Tilt axis ⟂ the plane normal, e.g. 1,-1,0."),
    twist: bool = typer.Option(False, "--twist", help="With --plane: twist about the plane normal by -m degrees."),
    potential: Optional[Path] = typer.Option(None, "--potential", help="EAM potential file (eam/alloy or eam/fs); "
                                                                       "a0 and E_coh computed from it (default: "
                                                                       "the W Zhou 2004 file)."),
    element: Optional[str] = typer.Option(None, "--element", help="Element of --potential (default: its only one)."),
    structures: int = typer.Option(300, help="Target number of distinct relaxed structures."),
    out: Path = typer.Option(Path("runs/reference"), "--out", "-o", help="Campaign folder."),
    seed: int = typer.Option(0, help="Master seed: trial i is drawn from (seed, i)."),
    workers: Optional[int] = typer.Option(None, help="Local worker processes (default: all cores)."),
    scheduler: Optional[str] = typer.Option(None, help="Address of an existing Dask scheduler."),
    cluster: Optional[Path] = typer.Option(None, help="Dask cluster file (workflows/dask-*.yaml; "
                                                      "dask-slurm.yaml: workers as SLURM jobs)."),
    database: Optional[str] = typer.Option(None, help="ASE database URL (default: OUT/campaign.db; "
                                                       "postgresql://... for PostgreSQL)."),
    search: Optional[str] = typer.Option(None, help="Name of this search in a database shared with other searches "
                                                    "(its rows carry search=NAME; resume and the target count see "
                                                    "only them). Default: all reference rows of the database."),
    replicates: Optional[str] = typer.Option(
        None, help="In-plane replications of the CSL cell drawn per trial, e.g. 1x1,1x2,2x1,2x2 "
                   "(default: every IxJ with edges <= 27 Å and area <= 530 Å²; Σ5: 1..3 x 1..3 as GRIP; "
                   "elongated IxJ on small tilt cells)."),
    replicate: Optional[tuple[int, int]] = typer.Option(
        None, help="One fixed supercell I J of the CSL cell for every trial (older form of --replicates)."),
    random_supercells: bool = typer.Option(False, help="With --replicate: draw supercells from 1x1 up to it."),
    n_fixed: Optional[int] = typer.Option(None, help="Fixed atomic planes per grain (default: 4 a0 of planes, "
                                                     "8 (002) planes for the <100> twist)."),
    n_free: Optional[int] = typer.Option(None, help="Free atomic planes per grain (default as --n-fixed)."),
    md_probability: float = typer.Option(0.95, help="Share of trials with an MD anneal (GRIP 0.95); "
                                                    "the others are CG only."),
    md_temperature: tuple[float, float] = typer.Option((1000.0, 2500.0), help="MD temperature range, K "
                                                                              "(multiples of 100 K; GRIP 1000 2500)."),
    md_steps: tuple[int, int] = typer.Option((5000, 300_000), help="MD length range LO HI, steps of 2 fs, "
                                                                   "drawn log-uniformly (GRIP 5000 300000)."),
    insert_probability: float = typer.Option(0.5, help="Share of trials that insert atoms into the GB "
                                                       "instead of deleting atoms of its upper plane."),
    max_trials: Optional[int] = typer.Option(None, help="Stop after this many trials (default 20 x target)."),
    until_converged: bool = typer.Option(False, help="After --structures, go on until converged (ground "
                                                     "state hit 3 times, no [n] bin improved by > 5 mJ/m² "
                                                     "over the last third of the trials) or --max-trials."),
    report: Optional[Path] = typer.Option(None, help="Only report on the search in this folder: "
                                                     "convergence.png/json, table, plot and summary."),
    list_library: bool = typer.Option(False, "--list", help="Only print the bundled reference library."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="With --list: also draw the library's lower "
                                                             "envelopes and ground states to this PNG."),
):
    """Grand-canonical reference search: random replications, shifts, [n] (insertions and
    deletions), perturbations, MD and CG. Re-running the same command resumes where it stopped.

    The boundary: the <100> twist of -m, or with --plane a symmetric tilt about --axis (or a
    twist, --twist -m) of any cubic lattice; any EAM potential with --potential/--element."""
    from gbsearch.errors import InputError
    from gbsearch.driver.trials import SearchSettings, parse_replicates
    from gbsearch.driver.reference import run_search
    from gbsearch.geometry.boundary import boundary_request

    if plot is not None and not list_library:
        raise InputError("--plot goes with --list (a search folder's plots come with --report DIR)")
    if list_library:
        from gbsearch.store.references import library, library_table
        entries = library()
        typer.echo(library_table(entries))
        if plot is not None:
            from gbsearch.analysis.library_plot import plot_library
            typer.echo(f"wrote {plot_library(entries, plot)}")
        return
    if report is not None:
        typer.echo(_report(report, database))
        return

    if replicates is not None and replicate is not None:
        raise InputError("give either --replicates or --replicate, not both")
    if random_supercells and replicate is None:
        raise InputError("--random-supercells needs --replicate I J (or use --replicates)")
    if replicates is not None:
        reps = parse_replicates(replicates)
    elif replicate is not None:
        if min(replicate) < 1:
            raise InputError(f"--replicate must be positive, got {replicate[0]} {replicate[1]}")
        reps = (tuple((i, j) for i in range(1, replicate[0] + 1) for j in range(1, replicate[1] + 1))
                if random_supercells else (tuple(replicate),))
    else:
        reps = ()
    misorientation, plane, axis = boundary_request(misorientation, plane, axis, twist)
    if element is not None and potential is None:
        raise InputError("--element needs --potential FILE (the built-in potential is W only)")
    record = None
    if potential is not None:
        from gbsearch.relaxation.potential import potential_record
        record = potential_record(potential, element)
    settings = SearchSettings(misorientation=misorientation, plane=plane, axis=axis, potential=record,
                              replicates=reps, n_fixed=n_fixed, n_free=n_free, md_probability=md_probability,
                              md_temperatures=tuple(md_temperature), md_steps=tuple(md_steps),
                              insert_probability=insert_probability)
    if cluster is not None and (scheduler or workers):
        raise InputError("give either --cluster or --scheduler/--workers, not both")
    client = None
    if cluster is not None:
        from gbsearch.driver.workflow_files import load_cluster
        client = load_cluster(cluster)
    try:
        outcome = run_search(out, structures, settings, seed=seed, workers=workers, scheduler=scheduler,
                             database=database, max_trials=max_trials, until_converged=until_converged,
                             search=search, client=client)
    finally:
        if client is not None:      # a SLURM cluster's jobs end with it
            from gbsearch.driver.cluster import close_client
            close_client(client)
    typer.echo(_report(out, database))
    typer.echo(f"{outcome.trials_run} trials run now; wrote {out / 'table.csv'}, {out / 'gamma_n.png'}, "
               f"{out / 'convergence.png'}")


def _report(folder: Path, database: Optional[str] = None) -> str:
    """table.csv, gamma_n.png, convergence.png/json and summary.txt (with the convergence
    verdict) for the search in ``folder``; returns the summary. The boundary and potential come
    from the folder's reference_settings.json (without one, N_plane from the stored rows)."""
    from gbsearch.analysis.convergence import write_convergence
    from gbsearch.analysis.report import write_report
    from gbsearch.driver.reference import search_settings, search_title
    from gbsearch.errors import InputError
    from gbsearch.store.database import DB_NAME
    from gbsearch.store.database import CampaignDB

    folder = Path(folder)
    url = database or folder / DB_NAME
    if database is None and not Path(url).exists():
        raise InputError(f"no search database at {url} (run `gbsearch reference --out {folder}` first)")
    settings = search_settings(folder)
    db = CampaignDB(url)
    if db.db.count(source="reference") == 0:
        raise InputError(f"no reference trials in {url}")
    n_plane = settings.boundary.n_plane() if settings is not None else None
    title = search_title(settings) if settings is not None else "reference search"
    text = write_report(db, folder, title=title)
    conv = write_convergence(db, folder, n_plane=n_plane, title=title)
    text = f"{title}\n{text}\n{conv.summary()}"
    (folder / "summary.txt").write_text(text + "\n")
    from gbsearch.analysis.html_report import write_html_report
    write_html_report(folder, db)
    return text
