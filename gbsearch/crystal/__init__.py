"""Crystal-phase experiment (SPEC §5–6, issue 8): SC/BCC/FCC cells, the voxel model on fully
periodic cells vs the particle-based (GNN, VE-SDE) baseline, metrics and figures.

Modules: `phases` (cells), `metrics` (count, q4/q6, RDF, PTM), `particle` (GNN score model,
VE schedule, samplers, training), `voxel_model` (U-Net diffusion + shipped W decoder on
periodic cells), `experiment` (train / generate / evaluate / figures).
"""
from .phases import PHASES, PhaseSpec, perfect_crystal, phase_spec

__all__ = ["PHASES", "PhaseSpec", "perfect_crystal", "phase_spec"]
