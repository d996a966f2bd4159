"""Distillation of an in-painting diffusion model into a few-step student (issue 16).

Teacher: a trained network sampled by its own solver (DPM-Solver-3 at 20 evaluations for the GB
models) with in-painting by replacement (:func:`gbsearch.diffusion.sampler.sample`).

Student: the same U-Net with two more input channels, the known voxels (scaled, zero elsewhere)
and the known mask. Under replacement the known region reaches the network only through
``alpha_t * x0 + sigma_t * eps0``, which at the noisiest times (alpha_t ~ 0.01) is noise: a
teacher learns where the fixed grains are over its first steps, but a sampler of one or two
steps must place the core in the first one. With the condition as input it can.

Objective (:class:`Distillation`): from the teacher's state x_τ at any of its time points τ
(the known voxels re-noised as in sampling), predict the teacher's final sample x0 of the same
trajectory, on the unknown voxels. Every time point has the same target, so one student serves
any number of steps K: it is evaluated at K of the teacher's time points
(:func:`student_times`), with a first-order step (DDIM, i.e. DPM-Solver++(1), the "ddim" solver
of :func:`gbsearch.diffusion.schedule.make_scheduler`) between them.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .sampler import data_estimate
from .unet import UNet3D, UNetConfig

CONDITION_CHANNELS = 2          # known voxels (network units, zero where unknown), known mask


def student_times(times, k: int) -> list[int]:
    """The ``k`` time points (of the ``times`` a student was trained at, decreasing) a k-step
    sampler evaluates it at: evenly spread over the teacher's steps, always starting at the
    noisiest. ValueError when k is not in 1 … len(times)."""
    times = [int(v) for v in times]
    if not 1 <= int(k) <= len(times):
        raise ValueError(f"a distilled model takes 1 to {len(times)} steps, not {k}")
    idx = np.round(np.linspace(0, len(times), int(k) + 1)[:-1]).astype(int)
    return [times[i] for i in idx]


def student_from_teacher(teacher: UNet3D) -> UNet3D:
    """A student network: the teacher's architecture with CONDITION_CHANNELS more inputs, its
    weights the teacher's (the extra input weights zero, so it starts as the teacher)."""
    cfg = UNetConfig.from_dict({**teacher.cfg.to_dict(), "in_channels": teacher.cfg.in_channels + CONDITION_CHANNELS})
    student = UNet3D(cfg)
    state = {k: v.detach().float().cpu().clone() for k, v in teacher.state_dict().items()}
    w = state["conv_in.conv.weight"]
    extra = torch.zeros(w.shape[0], CONDITION_CHANNELS, *w.shape[2:], dtype=w.dtype)
    state["conv_in.conv.weight"] = torch.cat([w, extra], dim=1)
    student.load_state_dict(state)
    return student


