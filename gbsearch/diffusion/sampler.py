"""Sampling with any diffusers-style scheduler, with in-painting of a known region.

In-painting (replacement method): before every network evaluation the known voxels are set to
the forward-noised known data at the current noise level, alpha_t*x0 + sigma_t*eps0, with eps0
the same noise the chain started from. One fixed eps0 keeps the known region on a single
smooth noise path, which suits the deterministic DPM-Solver (fresh noise at every step would
add noise the ODE solver never removes). At the end the known voxels are copied from the input,
so they equal it exactly.

Data clipping: voxel densities are physically bounded (cloud-in-cell weights lie in [0, 1]),
but an ε-prediction network at the noisiest steps divides its error by alpha_t ~ 0.006 when
the solver turns ε into a data estimate, and a sample can run away to large negative
densities. ``clip=(lo, hi)`` clamps every data estimate to that range (in data units) and
hands the solver the ε (or v) consistent with the clamped estimate, the usual x0 clipping of
image diffusion models.
"""

from __future__ import annotations

import ctypes
import functools
import sys
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


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (else autocast would be slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


@functools.cache
def keep_freed_cpu_memory() -> bool:
    """Make glibc keep freed heap memory instead of returning it to the kernel (once per process).

    Every U-Net activation on the CPU is a fresh multi-MB tensor; above glibc's mmap threshold each
    one is mapped and unmapped, and every page is faulted in and zeroed by the kernel again at the
    next step. A `gbsearch generate` of 12 candidates in batches of 16 spent 58 s of its 218 CPU-s
    in the kernel. The evidence for the fix is mixed: one loaded run of a single convolution was
    2-3x faster with the same thresholds raised through GLIBC_TUNABLES, a second with mallopt at
    run time was not, and an idle batch-1 generation gains little (bench/bench_generation.py:
    8.42 against 8.67 core-s with the padding change). Raising the mmap and trim thresholds
    (mallopt M_MMAP_THRESHOLD, M_TRIM_THRESHOLD) lets the allocator reuse the same pages and
    changes no value. Returns False where it does not apply (not Linux/glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3      # <malloc.h>
    big = 1 << 30
    return bool(libc.mallopt(m_mmap_threshold, big)) and bool(libc.mallopt(m_trim_threshold, big))


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
    clip: tuple[float, float] | None = None,
    noise: torch.Tensor | None = None,
    memory_format: torch.memory_format | None = None,
    timesteps=None,
    on_step=None,
) -> torch.Tensor:
    """Generate n voxel arrays [n, 1, nx, ny, nz] (data units, i.e. already multiplied by scale).

    model: network, (x [B,1,nx,ny,nz], t [B]) -> eps (or v, as the scheduler's prediction_type).
    scheduler: diffusers scheduler (set_timesteps / timesteps / step / alphas_cumprod);
      `make_scheduler()` gives DPM-Solver-3 single-step, which makes exactly `steps` evaluations.
    known, known_mask: data-unit voxels and boolean mask (True = known, held fixed), each
      [nx,ny,nz] or [1|n, (1,) nx,ny,nz]; None = unconditional generation.
    scale: the data scale s the model was trained with (the network sees data / s).
    autocast: bf16 autocast; default on for CUDA and for CPUs with native bf16 (AVX512-BF16/AMX:
      2.3x faster than fp32 on 2 Zen 4 cores, the precision GPU sampling has always used).
    clip: (lo, hi) bounds of the data in data units (e.g. (0, 1) for voxel densities); every
      data estimate is clamped to them (None = no clipping).
    noise: the starting noise eps0 [n, 1, nx, ny, nz] (None: drawn from ``generator``). The
      solver is deterministic given eps0, so per-sample noise makes each sample independent of
      the batch it is drawn in (up to floating-point differences between batch sizes).
    timesteps: the solver's time points (integers in [0, T), decreasing) instead of ``steps``
      spread by the scheduler: a distilled student is evaluated only at the times it was trained
      on (:func:`gbsearch.diffusion.distill.student_times`).
    on_step: called as on_step(i, t, x) after the solver's i-th step (from time t) with the state
      x [n, 1, ...] in network units (x at the next time point; after the last step, the sample
      before the known voxels are restored): distillation records teacher trajectories with it.
    """
    device = torch.device(device) if device is not None else next(model.parameters()).device
    shape = tuple(int(v) for v in shape)
    if (known is None) != (known_mask is None):
        raise ValueError("known and known_mask go together")
    cuda = device.type == "cuda"
    if device.type == "cpu":
        keep_freed_cpu_memory()
    dtype = next(model.parameters()).dtype
    # A model whose weights are bf16 already (GBGenerator.load(precision="bf16")) runs without autocast.
    use_amp = dtype == torch.float32 and ((cuda or cpu_has_bf16()) if autocast is None else autocast)
    amp = torch.autocast(device.type, dtype=torch.bfloat16) if use_amp else nullcontext()
    # Layout only (values unchanged): oneDNN's bf16 3D convolutions run fastest channels-last
    # (3.9x fp32 against 2.9x contiguous on 2 AMX cores); cuDNN's run slower so (H200: 114 against
    # 97 ms per batch-64 forward), so the GPU keeps the standard layout.
    fmt = memory_format or (torch.channels_last_3d if use_amp and not cuda else torch.contiguous_format)
    if not hasattr(model, "_orig_mod"):       # a compiled model keeps the layout it was traced in
        model.to(memory_format=fmt)

    if noise is None:
        noise = torch.randn((n, 1, *shape), generator=generator,
                            device=generator.device if generator is not None else "cpu")
    elif tuple(noise.shape) != (n, 1, *shape):
        raise ValueError(f"noise of shape {tuple(noise.shape)} does not fit {n} samples of {shape}")
    eps0 = noise.to(device=device, dtype=torch.float32)
    x = eps0 * scheduler.init_noise_sigma
    if known is not None:
        known = _as_batch(known, n, shape).to(device=device, dtype=torch.float32)
        mask = _as_batch(known_mask, n, shape).to(device=device, dtype=torch.bool)
        x0_known = known / scale

    if timesteps is not None:
        scheduler.set_timesteps(timesteps=[int(v) for v in timesteps], device=device)
    else:
        scheduler.set_timesteps(steps, device=device)
    abar = scheduler.alphas_cumprod.to(device=device, dtype=torch.float32)
    for i, t in enumerate(scheduler.timesteps):
        if known is not None:
            noised = abar[t].sqrt() * x0_known + (1 - abar[t]).sqrt() * eps0
            x = torch.where(mask, noised, x)
        inp = scheduler.scale_model_input(x, t).contiguous(memory_format=fmt).to(dtype)
        with amp:
            out = model(inp, t.expand(n).to(device)).float()
        if clip is not None:
            out = _clipped_output(out, x, abar[t], clip[0] / scale, clip[1] / scale,
                                  scheduler.config.prediction_type)
        x = scheduler.step(out, t, x).prev_sample
        if on_step is not None:
            on_step(i, t, x)

    x = x * scale
    if known is not None:
        x = torch.where(mask, known, x)
    return x


def data_estimate(out: torch.Tensor, x: torch.Tensor, a, s, prediction_type: str) -> torch.Tensor:
    """The data estimate x0 of a network output (ε or v) at x = a x0 + s ε."""
    if prediction_type == "epsilon":
        return (x - s * out) / a
    if prediction_type == "v_prediction":
        return a * x - s * out
    raise ValueError(f"no data estimate for a {prediction_type!r} model")


def _clipped_output(out: torch.Tensor, x: torch.Tensor, abar: torch.Tensor, lo: float, hi: float,
                    prediction_type: str) -> torch.Tensor:
    """The network output that corresponds to the data estimate of ``out`` clamped to [lo, hi]."""
    a, s = abar.sqrt(), (1 - abar).sqrt()
    x0 = data_estimate(out, x, a, s, prediction_type).clamp(lo, hi)
    eps = (x - a * x0) / s
    return eps if prediction_type == "epsilon" else a * eps - s * x0
