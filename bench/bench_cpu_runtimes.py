"""CPU inference runtimes against PyTorch for one forward pass of the shipped Σ5 GB U-Net,
side by side in one process (issue 16: "an inference runtime made for the CPU if it beats PyTorch").

    python bench/bench_cpu_runtimes.py [--threads 2] [--batch 1 2] [--rounds 3] [--repeats 3]

Variants (every one at --threads threads):
  torch bf16 cl    bf16 autocast + channels_last_3d, what `sample()` does on a CPU with native
                   bf16 (after keep_freed_cpu_memory(), as sample() calls it) -- the baseline
  torch fp32       fp32, standard layout
  ov default       OpenVINO, ov.convert_model(model, example_input=(x, t)), compiled on "CPU" with
                   the default precision (bf16 on AMX / AVX512-BF16 CPUs; printed)
  ov bf16 / ov f32 the same with INFERENCE_PRECISION_HINT bf16 / f32
  ort fp32         ONNX Runtime, torch.onnx.export (TorchScript exporter, opset 17),
                   CPUExecutionProvider, intra_op_num_threads = --threads

Every graph is compiled for a static batch. Timings: min over --repeats forwards after a
warm-up, the variants interleaved over --rounds rounds (the machine is shared and noisy); the
table shows every round's min and the overall min, and the speed-up of the overall min against
torch bf16 cl; each variant starts after --pause s idle (ONNX Runtime's spinning workers, off
here, and OpenMP's otherwise slow the next variant). Each variant's output is checked against torch fp32 (max abs difference).

Export needs the tracing path of gbsearch.nn_padding.pad_per_axis (torch.cat of slices): the
in-place border copies of the eager path are not followed by the tracers (ONNX export dropped
them silently, OpenVINO refused the graph).
"""
from __future__ import annotations

import argparse
import copy
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from gbsearch.diffusion.sampler import cpu_has_bf16, keep_freed_cpu_memory
from gbsearch.gbmodel.model import GBGenerator, bundled_model
from gbsearch.geometry.csl import as_boundary


def torch_variant(model, bf16: bool, channels_last: bool):
    fmt = torch.channels_last_3d if channels_last else torch.contiguous_format
    model = copy.deepcopy(model).to(memory_format=fmt)

    def run(x, t):
        amp = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()
        with torch.inference_mode(), amp:
            return model(x.contiguous(memory_format=fmt), t).float().numpy()
    return run


def ov_variants(model, x, t, threads, batches):
    import openvino as ov
    t0 = time.perf_counter()
    om = ov.convert_model(model, example_input=(x, t))
    print(f"# openvino {ov.__version__}: convert_model {time.perf_counter() - t0:.1f} s")
    core = ov.Core()
    out = {}
    for name, hint in (("ov default", None), ("ov bf16", "bf16"), ("ov f32", "f32")):
        for b in batches:
            om.reshape({om.inputs[0]: [b, *x.shape[1:]], om.inputs[1]: [b]})
            cfg = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1}
            if hint:
                cfg["INFERENCE_PRECISION_HINT"] = hint
            c = core.compile_model(om, "CPU", cfg)
            if hint is None and b == batches[0]:
                print(f"#   default INFERENCE_PRECISION_HINT: {c.get_property('INFERENCE_PRECISION_HINT')}")
            req = c.create_infer_request()
            out[name, b] = (lambda r: lambda x, t: r.infer([x.numpy(), t.numpy()])[0].copy())(req)
    return out


def ort_variant(model, x, t, threads, path: Path):
    import onnxruntime as ort
    t0 = time.perf_counter()
    torch.onnx.export(model, (x, t), str(path), dynamo=False, opset_version=17,
                      input_names=["x", "t"], output_names=["out"],
                      dynamic_axes={"x": {0: "b"}, "t": {0: "b"}, "out": {0: "b"}})
    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = threads, 1
    # No busy-waiting after a run: spinning workers would steal the cores of the next variant.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    s = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    print(f"# onnxruntime {ort.__version__}: export + session {time.perf_counter() - t0:.1f} s")
    return lambda x, t: s.run(None, {"x": x.numpy(), "t": t.numpy()})[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--pause", type=float, default=1.0, help="seconds idle before each variant")
    ap.add_argument("--skip", nargs="*", default=[], help="variant-name prefixes to leave out (ov, ort)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    keep_freed_cpu_memory()
    gen = GBGenerator.load(bundled_model(as_boundary(36.87)), "cpu")
    model = gen.model.eval()
    print(f"# torch {torch.__version__}, {a.threads} threads, native bf16: {cpu_has_bf16()}, "
          f"shipped Σ5 U-Net, x [B, 1, 28, 28, 64], t = 500")

    g = torch.Generator().manual_seed(0)
    inputs = {b: (torch.randn(b, 1, 28, 28, 64, generator=g), torch.full((b,), 500)) for b in a.batch}
    x1, t1 = inputs[a.batch[0]]
    runs = {}
    for b in a.batch:
        runs["torch bf16 cl", b] = torch_variant(model, True, True)
        runs["torch fp32", b] = torch_variant(model, False, False)
    if "ov" not in a.skip:
        runs.update(ov_variants(model, x1, t1, a.threads, a.batch))
    if "ort" not in a.skip:
        with tempfile.TemporaryDirectory() as d:
            f = ort_variant(model, x1, t1, a.threads, Path(d) / "unet.onnx")
        for b in a.batch:
            runs["ort fp32", b] = f
    names = list(dict.fromkeys(n for n, _ in runs))

    diff, times = {}, {k: [] for k in runs}
    for (name, b), f in runs.items():
        x, t = inputs[b]
        ref = runs["torch fp32", b](x, t)
        out = f(x, t)
        diff[name, b] = (float(np.abs(out - ref).max()),
                         float(np.linalg.norm(out - ref) / np.linalg.norm(ref)), float(np.abs(ref).max()))
    for r in range(a.rounds):
        for b in a.batch:
            x, t = inputs[b]
            for name in names:
                f = runs[name, b]
                time.sleep(a.pause)   # let the previous variant's worker threads stop spinning
                for _ in range(a.warmup if r == 0 else 1):
                    f(x, t)
                best = float("inf")
                for _ in range(a.repeats):
                    t0 = time.perf_counter()
                    f(x, t)
                    best = min(best, time.perf_counter() - t0)
                times[name, b].append(1e3 * best)
        print(f"# round {r + 1} done")

    print(f"\n| variant | batch | " + " | ".join(f"round {r + 1} ms" for r in range(a.rounds))
          + " | min ms | ms/sample | speed-up vs torch bf16 cl | vs torch fp32: max abs diff, rel. L2 |")
    print("|" + "---|" * (a.rounds + 6))
    for b in a.batch:
        base = min(times["torch bf16 cl", b])
        for name in names:
            ms = times[name, b]
            d, rel, scale = diff[name, b]
            print(f"| {name} | {b} | " + " | ".join(f"{v:.0f}" for v in ms)
                  + f" | {min(ms):.0f} | {min(ms) / b:.0f} | {base / min(ms):.2f}x | {d:.2e} (|out| max {scale:.1f}), {rel:.1e} |")


if __name__ == "__main__":
    main()
