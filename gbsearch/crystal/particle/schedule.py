"""The particle model's VE schedule and its denoising-score-matching loss.

x_t = x_0 + sigma(t) eps (wrapped into the unit cube), sigma(t) = sigma_max * t, t in [0, 1],
sigma_max = 0.4 (fractional; the wrapped normal at 0.4 is within 5 % of uniform); the network
predicts eps (Tweedie holds for the wrapped normal with the unwrapped eps as the latent), so
score = -eps / sigma.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from ..phases import PhaseSpec, phase_spec
from .data import crystal_batch

if TYPE_CHECKING:
    from .network import ParticleScoreNet

SIGMA_MAX = 0.4      # fractional coordinates: the VE schedule's end, close to uniform


def sigma_at(t, sigma_max: float = SIGMA_MAX):
    """sigma(t) = sigma_max * t (a tensor for a tensor t)."""
    return sigma_max * t


def g2_at(t, sigma_max: float = SIGMA_MAX) -> float:
    """g(t)^2 = d sigma^2 / dt = 2 sigma_max^2 t."""
    return 2 * sigma_max ** 2 * float(t)


def time_grid(t_start: float, t_end: float, steps: int) -> torch.Tensor:
    """steps + 1 equally spaced times from t_start down to t_end (= sigma_min / sigma_max)."""
    return torch.linspace(t_start, t_end, steps + 1)


def eps_mse(model: ParticleScoreNet, x0: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted eps for x0 noised by sigma [B] * eps (wrapped)."""
    xt = torch.remainder(x0 + sigma[:, None, None] * eps, 1.0)
    return ((model(xt, sigma) - eps) ** 2).mean()


def dsm_loss(model: ParticleScoreNet, x0: torch.Tensor, gen: torch.Generator,
             focus: float = 0.0, focus_range: tuple[float, float] = (0.01, 0.14)) -> torch.Tensor:
    """Denoising score matching on eps. Noise levels: half linear-uniform t, half log-uniform
    down to sigma_min; with focus > 0, that fraction of the batch instead draws sigma uniformly
    from focus_range (the range the displaced starts integrate through)."""
    c = model.cfg
    B = x0.shape[0]
    lo = c.sigma_min / c.sigma_max
    t_lin = torch.rand(B, generator=gen) * (1 - lo) + lo          # the linear schedule's t
    t_log = lo ** torch.rand(B, generator=gen)                     # log-uniform: more small sigmas
    t = torch.where(torch.rand(B, generator=gen) < 0.5, t_lin, t_log)
    sigma = c.sigma_max * t
    if focus > 0:
        a, b = focus_range
        s_f = a + (b - a) * torch.rand(B, generator=gen)
        sigma = torch.where(torch.rand(B, generator=gen) < focus, s_f, sigma)
    # random numbers come from the CPU generator (same stream on every device)
    eps = torch.randn(x0.shape, generator=gen)
    return eps_mse(model, x0, sigma.to(x0.device), eps.to(x0.device))


@torch.no_grad()
def loss_at(model: ParticleScoreNet, spec: PhaseSpec | str, sigmas=(0.02, 0.04, 0.08, 0.12), n: int = 256,
            seed: int = 123, device: str | torch.device | None = None) -> dict[float, float]:
    """DSM loss (mean squared eps error) at fixed noise levels on n fresh crystals: a
    validation figure that does not depend on how training drew its noise levels. The model
    is moved to ``device`` (default: where it is) and left there."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    out = {}
    for s in sigmas:
        gen = torch.Generator().manual_seed(seed)
        x0 = crystal_batch(spec, n, gen, noise_A=0.02)
        eps = torch.randn(x0.shape, generator=gen)
        # batches of 64 (the dense pair table grows as B N^2); equal sizes, so the mean of means
        errs = [eps_mse(model, x0[k:k + 64].to(dev), torch.full((len(x0[k:k + 64]),), s, device=dev),
                        eps[k:k + 64].to(dev)) * len(x0[k:k + 64]) for k in range(0, n, 64)]
        out[float(s)] = float(sum(errs) / n)
    return out
