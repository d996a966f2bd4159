"""Regenerate the numbers and figures of gbsearch/crystal/README.md (issue 8).

    python bench/crystal_experiment.py --phases sc,bcc,fcc --n 64            # all, then figures
    python bench/crystal_experiment.py --phases bcc --no-figures             # one phase (parallel runs)
    python bench/crystal_experiment.py --figures-only                        # figures from saved runs
    python bench/crystal_experiment.py --phases fcc --reuse-voxel            # particle rows only

Per phase it writes runs/crystal_bench/<phase>.npz (positions) and <phase>.json (summaries).
Uses the shipped weights in gbsearch/data/crystal unless --weights-dir is given.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from gbsearch.crystal import experiment as E
from gbsearch.crystal.phases import phase_spec, perfect_crystal, augmented


def run_phase(ph: str, a) -> dict:
    spec = phase_spec(ph)
    out = {}
    pos = {}
    t = time.time()
    d = Path(a.out_dir)
    if a.reuse_voxel:   # keep the voxel rows of an earlier run in out_dir (particle-only re-run)
        pos["voxel"] = list(np.load(d / f"{ph}.npz", allow_pickle=True)["voxel"])
        out["voxel"] = json.loads((d / f"{ph}.json").read_text())["voxel"]
    else:
        pos["voxel"] = E.generate("voxel", ph, a.n, seed=a.seed, weights_dir=a.weights_dir)
        out["voxel"] = E.evaluate(pos["voxel"], ph)[1] | {"seconds": round(time.time() - t, 1)}
    print(ph, "voxel", out["voxel"], flush=True)
    for method in a.methods.split(","):
        t = time.time()
        key = f"particle_uniform_{method}"
        n = a.n if method == "sde" else a.sweep_n   # the ODE only as a cross-check
        pos[key] = E.generate("particle", ph, n, seed=a.seed, weights_dir=a.weights_dir, start="uniform",
                              method=method, steps=a.particle_steps)
        out[key] = E.evaluate(pos[key], ph)[1] | {"seconds": round(time.time() - t, 1), "steps": a.particle_steps}
        print(ph, key, out[key], flush=True)
    from gbsearch.crystal.particle import displaced_starts
    sweep = {}
    for f in [float(x) for x in a.fractions.split(",")]:
        n = a.n if f in (0.05, 0.1, 0.2) else a.sweep_n
        t = time.time()
        starts = [p * spec.L for p in displaced_starts(spec, n, f, seed=a.seed + 1).numpy().astype(np.float64)]
        outs = E.generate("particle", ph, n, seed=a.seed, weights_dir=a.weights_dir, start=f, method="sde",
                          steps=a.particle_steps)
        sweep[f] = (starts, outs)
        out[f"displaced_{int(round(f * 100))}"] = {
            "start": E.evaluate(starts, ph)[1], "output": E.evaluate(outs, ph)[1],
            "seconds": round(time.time() - t, 1)}
        print(ph, f, out[f"displaced_{int(round(f * 100))}"], flush=True)
    d.mkdir(parents=True, exist_ok=True)
    arrays = {f"{k}": np.array(v, dtype=object) for k, v in pos.items()}
    for f, (s, o) in sweep.items():
        arrays[f"start_{f}"] = np.array(s, dtype=object)
        arrays[f"out_{f}"] = np.array(o, dtype=object)
    np.savez(d / f"{ph}.npz", **arrays)
    (d / f"{ph}.json").write_text(json.dumps(out, indent=1))
    return out


def figures(phases, a) -> None:
    d = Path(a.out_dir)
    s4, s2 = {}, {}
    rng = np.random.default_rng(0)
    for ph in phases:
        z = np.load(d / f"{ph}.npz", allow_pickle=True)
        spec = phase_spec(ph)
        s4[ph] = {"reference": [augmented(spec, rng, 0.05) for _ in range(4)],
                  "voxel": list(z["voxel"]), "particle": list(z["particle_uniform_sde"])}
        fr = sorted(float(k[6:]) for k in z.files if k.startswith("start_"))
        s2[ph] = {f: (list(z[f"start_{f}"])[:16], list(z[f"out_{f}"])[:16]) for f in fr}
    Path("docs").mkdir(exist_ok=True)
    E.fig4(s4, "docs/crystal_fig4.png")
    E.fig2(s2, "docs/crystal_fig2.png")
    print("wrote docs/crystal_fig4.png docs/crystal_fig2.png")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--phases", default="sc,bcc,fcc")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--sweep-n", type=int, default=16)
    p.add_argument("--fractions", default="0,0.05,0.1,0.2,0.5,1.0")
    p.add_argument("--methods", default="sde,ode")
    p.add_argument("--particle-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--out-dir", default="runs/crystal_bench")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--reuse-voxel", action="store_true",
                   help="take the voxel rows and positions from <out-dir>/<phase>.{json,npz} of an earlier run")
    p.add_argument("--figures-only", action="store_true")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    phases = a.phases.split(",")
    if not a.figures_only:
        for ph in phases:
            run_phase(ph, a)
    if not a.no_figures:
        figures(phases, a)


if __name__ == "__main__":
    main()
