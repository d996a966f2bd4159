"""Samplers of the particle model: probability-flow ODE (Euler) and reverse SDE
(Euler-Maruyama) on the VE schedule, from uniform positions (t = 1) or a displaced crystal.

Each sampler takes the network, positions x [B, N, 3] (fractional) and the decreasing times ts,
and returns x at ts[-1]; `sample_particle` batches, starts and ends with a Tweedie step."""
from __future__ import annotations

import math

import torch

from ..phases import NN, PhaseSpec, phase_spec
from .data import crystal_batch
from .schedule import SIGMA_MAX, g2_at, sigma_at, time_grid

DISPLACEMENT_UNITS = ("d_nn", "sigma_max")


def _drift(model, x: torch.Tensor, a, b):
    """(score at time a, g(a)^2, dt = a - b)."""
    sig = sigma_at(a, model.cfg.sigma_max)
    eps = model(x, torch.full((x.shape[0],), float(sig), device=x.device))
    return -eps / sig, g2_at(a, model.cfg.sigma_max), float(a - b)


@torch.inference_mode()
def probability_flow_ode(model, x: torch.Tensor, ts: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
    """Euler steps of dx = -1/2 g^2 score dt (deterministic; gen unused)."""
    for a, b in zip(ts[:-1], ts[1:]):
        score, g2, dt = _drift(model, x, a, b)
        x = torch.remainder(x + 0.5 * g2 * score * dt, 1.0)
    return x


@torch.inference_mode()
def reverse_sde(model, x: torch.Tensor, ts: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Euler-Maruyama steps of dx = -g^2 score dt + g dw (noise from the CPU generator gen)."""
    for a, b in zip(ts[:-1], ts[1:]):
        score, g2, dt = _drift(model, x, a, b)
        x = x + g2 * score * dt + math.sqrt(g2 * dt) * torch.randn(x.shape, generator=gen).to(x.device)
        x = torch.remainder(x, 1.0)
    return x


SAMPLERS = {"ode": probability_flow_ode, "sde": reverse_sde}


@torch.inference_mode()
def tweedie_denoise(model, x: torch.Tensor, t: float) -> torch.Tensor:
    """x - sigma(t) eps_hat (wrapped): the final denoising step."""
    sig = model.cfg.sigma_max * t
    return torch.remainder(x - sig * model(x, torch.full((x.shape[0],), sig, device=x.device)), 1.0)


@torch.inference_mode()
def sample_particle(model, n: int, n_atoms: int, steps: int = 1000, method: str = "sde",
                    start: torch.Tensor | None = None, t_start: float = 1.0, seed: int = 0,
                    batch: int = 64, device: str | torch.device | None = None) -> torch.Tensor:
    """Reverse process from t_start to sigma_min; returns fractional positions [n, N, 3].

    start None: uniform random positions (the VE prior; use t_start = 1). Otherwise start
    [n, N, 3] fractional (e.g. the crystal displaced by sigma_max * t_start * eps).
    method: "ode" (probability flow, Euler) or "sde" (reverse SDE, Euler-Maruyama).
    Ends with one Tweedie denoising step at sigma_min. device: where the network runs (default:
    the model's; the model is moved there and left there); random numbers come from a CPU
    generator, so a seed gives the same noise anywhere.
    """
    if method not in SAMPLERS:
        raise ValueError("method must be 'ode' or 'sde'")
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev)
    gen = torch.Generator().manual_seed(seed)
    ts = time_grid(t_start, model.cfg.sigma_min / model.cfg.sigma_max, steps)
    outs = []
    for k in range(0, n, batch):
        m = min(batch, n - k)
        x = torch.rand(m, n_atoms, 3, generator=gen) if start is None else start[k:k + m].clone()
        x = SAMPLERS[method](model, x.to(dev), ts, gen)
        outs.append(tweedie_denoise(model, x, float(ts[-1])).cpu())
    return torch.cat(outs)


def start_time(spec: PhaseSpec | str, displacement: float, unit: str = "d_nn") -> float:
    """The schedule time t (= sigma / sigma_max) of a start displaced by ``displacement`` in ``unit``.

    d_nn: Gaussian displacement of std ``displacement`` × nearest-neighbour distance per Cartesian
    component, a measure of disorder that does not depend on the supercell; sigma_max: a fraction
    of the schedule's sigma_max (fractional coordinates), which does: 20 % of sigma_max is 0.32
    lattice spacings in the 4×4×4 SC cell but 0.16 in a 2×2×2 one."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    if unit == "sigma_max":
        return float(displacement)
    if unit == "d_nn":
        return float(displacement) * NN / (SIGMA_MAX * spec.L)
    raise ValueError(f"displacement unit must be one of {DISPLACEMENT_UNITS}, got {unit!r}")


def displaced_starts(spec: PhaseSpec, n: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """n crystals (random translation/op) displaced by sigma_max * fraction * eps (fractional)."""
    gen = torch.Generator().manual_seed(seed)
    x0 = crystal_batch(spec, n, gen)
    return torch.remainder(x0 + SIGMA_MAX * fraction * torch.randn(x0.shape, generator=gen), 1.0)
