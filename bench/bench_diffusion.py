"""Benchmark of the voxel diffusion model: training steps/s and candidates/s at 60 NFE.

GPU (default when CUDA is present): SPEC §4 reference size, 28x28x64 voxels, 2 levels x 3
residual blocks, bf16 autocast, eager PyTorch (training layout: --memory-format):
    python bench/bench_diffusion.py                       # 32 and 64 channels
    python bench/bench_diffusion.py --shape 48 48 256 --channels 64 --sample-batch 4
CPU (no CUDA): a tiny config so it finishes in about a minute:
    python bench/bench_diffusion.py --device cpu
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

from gbsearch.diffusion import UNet3D, UNetConfig, VPSchedule, make_scheduler, sample
from gbsearch.diffusion.train import loss_terms


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench_train(cfg, shape, batch, device, steps, warmup=3, compile=False, fmt=None):
    """Seconds per optimizer step (forward + backward + AdamW) at `batch`, and peak GiB."""
    model = UNet3D(cfg)
    cuda = device.type == "cuda"
    fmt = fmt or torch.contiguous_format        # as train() does by default
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    model = model.to(device=device, memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    if compile:
        model = torch.compile(model)
    vp = VPSchedule()
    x0 = torch.randn(batch, 1, *shape, device=device).contiguous(memory_format=fmt)
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)

    def one():
        t = torch.randint(0, vp.num_train_timesteps, (batch,), device=device)
        eps = torch.randn_like(x0)
        s, c = loss_terms(model, vp, x0, None, t, eps, amp)
        opt.zero_grad(set_to_none=True)
        (s / c).backward()
        opt.step()

    for _ in range(warmup):
        one()
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        one()
    sync(device)
    dt = (time.perf_counter() - t0) / steps
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if cuda else float("nan")
    return dt, peak


def bench_sample(cfg, shape, batch, device, nfe, reps=1, compile=False):
    """Seconds for one `sample` call of `batch` candidates at `nfe` evaluations (after warm-up),
    and the counted network evaluations."""
    model = UNet3D(cfg)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last_3d)
    model = model.to(device).eval()
    if compile:
        model = torch.compile(model)
    calls = []
    model.register_forward_hook(lambda *a: calls.append(1))
    sched = make_scheduler()
    known = torch.zeros(1, 1, *shape)
    mask = torch.zeros(1, 1, *shape, dtype=torch.bool)
    mask[..., : shape[2] // 4] = True  # in-painting on, as in the GB search
    mask[..., -shape[2] // 4:] = True
    sample(model, sched, shape, batch, known=known, known_mask=mask, steps=6)  # warm-up
    sync(device)
    calls.clear()
    t0 = time.perf_counter()
    for _ in range(reps):
        sample(model, sched, shape, batch, known=known, known_mask=mask, steps=nfe)
    sync(device)
    return (time.perf_counter() - t0) / reps, len(calls) // reps


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--shape", type=int, nargs=3, default=None, help="voxels nx ny nz")
    p.add_argument("--channels", type=int, nargs="+", default=None, help="base channels (one run each)")
    p.add_argument("--levels", type=int, default=2)
    p.add_argument("--blocks", type=int, default=None, help="residual blocks per level")
    p.add_argument("--train-batch", type=int, nargs="+", default=None)
    p.add_argument("--sample-batch", type=int, nargs="+", default=[16, 64])
    p.add_argument("--train-steps", type=int, default=None, help="timed steps per measurement")
    p.add_argument("--nfe", type=int, default=60)
    p.add_argument("--compile", action="store_true", help="torch.compile the network (default: eager)")
    p.add_argument("--memory-format", choices=["channels_last", "contiguous"], default=None,
                   help="training memory layout (default: contiguous, as train())")
    a = p.parse_args()
    device = torch.device(a.device)
    gpu = device.type == "cuda"
    shape = tuple(a.shape or ((28, 28, 64) if gpu else (8, 8, 16)))
    channels = a.channels or ([32, 64] if gpu else [8])
    blocks = a.blocks or (3 if gpu else 1)
    train_batches = a.train_batch or ([4, 16, 64] if gpu else [4, 16])
    steps = a.train_steps or (20 if gpu else 5)
    if gpu:
        torch.backends.cudnn.benchmark = True
    fmt = {"channels_last": torch.channels_last_3d, "contiguous": torch.contiguous_format,
           None: None}[a.memory_format]
    name = torch.cuda.get_device_name(device) if gpu else f"CPU x{torch.get_num_threads()} threads"
    print(f"# {name}, torch {torch.__version__}, voxels {shape}, levels {a.levels} x {blocks} res blocks, "
          f"{'bf16 autocast' if gpu else 'fp32'}, train layout {a.memory_format or 'default'}, {'torch.compile' if a.compile else 'eager'}")
    for ch in channels:
        groups = 8 if ch % 8 == 0 else 4
        cfg = UNetConfig(base_channels=ch, channel_mult=tuple([1, 2, 2, 2][: a.levels]),
                         num_res_blocks=blocks, norm_groups=groups)
        n_par = sum(p.numel() for p in UNet3D(cfg).parameters())
        print(f"\n## {ch} channels ({n_par / 1e6:.2f} M parameters)")
        for b in train_batches:
            dt, peak = bench_train(cfg, shape, b, device, steps, compile=a.compile, fmt=fmt)
            print(f"train  batch {b:3d}: {dt * 1e3:8.1f} ms/step  {1 / dt:7.2f} steps/s"
                  + (f"  peak {peak:.1f} GiB" if gpu else ""), flush=True)
        for b in (b for b in a.sample_batch if b > 0):  # --sample-batch 0: training only
            dt, nfe = bench_sample(cfg, shape, b, device, a.nfe, compile=a.compile)
            print(f"sample batch {b:3d}: {dt:8.2f} s/call   {b / dt:7.2f} candidates/s at {nfe} NFE "
                  f"({dt / nfe * 1e3:.1f} ms per evaluation)", flush=True)


if __name__ == "__main__":
    main()
