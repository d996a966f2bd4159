"""The one material this tool models: BCC tungsten with the Zhou 2004 EAM potential.

Every module that needs W's lattice constant, cohesive energy, nearest-neighbour distance,
element symbol or mass takes it from :data:`TUNGSTEN`. The potential's own generation
parameters (SPEC §2.1) stay in :mod:`gbsearch.relaxation.potential`.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Material:
    """Bulk constants of one element in one crystal structure.

    symbol: chemical symbol; a0: cubic lattice constant (Å); e_coh: cohesive energy, the bulk
    energy per atom (eV/atom, negative); d_nn: nearest-neighbour distance (Å) used as the
    length scale for overlap checks; mass: atomic mass (u, LAMMPS metal units: g/mol);
    lattice: the cubic Bravais lattice the CSL builder fills (bcc or fcc).
    """
    symbol: str
    a0: float
    e_coh: float
    d_nn: float
    mass: float
    lattice: str = "bcc"      # cubic Bravais lattice: "bcc" or "fcc" (issue #19)


# What the Zhou–Johnson–Wadley 2004 EAM gives for W (measured, SPEC §2.1 and GRIP's inputs):
# a0 3.164849 Å (SPEC's acceptance 3.1648 ± 0.0005), E_coh −8.76 eV/atom (not the
# experimental −8.90). d_nn is the rounded 2.74 Å the overlap checks were tuned with
# (sqrt(3)/2 · a0 = 2.7408 Å); mass 183.84 u (IUPAC, also in the potential file).
TUNGSTEN = Material(symbol="W", a0=3.164849, e_coh=-8.76, d_nn=2.74, mass=183.84)
