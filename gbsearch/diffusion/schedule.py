"""Variance-preserving (VP) noise schedule and the DPM-Solver scheduler built on it.

Forward process on data scaled by 1/s (s = voxel standard deviation):
    x_t = alpha_t * x_0 + sigma_t * eps,   alpha_t = sqrt(abar_t), sigma_t = sqrt(1 - abar_t),
with integer t in [0, T). Training and sampling read abar_t from the same diffusers scheduler,
so the network is trained on exactly the noise levels the solver visits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
from diffusers import DPMSolverMultistepScheduler, DPMSolverSinglestepScheduler, UniPCMultistepScheduler

from gbsearch.solvers import SOLVERS

# Every sampler is a diffusers scheduler on the model's own noise schedule; the network and its
# training know nothing of them, so any of them samples any trained model.


@dataclass
class ScheduleConfig:
    """Noise schedule + solver settings (stored in checkpoints as a plain dict).

    prediction_type: "epsilon" or "v_prediction" (what the network outputs).
    solver_order 3 with `steps` = 60 is DPM-Solver-3 single-step at 60 function evaluations.
    lambda_min_clipped: the cosine schedule's last steps have log-SNR -> -inf; clipping keeps
    the solver's first step finite (diffusers' recommended -5.1).
    """

    num_train_timesteps: int = 1000
    beta_schedule: str = "squaredcos_cap_v2"
    beta_start: float = 0.0001
    beta_end: float = 0.02
    prediction_type: str = "epsilon"
    solver_order: int = 3
    algorithm_type: str = "dpmsolver++"
    lambda_min_clipped: float = -5.1
    steps: int = 60

    def __post_init__(self) -> None:
        if self.prediction_type not in ("epsilon", "v_prediction"):
            raise ValueError(f"prediction_type must be epsilon or v_prediction, got {self.prediction_type!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ScheduleConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown schedule config keys: {sorted(unknown)}")
        return cls(**d)


def make_scheduler(cfg: ScheduleConfig | None = None, solver: str | None = None):
    """diffusers scheduler for this VP schedule: ``solver`` one of :data:`SOLVERS` (None: the
    configuration's own DPM-Solver single-step of order cfg.solver_order, which training uses
    for its noise levels; every solver reads the same alphas_cumprod)."""
    cfg = cfg or ScheduleConfig()
    common = dict(num_train_timesteps=cfg.num_train_timesteps, beta_schedule=cfg.beta_schedule,
                  beta_start=cfg.beta_start, beta_end=cfg.beta_end, prediction_type=cfg.prediction_type)
    if solver not in (None, *SOLVERS):
        raise ValueError(f"unknown solver {solver!r}; choose one of {', '.join(SOLVERS)}")
    if solver == "ddim":
        return DPMSolverMultistepScheduler(**common, solver_order=1, algorithm_type="dpmsolver++",
                                           lambda_min_clipped=cfg.lambda_min_clipped, final_sigmas_type="zero")
    if solver == "dpm2m":
        return DPMSolverMultistepScheduler(**common, solver_order=2, algorithm_type="dpmsolver++",
                                           lambda_min_clipped=cfg.lambda_min_clipped, lower_order_final=True,
                                           final_sigmas_type="zero")
    if solver == "unipc":
        # No lambda_min_clipped here: "trailing" spacing starts at t = T-1, where the capped
        # cosine schedule's half log-SNR is finite (λ ≈ -9.9), so the first step stays finite.
        return UniPCMultistepScheduler(**common, solver_order=3, lower_order_final=True,
                                       timestep_spacing="trailing", final_sigmas_type="zero")
    return DPMSolverSinglestepScheduler(
        **common,
        solver_order=3 if solver == "dpm3-singlestep" else cfg.solver_order,
        algorithm_type=cfg.algorithm_type,
        lambda_min_clipped=cfg.lambda_min_clipped,
        # Final step goes to sigma = 0 with a first-order update; diffusers requires
        # lower_order_final for that and would otherwise switch it on with a warning.
        lower_order_final=True,
        final_sigmas_type="zero",
    )


class VPSchedule:
    """Training-side view of the schedule: noising, targets, random times.

    alphas_cumprod is taken from a diffusers scheduler (the one sampling will use).
    """

    def __init__(self, cfg: ScheduleConfig | None = None, scheduler=None):
        self.cfg = cfg or ScheduleConfig()
        scheduler = scheduler or make_scheduler(self.cfg)
        self.alphas_cumprod = scheduler.alphas_cumprod.detach().to(torch.float32).cpu()
        self.num_train_timesteps = len(self.alphas_cumprod)

    def alpha_sigma(self, t: torch.Tensor, ndim: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
        """alpha_t, sigma_t for integer times t [B], shaped [B, 1, ...] to broadcast over ndim."""
        if self.alphas_cumprod.device != t.device:  # move once, not every training step
            self.alphas_cumprod = self.alphas_cumprod.to(t.device)
        abar = self.alphas_cumprod[t.long()]
        shape = (-1,) + (1,) * (ndim - 1)
        return abar.sqrt().view(shape), (1 - abar).sqrt().view(shape)

    def add_noise(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x_t = alpha_t x0 + sigma_t eps (x0, eps [B, C, ...], t [B] integer)."""
        a, s = self.alpha_sigma(t, x0.ndim)
        return a.to(x0.dtype) * x0 + s.to(x0.dtype) * eps

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the network learns to output: eps, or v = alpha_t eps - sigma_t x0."""
        if self.cfg.prediction_type == "epsilon":
            return eps
        a, s = self.alpha_sigma(t, x0.ndim)
        return a.to(x0.dtype) * eps - s.to(x0.dtype) * x0

    def sample_t(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """n uniform integer times in [0, T)."""
        return torch.randint(0, self.num_train_timesteps, (n,), generator=generator,
                             device=generator.device if generator is not None else "cpu").to(device)
