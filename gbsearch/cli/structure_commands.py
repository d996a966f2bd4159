"""``gbsearch build`` and ``gbsearch relax``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION


@app.command()
def build(
    misorientation: float = typer.Option(DEFAULT_MISORIENTATION, "--misorientation", "-m", help="Twist angle in degrees (a <100> CSL angle)."),
    output: Path = typer.Option(Path("slab.extxyz"), "--output", "-o", help="Output file (extended XYZ keeps regions)."),
    replicate: tuple[int, int] = typer.Option((1, 1), "--replicate", help="In-plane supercell i j of the CSL cell."),
    n_fixed: int = typer.Option(8, help="Fixed (002) planes per grain."),
    n_free: int = typer.Option(8, help="Free (002) planes per grain."),
    vacuum: float = typer.Option(10.0, help="Vacuum above and below, Å."),
    shift: tuple[float, float] = typer.Option((0.0, 0.0), "--shift", help="In-plane shift of the upper grain, Å."),
):
    """Build a twist bicrystal slab and print Σ, cell, atom counts and N_plane."""
    from ase.io import write

    from gbsearch.geometry.bicrystal import describe, twist_bicrystal
    from gbsearch.io_utils import writable_path

    atoms = twist_bicrystal(misorientation, replicate=replicate, n_fixed=n_fixed, n_free=n_free,
                            vacuum=vacuum, shift=shift)
    write(writable_path(output), atoms, format="extxyz")
    typer.echo(describe(atoms))
    typer.echo(f"wrote {output}")


@app.command()
def relax(
    structure: Path = typer.Argument(..., help="Slab file (extended XYZ from `gbsearch build`)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Relaxed structure (extended XYZ)."),
    etol: float = typer.Option(1e-15, help="CG relative energy tolerance."),
    ftol: float = typer.Option(1e-10, help="CG force tolerance, eV/Å."),
    maxiter: int = typer.Option(10_000, help="Maximum CG iterations."),
    maxeval: int = typer.Option(100_000, help="Maximum force evaluations."),
    overlaps: str = typer.Option("merge", help="Overlapping atoms: 'merge' or 'reject'."),
):
    """Relax a slab with LAMMPS CG and print γ_GB (J/m²) and [n]."""
    from ase.io import write

    from gbsearch.io_utils import writable_path
    from gbsearch.relaxation.engine import RelaxSettings
    from gbsearch.relaxation.relax import relax as relax_atoms
    from gbsearch.relaxation.checks import read_structure

    atoms = read_structure(structure)
    if output is not None:
        writable_path(output)
    out = relax_atoms(atoms, RelaxSettings(etol=etol, ftol=ftol, maxiter=maxiter, maxeval=maxeval),
                      overlaps=overlaps)
    info = out.info
    if info["merged_atoms"]:
        typer.echo(f"merged {info['merged_atoms']} overlapping atom(s) before relaxation")
    typer.echo(f"E = {info['energy_eV']:.10f} eV  iterations {info['iterations']}  "
               f"fmax {info['fmax_eV_A']:.2e} eV/Å  ({info['relax_s']:.2f} s)")
    if "gamma_J_m2" in info:
        typer.echo(f"gamma_GB = {info['gamma_J_m2']:.6f} J/m^2   [n] = {info['n_frac']:.4f}")
    if output is not None:
        write(output, out, format="extxyz")
        typer.echo(f"wrote {output}")
