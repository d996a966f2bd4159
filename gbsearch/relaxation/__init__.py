"""Relaxation: the EAM potential, structure checks, one LAMMPS engine per worker, CG relaxation.
Knows nothing of torch."""
