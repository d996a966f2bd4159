"""``gbsearch render``: OVITO images and extended-XYZ files of a campaign's best structures."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app


@app.command()
def render(
    folder: Path = typer.Argument(..., help="Campaign folder (holds campaign.db)."),
    best: int = typer.Option(3, "--best", "-k", help="Render the K lowest-γ ok structures."),
    color: str = typer.Option("ptm", "--color", help="Colour atoms by 'ptm' structure type or per-atom 'energy'."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default FOLDER/render; "
                                                            "a relative path is taken inside FOLDER)."),
    size: tuple[int, int] = typer.Option((800, 600), help="Image width and height, pixels."),
    database: Optional[str] = typer.Option(None, help="ASE database URL instead of FOLDER/campaign.db."),
):
    """Side and plan views (PNG), extended XYZ and a contact sheet of the best structures."""
    from gbsearch.analysis.render import render_campaign

    if out is not None and not out.is_absolute():
        out = folder / out
    done = render_campaign(folder, best=best, color=color, out=out, size=size, database=database)
    for it in done:
        kinds = ", ".join(f"{n} {c}" for n, c in sorted(it.structure_counts.items()))
        typer.echo(f"{it.rank}. id {it.db_id} ({it.source}) γ = {it.gamma_J_m2:.4f} J/m², [n] = {it.n_frac:.3f}: "
                   f"{it.side_png.name}, {it.plan_png.name}, {it.xyz.name} [{kinds}] {it.render_s:.1f} s")
    typer.echo(f"wrote {len(done)} structures to {done[0].xyz.parent}")


@app.command()
def report(
    folder: Path = typer.Argument(..., help="Campaign or reference-search folder."),
    best: int = typer.Option(3, "--best", "-k", help="Render the K lowest-γ ok structures (0: none)."),
):
    """(Re)write FOLDER/report.html: γ–[n] plot, sortable table, renders, settings, convergence."""
    from gbsearch.analysis.html_report import write_html_report
    from gbsearch.errors import InputError

    if not folder.is_dir():
        raise InputError(f"folder {folder} does not exist")
    typer.echo(f"wrote {write_html_report(folder, best=best)}")
