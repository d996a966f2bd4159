"""CPU cost of one U-Net evaluation of the GB model, fp32 against bf16 autocast, contiguous
against channels-last, side by side in one process (the machine is noisy: compare ratios).

    python bench/bench_cpu_sampling.py [--threads 2] [--batch 1 2] [--repeats 4]

Prints ms per forward pass, seconds per candidate at 60 NFE and the ratio to fp32. `sample()`
uses bf16 + channels-last on CPUs with native bf16 (`cpu_has_bf16()`), fp32 elsewhere.
"""
from __future__ import annotations

import argparse
import time

import torch

from gbsearch.diffusion import UNet3D, UNetConfig
from gbsearch.diffusion.sampler import cpu_has_bf16

VARIANTS = {"fp32": (False, False), "fp32 channels-last": (False, True),
            "bf16": (True, False), "bf16 channels-last": (True, True)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=4)
    ap.add_argument("--nfe", type=int, default=60)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cfg = UNetConfig(base_channels=32, channel_mult=(1, 2), num_res_blocks=3, periodic=(True, True, False))
    model = UNet3D(cfg).eval()
    torch.nn.init.normal_(model.conv_out.conv.weight, std=0.05)
    print(f"# torch {torch.__version__}, {a.threads} threads, native bf16: {cpu_has_bf16()}, "
          f"GB model U-Net (32 ch, 2 levels x 3 blocks), 28x28x64 voxels")
    for b in a.batch:
        x0 = torch.randn(b, 1, 28, 28, 64)
        t = torch.full((b,), 500)
        base = None
        for name, (bf16, cl) in VARIANTS.items():
            fmt = torch.channels_last_3d if cl else torch.contiguous_format
            model.to(memory_format=fmt)
            x = x0.contiguous(memory_format=fmt)
            amp = torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)
            with torch.inference_mode(), amp:
                for _ in range(2):
                    model(x, t)
                t0 = time.perf_counter()
                for _ in range(a.repeats):
                    model(x, t)
                dt = (time.perf_counter() - t0) / a.repeats
            base = base or dt
            print(f"batch {b}  {name:20s} {dt * 1e3:7.0f} ms/forward  {dt / b * a.nfe:6.1f} s/candidate  "
                  f"speed-up vs fp32 {base / dt:4.2f}x", flush=True)


if __name__ == "__main__":
    main()
