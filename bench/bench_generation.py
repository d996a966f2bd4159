"""Candidate generation against relaxation (issue 16): the old path and the new one side by side.

    python bench/bench_generation.py --device cpu  [--candidates 8] [--rounds 2] [--relax 4] [--student PATH]
    python bench/bench_generation.py --device cuda [--batches 64 256] [--rounds 1] [--student PATH]

Each path runs `GBGenerator.generate` end to end (slab templates, in-painting, decoding,
Atoms) with the bundled Σ5 model, in its own subprocess (glibc's allocator setting is per
process and cannot be undone), old and new alternating round by round so that the machine's
noise falls on both:

  old  the code before issue 16: every axis padded by hand before each convolution, DPM-Solver-3
       single-step at the campaign's former 20 NFE (and 60, SPEC's), bf16 autocast; channels-last
       on the GPU; CPU batches of 2; glibc returning freed activations to the kernel; slab sites
       enumerated afresh for every candidate, cuDNN's heuristic algorithms, atoms merged and
       assembled after each batch in the main thread. (Two later savings cannot be switched
       off and help both paths: Atoms built from atomic numbers, known voxels encoded on the GPU.)
  new  open axes zero-padded inside the convolutions, the campaign's solver and NFE, freed memory
       kept by the allocator (CPU); bf16 weights, standard layout, torch.compile, cuDNN's
       benchmarked algorithms and atoms merged in threads while the next batch samples (GPU);
       the voxel decoder in bf16 where the hardware has it (the old path decodes in fp32).
  student  (with --student) the new path on a distilled few-step student of the same model
       (gbsearch distill) at its own number of steps (--student-nfe), first-order steps.

CPU: generation core-seconds per candidate (wall × threads) divided by anneal + CG core-seconds
per candidate (the campaign's anneal and CG on the new path's candidates, one relaxation per core,
measured in the same run). GPU: candidates per second at the campaign's NFE and at 60.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

OLD_NFE = 20


def _legacy_padding(model) -> None:
    """The pre-issue-16 PaddedConv3d: pad every axis by hand (zeros too), convolve unpadded."""
    import torch.nn.functional as F

    from gbsearch.diffusion.unet import PaddedConv3d
    from gbsearch.nn_padding import pad_per_axis

    for m in model.modules():
        if isinstance(m, PaddedConv3d):
            def forward(x, m=m):
                c = m.conv
                return F.conv3d(pad_per_axis(x, m.pad, m.periodic), c.weight, c.bias, c.stride)
            m.forward = forward


def run_path(a) -> dict:
    """One path's timing (runs in a subprocess)."""
    import torch

    from gbsearch.diffusion import sampler
    from gbsearch.driver.config import CampaignConfig
    from gbsearch.gbmodel.model import GBGenerator, bundled_model
    from gbsearch.geometry.csl import as_boundary

    cfg = CampaignConfig.build()
    path = a.model or bundled_model(as_boundary(cfg.misorientation))
    cuda = a.device == "cuda"
    overlap = None
    decoder_precision = "auto"
    if a.path == "old":
        from gbsearch.geometry import bicrystal
        sampler.keep_freed_cpu_memory = lambda: False
        bicrystal._plane_sites = bicrystal._plane_sites.__wrapped__
        gen = GBGenerator.load(path, a.device, precision="autocast", boundary=cfg.misorientation)
        torch.backends.cudnn.benchmark = False
        _legacy_padding(gen.model)
        solver, fmt, overlap = "dpm3-singlestep", (torch.channels_last_3d if cuda else None), False
        decoder_precision = "fp32"
    else:
        gen = GBGenerator.load(path, a.device, precision="bf16" if cuda else "autocast", compile=cuda,
                               runtime=a.runtime, boundary=cfg.misorientation)
        solver, fmt = (None if a.path == "student" else a.solver), None
    if fmt is not None:                       # the old GPU layout (sample() now keeps the standard one)
        import functools
        sampler_sample = sampler.sample
        import gbsearch.diffusion as gd
        gd.sample = functools.partial(sampler_sample, memory_format=fmt)
    from gbsearch.voxel import decoder as voxel_decoder
    decode_s = [0.0]
    real_points = voxel_decoder.decoder_points

    def timed_points(*args, **kw):            # the voxel -> atoms decoder network's share of the time
        t = time.perf_counter()
        out = real_points(*args, **{**kw, "precision": decoder_precision})
        decode_s[0] += time.perf_counter() - t
        return out
    voxel_decoder.decoder_points = timed_points
    batch = a.batch
    threads = torch.get_num_threads()
    run = dict(steps=a.nfe, batch_size=batch, solver=solver, overlap=overlap)
    gen.generate(batch, seed=0, **run)       # warm-up / compile
    if cuda:
        torch.cuda.synchronize()
    decode_s[0] = 0.0
    t0 = time.perf_counter()
    cands = gen.generate(a.candidates, seed=1, **run)
    if cuda:
        torch.cuda.synchronize()
    wall = time.perf_counter() - t0
    if a.save:
        from ase.io import write
        write(a.save, cands, format="extxyz")
    sampling_only = _sampling_only(gen, batch, a.nfe, solver) if cuda else None
    return {"path": a.path, "device": a.device, "solver": cands[0].info["solver"], "model": str(path),
            "runtime": a.runtime if a.path != "old" else "torch", "nfe": a.nfe, "batch": batch,
            "candidates": a.candidates, "wall_s": wall, "threads": threads,
            "core_s_per_candidate": wall * (threads if not cuda else 1) / a.candidates,
            "decode_share": decode_s[0] / wall,
            "candidates_per_s": a.candidates / wall,
            "sampling_only_candidates_per_s": sampling_only}