def condition(known: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
    """The student's extra input [n, 2, nx, ny, nz]: known voxels ([n, (1,) nx, ny, nz]) in network
    units (data / scale, zero where unknown) and the known mask ([nx, ny, nz] or per sample) as 0/1."""
    known = known.to(torch.float32)
    known = known[:, None] if known.ndim == 4 else known
    m = mask.to(device=known.device, dtype=torch.float32).reshape(-1, 1, *known.shape[-3:])
    return torch.cat([known / scale * m, m.expand_as(known)], dim=1)


class Conditioned(nn.Module):
    """A student bound to one batch's condition: called as the teacher is, ``(x, t) -> output``,
    so the sampler needs no change. Its parameters are the student's."""

    def __init__(self, net: nn.Module, cond: torch.Tensor):
        super().__init__()
        self.net = net
        self.register_buffer("cond", cond, persistent=False)

    def forward(self, x: torch.Tensor, t) -> torch.Tensor:
        cond = self.cond.to(device=x.device, dtype=x.dtype)
        if cond.shape[0] != x.shape[0]:
            cond = cond.expand(x.shape[0], *cond.shape[1:])
        return self.net(torch.cat([x, cond], dim=1), t)


class TrajectoryRecorder:
    """``on_step`` callback of :func:`~gbsearch.diffusion.sampler.sample` that keeps a teacher's
    whole trajectory (float16, on the sampling device); :meth:`record` then gives it as
    :class:`TrajectorySet` takes it."""

    def __init__(self):
        self.times, self.states = [], []

    def __call__(self, i: int, t, x: torch.Tensor) -> None:
        self.times.append(int(t))
        self.states.append(x.to(torch.float16))

    def record(self, noise: torch.Tensor, known: torch.Tensor, scale: float) -> dict:
        """``times`` [S] (the solver's time points), ``states`` [n, S, nx, ny, nz] (x at each
        time point in network units; states[:, 0] is the starting noise), ``x0`` [n, 1, ...] (the
        final sample, network units, before the known voxels are restored), ``eps0`` and
        ``known`` [n, 1, ...] (network units), from the sampled batch's starting noise and known
        voxels (data units)."""
        device = self.states[-1].device
        eps0 = noise.to(device=device, dtype=torch.float16)
        known = torch.as_tensor(known).to(device=device, dtype=torch.float32)
        known = known[:, None] if known.ndim == 4 else known
        return {"times": list(self.times), "states": torch.cat([eps0] + self.states[:-1], dim=1),
                "x0": self.states[-1], "eps0": eps0, "known": (known / scale).to(torch.float16)}


def concat_records(records: list[dict]) -> dict:
    """One record of several batches' (same time points)."""
    out = {"times": records[0]["times"]}
    for key in ("states", "x0", "eps0", "known"):
        out[key] = torch.cat([r[key] for r in records])
    return out


class TrajectorySet(torch.utils.data.Dataset):
    """Teacher trajectories grouped by grid (one group per boundary for a model of many),
    as distillation items (x_τ, t, eps0, known, mask, target), all on one device.

    groups: name → (label, record) with records from :meth:`TrajectoryRecorder.record` and a mask
    [nx, ny, nz] or [1, 1, nx, ny, nz] per record under the key "mask". Training batches
    (:meth:`batch`) come from one group, groups drawn with equal probability, time points
    uniformly; the items (``__getitem__``, validation) walk samples and time points in a fixed
    order."""

    def __init__(self, groups: dict):
        self.names = sorted(groups)
        self.labels = {k: groups[k][0] for k in self.names}
        self.records = {k: groups[k][1] for k in self.names}
        times = {tuple(r["times"]) for r in self.records.values()}
        if len(times) != 1:
            raise ValueError("every trajectory must have the same time points")
        self.times = torch.tensor(next(iter(times)))
        for r in self.records.values():
            m = torch.as_tensor(r["mask"]).to(torch.bool)
            r["mask"] = m.reshape(1, 1, *m.shape[-3:]).to(r["states"].device)
        self._starts = np.cumsum([0] + [len(self.records[k]["x0"]) * len(self.times) for k in self.names])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int):
        g = int(np.searchsorted(self._starts, i, side="right")) - 1
        local = i - int(self._starts[g])
        r = self.records[self.names[g]]
        n = len(r["x0"])
        # Spread each sample's items over the time points: item i is sample i % n at time (i // n + i) % S.
        j, k = local % n, (local // n + local) % len(self.times)
        return (r["states"][j, k][None], self.times[k].to(r["x0"].device), r["eps0"][j], r["known"][j],
                r["mask"][0], r["x0"][j])

    def groups(self) -> dict:
        """name → (label, the group's items), for validation per group."""
        return {k: (self.labels[k], torch.utils.data.Subset(self, range(int(self._starts[g]), int(self._starts[g + 1]))))
                for g, k in enumerate(self.names)}

    def batch(self, n: int, generator: torch.Generator, device):
        """n items of one group: random samples at random time points, on the set's device."""
        w = torch.ones(len(self.names), device=generator.device)
        r = self.records[self.names[int(torch.multinomial(w, 1, generator=generator).item())]]
        j, k = (torch.randint(0, m, (n,), generator=generator, device=generator.device).to(r["x0"].device)
                for m in (len(r["x0"]), len(self.times)))
        return (r["states"][j, k][:, None], self.times.to(r["x0"].device)[k], r["eps0"][j], r["known"][j],
                r["mask"].expand(n, -1, -1, -1, -1), r["x0"][j])


class Distillation:
    """Training objective of a student (see the module docstring): squared error of its data
    estimate from x_τ against the teacher's final sample, per unknown voxel. Items: (x_τ [B,1,…],
    t [B], eps0, known (network units), mask [B,1,…] bool, teacher x0), as
    :class:`TrajectorySet` gives them."""

    def loss(self, net, batch, generator, run) -> tuple[torch.Tensor, torch.Tensor]:
        env = run.env
        x, t, eps0, known, mask, target = (b.to(env.device, non_blocking=True) for b in batch)
        mask = mask.to(torch.bool)
        a, s = run.vp.alpha_sigma(t, 5)
        x = torch.where(mask, a * known.float() + s * eps0.float(), x.float())
        inp = torch.cat([x, condition(known.float(), mask, 1.0)], dim=1).contiguous(memory_format=env.fmt)
        with env.amp:
            out = net(inp, t)
        x0 = data_estimate(out.float(), x, a, s, run.schedule_cfg.prediction_type)
        w = (~mask).float()
        return (((x0 - target.float()) ** 2) * w).sum(), w.sum()
