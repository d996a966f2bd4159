"""Voxel representation of atoms: cloud-in-cell encoder and learned decoder (SPEC §3)."""
from gbsearch.voxel.grid import VoxelGrid  # noqa: F401
