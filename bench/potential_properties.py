"""Bulk properties of the project's Zhou 2004 W potential, computed with LAMMPS.

a0 and E_coh from a box/relax minimisation; C11, C12, C44 from the curvature of the energy
under small homogeneous strains (±0.2 %, central differences; BCC has no internal
relaxation under these strains); the relaxed, constant-volume vacancy formation energy
in a 6x6x6 cubic supercell (432 sites).

    python bench/potential_properties.py
"""
from __future__ import annotations

import numpy as np
from ase.build import bulk

from gbsearch.relaxation.engine import LammpsEngine, RelaxSettings
from gbsearch.relaxation.relax import bulk_reference

EV_A3_TO_GPA = 160.21766


def _energy(engine, atoms) -> float:
    return float(engine.single_point(atoms).sum())


def _uniaxial_modulus(engine, atoms, h: float) -> float:
    """d2E/de_xx^2 / V (eV/Å^3) for a strain along x of an orthorhombic cell."""
    vol = atoms.get_volume()

    def energy(eps):
        strained = atoms.copy()
        strained.set_cell(atoms.cell.array @ np.diag([1.0 + eps, 1.0, 1.0]), scale_atoms=True)
        return _energy(engine, strained)

    return (energy(h) - 2 * energy(0.0) + energy(-h)) / h**2 / vol


def elastic_constants(engine, a0: float, h: float = 2e-3) -> tuple[float, float, float]:
    """C11, C12, C44 in GPa. The engine takes orthorhombic cells only, so shear is reached
    through a [110]-oriented cell: C'11 = (C11 + C12)/2 + C44 there."""
    from ase.lattice.cubic import BodyCenteredCubic
    cube = bulk("W", "bcc", a=a0, cubic=True).repeat((3, 3, 3))
    c11 = _uniaxial_modulus(engine, cube, h)
    vol = cube.get_volume()

    def energy_xy(eps):
        strained = cube.copy()
        strained.set_cell(cube.cell.array @ np.diag([1.0 + eps, 1.0 + eps, 1.0]), scale_atoms=True)
        return _energy(engine, strained)

    biaxial = (energy_xy(h) - 2 * energy_xy(0.0) + energy_xy(-h)) / h**2 / vol   # 2 C11 + 2 C12
    c12 = (biaxial - 2 * c11) / 2
    rotated = BodyCenteredCubic("W", latticeconstant=a0, size=(3, 3, 4),
                                directions=[[1, 1, 0], [-1, 1, 0], [0, 0, 1]])
    c44 = _uniaxial_modulus(engine, rotated, h) - (c11 + c12) / 2
    return tuple(float(c) * EV_A3_TO_GPA for c in (c11, c12, c44))


def vacancy_formation(engine, a0: float, e_coh: float) -> float:
    atoms = bulk("W", "bcc", a=a0, cubic=True).repeat((6, 6, 6))
    del atoms[0]
    e_vac = engine.relax(atoms).energy
    return e_vac - len(atoms) * e_coh


def main() -> None:
    a0, e_coh = bulk_reference()
    with LammpsEngine(settings=RelaxSettings()) as engine:
        c11, c12, c44 = elastic_constants(engine, a0)
        ev = vacancy_formation(engine, a0, e_coh)
    print(f"a0      {a0:.5f} Å")
    print(f"E_coh   {e_coh:.5f} eV/atom")
    print(f"C11     {c11:.1f} GPa\nC12     {c12:.1f} GPa\nC44     {c44:.1f} GPa")
    print(f"E_vac^f {ev:.3f} eV (relaxed, 431 atoms, constant volume)")


if __name__ == "__main__":
    main()
