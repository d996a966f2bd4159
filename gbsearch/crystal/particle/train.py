"""Training the particle model on one phase: denoising score matching on augmented perfect
crystals, AdamW with a cosine learning-rate decay, gradient clipping, EMA weights."""
from __future__ import annotations

import copy
import math
import time
from pathlib import Path

import numpy as np
import torch

from ..phases import NN, PhaseSpec, phase_spec
from .data import crystal_batch
from .network import ParticleConfig, ParticleScoreNet
from .schedule import dsm_loss


def cosine_lr(lr: float, frac: float) -> float:
    """Cosine decay from lr (frac 0) to 5 % of it (frac >= 1)."""
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


def _initial_model(spec: PhaseSpec, init, hidden, layers, cutoff_nn, free_head, dir_fourier) -> ParticleScoreNet:
    """A fresh network, or `init` (a model, or a checkpoint path whose config wins)."""
    if init is not None:
        from .io import load_particle
        model = load_particle(init, free_head=free_head) if isinstance(init, (str, Path)) else init
        return model.train()
    cfg = ParticleConfig(hidden=hidden, layers=layers, L=spec.L, cutoff=min(cutoff_nn * NN, 0.49 * spec.L),
                         free_head=int(free_head), dir_fourier=int(dir_fourier))
    return ParticleScoreNet(cfg)


def _train_step(model, opt, x0: torch.Tensor, gen: torch.Generator, focus: float, focus_range) -> float:
    loss = dsm_loss(model, x0, gen, focus, focus_range)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    return loss.item()


@torch.no_grad()
def _ema_update(ema_model, model, decay: float) -> None:
    for pe, pm in zip(ema_model.parameters(), model.parameters()):
        pe.lerp_(pm, 1 - decay)


def train_particle(spec: PhaseSpec | str, steps: int = 2000, batch_size: int = 16, lr: float = 2e-3,
                   seed: int = 0, hidden: int = 64, layers: int = 3, max_time: float | None = None,
                   log_every: int = 100, progress: bool = False, init=None, focus: float = 0.5,
                   focus_range: tuple[float, float] = (0.01, 0.14), ema: float = 0.995,
                   free_head: bool = True, dir_fourier: bool = True, cutoff_nn: float = 1.35,
                   device: str | torch.device = "cpu"):
    """Train on one phase; returns (model, history [{step, loss}]) with the model on the CPU.

    init: a checkpoint path (or model) to continue from (its config wins over hidden/layers);
    focus/focus_range: see dsm_loss; ema > 0: the returned model holds the EMA weights;
    cutoff_nn: graph cutoff in nearest-neighbour distances (capped at 0.49 L for minimum image).
    The learning rate decays (cosine, to 5 %) over whichever ends first, the steps or max_time,
    so that a time-limited run still ends at a low learning rate."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    torch.manual_seed(seed)
    model = _initial_model(spec, init, hidden, layers, cutoff_nn, free_head, dir_fourier)
    model.to(device)
    ema_model = copy.deepcopy(model).eval() if ema > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    hist, run, t0 = [], [], time.monotonic()
    for step in range(1, steps + 1):
        frac = step / steps
        if max_time is not None:
            frac = max(frac, (time.monotonic() - t0) / max_time)
        for g in opt.param_groups:
            g["lr"] = cosine_lr(lr, frac)
        x0 = crystal_batch(spec, batch_size, gen, noise_A=0.02).to(device)
        run.append(_train_step(model, opt, x0, gen, focus, focus_range))
        if ema_model is not None:
            _ema_update(ema_model, model, ema)
        if step % log_every == 0 or step == steps:
            hist.append({"step": step, "loss": float(np.mean(run))})
            run = []
            if progress:
                print(hist[-1], flush=True)
        if frac >= 1.0 and step < steps:
            hist.append({"step": step, "loss": float(np.mean(run)) if run else hist[-1]["loss"]})
            break
    model = ema_model if ema_model is not None else model
    return model.to("cpu").eval(), hist
