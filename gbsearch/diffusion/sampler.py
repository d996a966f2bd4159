"""Sampling with any diffusers-style scheduler, with in-painting of a known region.

In-painting (replacement method): before every network evaluation the known voxels are set to
the forward-noised known data at the current noise level, alpha_t*x0 + sigma_t*eps0, with eps0
the same noise the chain started from. One fixed eps0 keeps the known region on a single
smooth noise path, which suits the deterministic DPM-Solver (fresh noise at every step would
add noise the ODE solver never removes). At the end the known voxels are copied from the input,
so they equal it exactly.
"""

from __future__ import annotations

from contextlib import nullcontext

import torch


def _as_batch(a: torch.Tensor, n: int, shape) -> torch.Tensor:
    """[nx,ny,nz], [1|n, nx,ny,nz] or [1|n, 1, nx,ny,nz] -> [n, 1, nx,ny,nz]."""
    a = torch.as_tensor(a)
    if a.ndim == 3:
        a = a[None]
    if a.ndim == 4:
        a = a[:, None]
    if a.ndim != 5 or tuple(a.shape[2:]) != tuple(shape) or a.shape[1] != 1 or a.shape[0] not in (1, n):
        raise ValueError(f"known/known_mask of shape {tuple(a.shape)} does not fit {n} samples of {tuple(shape)}")
    return a.expand(n, *a.shape[1:])


@torch.inference_mode()
def sample(
    model: torch.nn.Module,
    scheduler,
    shape,
    n: int,
    known: torch.Tensor | None = None,
    known_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    steps: int = 60,
    scale: float = 1.0,
    device=None,
    autocast: bool | None = None,
) -> torch.Tensor:
    """Generate n voxel arrays [n, 1, nx, ny, nz] (data units, i.e. already multiplied by scale).

    model: network, (x [B,1,nx,ny,nz], t [B]) -> eps (or v, as the scheduler's prediction_type).
    scheduler: diffusers scheduler (set_timesteps / timesteps / step / alphas_cumprod);
      `make_scheduler()` gives DPM-Solver-3 single-step, which makes exactly `steps` evaluations.
    known, known_mask: data-unit voxels and boolean mask (True = known, held fixed), each
      [nx,ny,nz] or [1|n, (1,) nx,ny,nz]; None = unconditional generation.
    scale: the data scale s the model was trained with (the network sees data / s).
    autocast: bf16 autocast; default on for CUDA.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    shape = tuple(int(v) for v in shape)
    if (known is None) != (known_mask is None):
        raise ValueError("known and known_mask go together")
    cuda = device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if (cuda if autocast is None else autocast) else nullcontext()
    fmt = torch.channels_last_3d if cuda else torch.contiguous_format

    eps0 = torch.randn((n, 1, *shape), generator=generator,
                       device=generator.device if generator is not None else "cpu").to(device)
    x = eps0 * scheduler.init_noise_sigma
    if known is not None:
        known = _as_batch(known, n, shape).to(device=device, dtype=torch.float32)
        mask = _as_batch(known_mask, n, shape).to(device=device, dtype=torch.bool)
        x0_known = known / scale

    scheduler.set_timesteps(steps, device=device)
    abar = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    for t in scheduler.timesteps:
        if known is not None:
            noised = abar[t].sqrt() * x0_known + (1 - abar[t]).sqrt() * eps0
            x = torch.where(mask, noised, x)
        inp = scheduler.scale_model_input(x, t).contiguous(memory_format=fmt)
        with amp:
            out = model(inp, t.expand(n).to(device))
        x = scheduler.step(out.float(), t, x).prev_sample

    x = x * scale
    if known is not None:
        x = torch.where(mask, known, x)
    return x