def _sampling_only(gen, batch: int, nfe: int, solver: str | None) -> float:
    """Candidates per second of the in-painting network and solver alone (no decoding or atoms;
    slabs and known voxels included): the ceiling the rest of a candidate's work is measured
    against."""
    import torch
    indices = list(range(batch))
    gen.sample_voxels(indices, 0, steps=nfe, solver=solver)
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    gen.sample_voxels(indices, 0, steps=nfe, solver=solver)
    torch.cuda.synchronize()
    return batch / (time.perf_counter() - t0)


def _relax_one(atoms):
    from gbsearch.driver.config import CampaignConfig
    from gbsearch.relaxation.relax import relax
    cfg = CampaignConfig.build()
    t0 = time.process_time()
    relax(atoms, cfg.relax_settings(), anneal=cfg.anneal_for(int(atoms.info["candidate"])))
    return time.process_time() - t0


def _sub(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--candidates", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--relax", type=int, default=4, help="CPU: candidates annealed and relaxed for the ratio")
    ap.add_argument("--batches", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--gpu-batches", type=int, default=4, help="GPU: batches timed per path after the warm-up one")
    ap.add_argument("--out", default=None, help="write the rows here (JSON)")
    ap.add_argument("--solver", default=None, help="the new path's sampler (default: the campaign's)")
    ap.add_argument("--new-nfe", type=int, default=None, help="the new path's NFE (default: the campaign's)")
    ap.add_argument("--runtime", default="torch", help="the new path's CPU runtime: torch or openvino")
    ap.add_argument("--student", default=None, help="a distilled student of the bundled Σ5 model: a third path")
    ap.add_argument("--student-nfe", type=int, default=None, help="the student's steps (default: its own)")
    # internal: one path in this process
    ap.add_argument("--path", choices=["old", "new", "student"])
    ap.add_argument("--model", default=None)
    ap.add_argument("--nfe", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--save", default=None)
    a = ap.parse_args()
    if a.path:
        print(json.dumps(run_path(a)))
        return

    from gbsearch.driver.config import CampaignConfig
    from gbsearch.gbmodel.model import bundled_model, model_sampling
    from gbsearch.geometry.csl import as_boundary
    cfg = CampaignConfig.build()
    new_nfe, new_solver = model_sampling(bundled_model(as_boundary(cfg.misorientation)), a.new_nfe, a.solver)
    paths = [("old", OLD_NFE), ("new", new_nfe)] if a.device == "cpu" else [
        ("old", OLD_NFE), ("old", 60), ("new", new_nfe), ("new", 60)]
    if a.student:        # first: a time-limited GPU run still gets its row
        paths.insert(0, ("student", model_sampling(a.student, a.student_nfe)[0]))
    rows = []
    if a.device == "cpu":
        plan = [(p, nfe, "2" if p == "old" else str(cfg.batch_for("cpu"))) for p, nfe in paths]
    else:
        plan = [(p, nfe, str(b)) for b in a.batches for p, nfe in paths]
    for r in range(a.rounds):
        for path, nfe, batch in plan:
            # GPU: --gpu-batches timed batches after the warm-up one (overlap needs more than one)
            n = a.candidates if a.device == "cpu" else a.gpu_batches * int(batch)
            extra = ["--save", "/tmp/bench_generation_new.extxyz"] if (a.device == "cpu" and path == "new" and r == 0) else []
            model = ["--model", a.student] if path == "student" else []
            row = _sub(["--path", path, "--device", a.device, "--nfe", str(nfe), "--batch", batch,
                        "--candidates", str(n), "--solver", new_solver, "--runtime", a.runtime, *model, *extra])
            row["round"] = r
            rows.append(row)
            print(f"round {r} {path:3s} {row['solver']:16s} {nfe:3d} NFE batch {batch:>3s}: "
                  f"{row['core_s_per_candidate']:.2f} core-s/candidate, {row['candidates_per_s']:.1f} candidates/s, "
                  f"decoder {100 * row['decode_share']:.0f} % of it"
                  + (f"; sampling alone {row['sampling_only_candidates_per_s']:.1f} candidates/s"
                     if row.get("sampling_only_candidates_per_s") else ""),
                  flush=True)
    summary = {"rows": rows}
    if a.device == "cpu":
        from concurrent.futures import ProcessPoolExecutor

        from ase.io import read
        cands = read("/tmp/bench_generation_new.extxyz", index=f":{a.relax}")
        with ProcessPoolExecutor(2) as pool:
            relax_s = list(pool.map(_relax_one, cands))
        per_relax = sum(relax_s) / len(relax_s)
        for p in [p for p, _ in paths]:
            gen_s = min(r["core_s_per_candidate"] for r in rows if r["path"] == p)
            summary[p] = {"gen_core_s": gen_s, "relax_core_s": per_relax, "ratio": gen_s / per_relax}
            print(f"{p}: generation {gen_s:.2f} core-s per candidate (best of {a.rounds} rounds) / anneal + CG "
                  f"{per_relax:.2f} core-s ({len(relax_s)} relaxed) = {gen_s / per_relax:.3f}")
        for p in [p for p, _ in paths if p != "old"]:
            print(f"{p} path vs old: generation {summary['old']['gen_core_s'] / summary[p]['gen_core_s']:.1f}x cheaper")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(summary, fh, indent=2)


if __name__ == "__main__":
    main()
