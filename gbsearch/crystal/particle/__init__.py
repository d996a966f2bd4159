"""Particle-based diffusion baseline (SPEC §5): a GNN score model on atom coordinates.

Laid out like gbsearch.diffusion, with network, schedule/loss and samplers separate:

- `network`: ParticleConfig, ParticleScoreNet (MeshGraphNet on a minimum-image cutoff graph;
  the output is a weighted sum of edge vectors, read as the predicted eps).
- `schedule`: the VE schedule x_t = x_0 + sigma(t) eps (wrapped), sigma(t) = sigma_max t,
  SIGMA_MAX = 0.4 (fractional); dsm_loss (denoising score matching on eps: by default half of
  each batch draws sigma uniformly from [0.01, 0.14], the range the displaced starts pass
  through), eps_mse, loss_at (the loss at fixed sigmas).
- `data`: crystal_batch (augmented perfect crystals).
- `train`: train_particle (AdamW, cosine LR decay, EMA weights returned).
- `samplers`: probability-flow ODE (Euler) and reverse SDE (Euler-Maruyama), started from
  uniform random positions (t = 1) or from the crystal displaced by sigma_max * p * eps
  (started at t = p): sample_particle, displaced_starts, start_time.
- `io`: save_particle / load_particle (format tag checked; CheckpointError names the file).
"""
from .data import crystal_batch
from .io import FORMAT, load_particle, read_particle, save_particle
from .network import GaussianFourier, ParticleConfig, ParticleScoreNet, mlp, radius_graph
from .samplers import (DISPLACEMENT_UNITS, SAMPLERS, displaced_starts, probability_flow_ode, reverse_sde,
                       sample_particle, start_time, tweedie_denoise)
from .schedule import SIGMA_MAX, dsm_loss, eps_mse, g2_at, loss_at, sigma_at, time_grid
from .train import cosine_lr, train_particle

__all__ = [
    "ParticleConfig", "ParticleScoreNet", "GaussianFourier", "mlp", "radius_graph",
    "SIGMA_MAX", "sigma_at", "g2_at", "time_grid", "dsm_loss", "eps_mse", "loss_at",
    "crystal_batch", "train_particle", "cosine_lr",
    "sample_particle", "probability_flow_ode", "reverse_sde", "tweedie_denoise", "SAMPLERS",
    "DISPLACEMENT_UNITS", "start_time", "displaced_starts",
    "FORMAT", "save_particle", "load_particle", "read_particle",
]
