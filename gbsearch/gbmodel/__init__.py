"""The GB in-painting model: slab ↔ voxel window, candidate generation, training.
Knows nothing of LAMMPS."""
