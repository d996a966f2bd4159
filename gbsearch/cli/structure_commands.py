"""``gbsearch build`` and ``gbsearch relax``."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from gbsearch.cli import app
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION


@app.command()
def build(
    misorientation: Optional[float] = typer.Option(None, "--misorientation", "-m", help=f"Twist angle in degrees (a CSL angle; default {DEFAULT_MISORIENTATION} for the <100> twist)."),
    output: Path = typer.Option(Path("slab.extxyz"), "--output", "-o", help="Output file (extended XYZ keeps regions)."),
    replicate: tuple[int, int] = typer.Option((1, 1), "--replicate", help="In-plane supercell i j of the CSL cell."),
    n_fixed: Optional[int] = typer.Option(None, help="Fixed atomic planes per grain (default 8 (002) planes; with --plane enough for 4 a0)."),
    n_free: Optional[int] = typer.Option(None, help="Free atomic planes per grain (default as --n-fixed)."),
    vacuum: float = typer.Option(10.0, help="Vacuum above and below, Å."),
    shift: tuple[float, float] = typer.Option((0.0, 0.0), "--shift", help="In-plane shift of the upper grain, Å."),
    axis: Optional[str] = typer.Option(None, "--axis", help="Rotation axis, e.g. 1,-1,0 (symmetric tilt: ⟂ the plane normal)."),
    plane: Optional[str] = typer.Option(None, "--plane", help="GB plane (hkl), e.g. 5,5,2; with --axis: a symmetric tilt (or --twist)."),
    twist: bool = typer.Option(False, "--twist", help="Twist about the plane normal by --misorientation degrees."),
    max_edge: float = typer.Option(40.0, "--max-edge", help="Largest in-plane CSL cell edge searched, Å."),
    potential: Optional[Path] = typer.Option(None, "--potential", help="EAM potential file (eam/alloy or eam/fs); a0 computed from it."),
    element: Optional[str] = typer.Option(None, "--element", help="Element of --potential to use (default: its first)."),
):
    """Build a bicrystal slab and print Σ, cell, atom counts and N_plane.

    Without --plane: the <100> twist of --misorientation. With --plane (and --axis, or --twist):
    any CSL symmetric tilt or twist of the cubic lattice."""
    from ase.io import write

    from gbsearch.geometry.bicrystal import describe, twist_bicrystal
    from gbsearch.io_utils import writable_path

    a0, symbol, lattice = _material(potential, element)
    if plane is None and axis is None and not twist:
        atoms = twist_bicrystal(DEFAULT_MISORIENTATION if misorientation is None else misorientation,
                                replicate=replicate, n_fixed=8 if n_fixed is None else n_fixed,
                                n_free=8 if n_free is None else n_free, vacuum=vacuum, shift=shift,
                                a0=a0, symbol=symbol)
        text = describe(atoms)
    else:
        from gbsearch.geometry.boundary import boundary_request
        from gbsearch.geometry.csl_general import csl_bicrystal, describe_gb, find_gb
        misorientation, plane, axis = boundary_request(misorientation, plane, axis, twist)
        geometry = find_gb(plane, axis=axis, twist=twist, angle=misorientation, lattice=lattice,
                           a0=a0, max_edge=max_edge)
        atoms = csl_bicrystal(geometry, replicate=replicate, n_fixed=n_fixed, n_free=n_free,
                              vacuum=vacuum, shift=shift, a0=a0, symbol=symbol)
        text = describe_gb(atoms, geometry)
    write(writable_path(output), atoms, format="extxyz")
    typer.echo(text)
    typer.echo(f"wrote {output}")


def _material(potential: Optional[Path], element: Optional[str]) -> tuple[float, str, str]:
    """(a0 Å, symbol, lattice) of the W default or of an EAM potential file."""
    from gbsearch.geometry.material import TUNGSTEN
    if potential is None:
        if element not in (None, TUNGSTEN.symbol):
            from gbsearch.errors import InputError
            raise InputError("--element needs --potential FILE (the built-in potential is W only)")
        return TUNGSTEN.a0, TUNGSTEN.symbol, "bcc"
    from gbsearch.relaxation.potential import Potential
    pot = Potential(potential, element)
    a0, _ = pot.properties()
    return a0, pot.element, pot.lattice


@app.command()
def relax(
    structure: Path = typer.Argument(..., help="Slab file (extended XYZ from `gbsearch build`)."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Relaxed structure (extended XYZ)."),
    etol: float = typer.Option(1e-15, help="CG relative energy tolerance."),
    ftol: float = typer.Option(1e-10, help="CG force tolerance, eV/Å."),
    maxiter: int = typer.Option(10_000, help="Maximum CG iterations."),
    maxeval: int = typer.Option(100_000, help="Maximum force evaluations."),
    overlaps: str = typer.Option("merge", help="Overlapping atoms: 'merge' or 'reject'."),
    potential: Optional[Path] = typer.Option(None, "--potential", help="EAM potential file (eam/alloy or eam/fs; default the W Zhou 2004 file)."),
    element: Optional[str] = typer.Option(None, "--element", help="Element of --potential (default: its only one)."),
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
    pot = None
    if potential is not None or element is not None:
        from gbsearch.relaxation.potential import as_potential
        if potential is None:
            from gbsearch.errors import InputError
            raise InputError("--element needs --potential FILE (the built-in potential is W only)")
        pot = as_potential(potential, element)
    out = relax_atoms(atoms, RelaxSettings(etol=etol, ftol=ftol, maxiter=maxiter, maxeval=maxeval),
                      overlaps=overlaps, potential=pot)
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
