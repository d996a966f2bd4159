"""``gbsearch import-grip`` and ``gbsearch export-grip``: GRIP's ``best/`` folders (issue #18)."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app

EXPORT_SOURCES = {"reference": ("reference",), "diffusion": ("diffusion",), "all": None}


def _db(folder: Path, database: Optional[str]):
    from gbsearch.store.database import DB_NAME, CampaignDB
    return CampaignDB(database or Path(folder) / DB_NAME)


@app.command("import-grip")
def import_grip(
    folder: Path = typer.Argument(..., help="GRIP run folder, or its best/ folder."),
    out: Path = typer.Option(Path("runs/reference"), "--out", "-o", help="Campaign folder (table, plot, summary)."),
    database: Optional[str] = typer.Option(None, help="ASE database URL (default: OUT/campaign.db)."),
):
    """Add GRIP's relaxed structures (best/lammps_* dumps) to a campaign with source 'grip':
    γ and [n] as GRIP wrote them, per-atom energies, shift, replication, T and MD steps.
    Dumps imported before are skipped. Rewrites table.csv, gamma_n.png and summary.txt."""
    from gbsearch.analysis.report import write_report
    from gbsearch.store.grip import import_folder

    out.mkdir(parents=True, exist_ok=True)
    db = _db(out, database)
    added, skipped = import_folder(db, folder)
    text = write_report(db, out)
    typer.echo(text)
    typer.echo(f"imported {added} GRIP structure(s) from {folder}, {skipped} already present; "
               f"wrote {out / 'table.csv'}, {out / 'gamma_n.png'}, {out / 'summary.txt'}")


@app.command("export-grip")
def export_grip(
    campaign: Path = typer.Argument(..., help="Campaign folder (holding campaign.db unless --database)."),
    out: Path = typer.Option(..., "--out", "-o", help="GRIP-style folder: dumps go to OUT/best (or OUT if named best)."),
    source: str = typer.Option("all", help="Which structures: reference, diffusion or all."),
    database: Optional[str] = typer.Option(None, help="ASE database URL (default: CAMPAIGN/campaign.db)."),
):
    """Write the campaign's ok structures as GRIP dumps (lammps_Egb_n_dx_dy_rx_ry_T_steps, columns
    id type x y z c_eng, 'Egb =' line) plus best_grip_data.csv."""
    from gbsearch.errors import InputError
    from gbsearch.store.database import DB_NAME
    from gbsearch.store.grip import export_campaign

    if source not in EXPORT_SOURCES:
        raise InputError(f"--source must be reference, diffusion or all, got {source!r}")
    if database is None and not (Path(campaign) / DB_NAME).exists():
        raise InputError(f"no campaign database at {Path(campaign) / DB_NAME}")
    best, n, notes = export_campaign(_db(campaign, database), out, EXPORT_SOURCES[source])
    for note in notes:
        typer.echo(note)
    typer.echo(f"wrote {n} GRIP dump(s) and {best / 'best_grip_data.csv'}")
