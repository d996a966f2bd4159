"""Regenerate the numbers and figures of gbsearch/crystal/README.md (issue 8).

    python bench/crystal_experiment.py --phases sc,bcc,fcc --n 64            # all, then figures
    python bench/crystal_experiment.py --phases bcc --no-figures             # one phase (parallel runs)
    python bench/crystal_experiment.py --figures-only                        # figures from saved runs
    python bench/crystal_experiment.py --phases fcc --skip-voxel             # particle rows only
    python bench/crystal_experiment.py --skip-voxel --device cuda --positions-only   # on a GPU machine,
    python bench/crystal_experiment.py --skip-particle --no-figures          # then here: voxel rows,
    python bench/crystal_experiment.py --metrics-only                        # metrics (OVITO PTM), figures

Rows already in <out-dir>/<phase>.npz that a run does not generate are kept.

Per phase it writes runs/crystal_bench/<phase>.npz (positions) and <phase>.json (summaries).
Uses the shipped weights in gbsearch/data/crystal unless --weights-dir is given.
"""
from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch

from gbsearch.crystal import experiment as E
from gbsearch.crystal.phases import phase_spec, perfect_crystal, augmented


# Keys of <phase>.npz: [d]start_<f> (displaced starts, shared by both samplers), [d]out_<f> (reverse SDE),
# [d]odeout_<f> (probability-flow ODE); "d" marks the d_NN unit, none the sigma_max unit.
def out_key(prefix: str, method: str, f: float) -> str:
    return f"{prefix}{'ode' if method == 'ode' else ''}out_{f}"


def parse_out_key(key: str):
    """(prefix, method, fraction) of an output key, None for other keys."""
    m = re.fullmatch(r"(d?)(ode)?out_(.+)", key)
    return (m[1], "ode" if m[2] else "sde", float(m[3])) if m else None


def generate_phase(ph: str, a) -> None:
    """Writes <out-dir>/<phase>.npz (positions of every row, Å) and the wall seconds of each;
    metrics come later (evaluate_phase) so that generation can run on a GPU machine without OVITO."""
    spec = phase_spec(ph)
    pos, secs = {}, {}
    d = Path(a.out_dir)
    if (d / f"{ph}.npz").exists():   # rows not generated now are kept from the earlier run
        z = np.load(d / f"{ph}.npz", allow_pickle=True)
        pos = {k: list(z[k]) for k in z.files}
        secs = json.loads((d / f"{ph}.json").read_text()).get("seconds", {})
    if not a.skip_voxel:
        t = time.time()
        pos["voxel"] = E.generate("voxel", ph, a.n, seed=a.seed, weights_dir=a.weights_dir)
        secs["voxel"] = round(time.time() - t, 1)
    for method in [m for m in a.methods.split(",") if m and not a.skip_particle]:
        t = time.time()
        key = f"particle_uniform_{method}"
        pos[key] = E.generate("particle", ph, a.n, seed=a.seed, weights_dir=a.weights_dir, start="uniform",
                              method=method, steps=a.particle_steps, device=a.device)
        secs[key] = round(time.time() - t, 1)
        print(ph, key, secs[key], "s", flush=True)
    from gbsearch.crystal.particle import displaced_starts, start_time
    sweeps = [("", "sigma_max", a.fractions, ["sde"]),
              ("d", "d_nn", a.dnn_fractions, [m for m in a.sweep_methods.split(",") if m])]
    for prefix, unit, fractions, methods in sweeps:
        for f in [float(x) for x in fractions.split(",") if x and not a.skip_particle]:
            n = a.n if f in (0.05, 0.1, 0.2) else a.sweep_n
            t0 = start_time(spec, f, unit)
            pos[f"{prefix}start_{f}"] = [p * spec.L for p in
                                         displaced_starts(spec, n, t0, seed=a.seed + 1).numpy().astype(np.float64)]
            for method in methods:
                key = out_key(prefix, method, f)
                t = time.time()
                pos[key] = E.generate("particle", ph, n, seed=a.seed, weights_dir=a.weights_dir, start=t0,
                                      method=method, steps=a.particle_steps, device=a.device)
                secs[key] = round(time.time() - t, 1)
                print(ph, unit, f, method, f"(sigma = {t0:.3f} sigma_max)", secs[key], "s", flush=True)
    d.mkdir(parents=True, exist_ok=True)
    np.savez(d / f"{ph}.npz", **{k: np.array(v, dtype=object) for k, v in pos.items()})
    (d / f"{ph}.json").write_text(json.dumps({"seconds": secs, "particle_steps": a.particle_steps}, indent=1))


def evaluate_phase(ph: str, a) -> dict:
    """Metrics of every row of <out-dir>/<phase>.npz; writes <phase>.json (keeps the seconds)."""
    from gbsearch.crystal.particle import SIGMA_MAX, start_time
    from gbsearch.crystal.phases import lattice_order
    spec = phase_spec(ph)
    d = Path(a.out_dir)
    z = np.load(d / f"{ph}.npz", allow_pickle=True)
    old = json.loads((d / f"{ph}.json").read_text())
    secs = old.get("seconds", {})
    out = {"seconds": secs, "particle_steps": old.get("particle_steps", a.particle_steps)}
    for key in z.files:
        if key.startswith(("start_", "dstart_")):
            continue
        if parse_out_key(key):
            prefix, method, f = parse_out_key(key)
            unit = "d_nn" if prefix == "d" else "sigma_max"
            name = (f"displaced_{int(round(f * 100))}" + ("_dnn" if prefix == "d" else "")
                    + ("_ode" if method == "ode" else ""))
            t0 = start_time(ph, f, unit)
            sigma_A = SIGMA_MAX * t0 * spec.L
            out[name] = {"unit": unit, "displacement": f, "method": method, "t_start": t0, "sigma_A": sigma_A,
                         "lattice_order": lattice_order(spec, sigma_A),
                         "start": E.evaluate(list(z[f"{prefix}start_{f}"]), ph)[1],
                         "output": E.evaluate(list(z[key]), ph)[1], "seconds": secs.get(key)}
            print(ph, name, out[name], flush=True)
        else:
            out[key] = E.evaluate(list(z[key]), ph)[1] | {"seconds": secs.get(key)}
            print(ph, key, out[key], flush=True)
    (d / f"{ph}.json").write_text(json.dumps(out, indent=1))
    return out


def tables(phases, a) -> str:
    """Markdown tables of the README from <out-dir>/<phase>.json."""
    def pct(x):
        return f"{100 * x:.1f} %"
    lines = ["| phase | model / start | samples | exact atom count | atoms identified as target (PTM) | "
             "samples with ≥ 95 % identified | atoms in collapsed pairs | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    sweep = ["| phase | displacement (std) | sampler | σ / σ_max | σ (Å) | lattice order left in the start | "
             "starts identified | outputs identified | output samples with ≥ 95 % | output atoms in collapsed pairs | "
             "samples |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for ph in phases:
        r = json.loads((Path(a.out_dir) / f"{ph}.json").read_text())
        for key, label in (("voxel", "voxel"), ("particle_uniform_sde", "particle, uniform start, SDE"),
                           ("particle_uniform_ode", "particle, uniform start, ODE")):
            if key in r:
                m = r[key]
                lines.append(f"| {ph.upper()} | {label} | {m['n_samples']} | {pct(m['count_exact_frac'])} | "
                             f"{pct(m['ptm_atom_frac'])} | {pct(m['samples_ptm_ge_95'])} | "
                             f"{pct(m.get('close_pair_atom_frac', float('nan')))} | {m.get('seconds')} |")
        rows = [v for k, v in r.items() if k.startswith("displaced_")]
        for v in sorted(rows, key=lambda v: (v["unit"] != "d_nn", v["displacement"], v.get("method", "sde") != "sde")):
            o = v["output"]
            unit = "× d_NN" if v["unit"] == "d_nn" else "× σ_max"
            sweep.append(f"| {ph.upper()} | {v['displacement']:g} {unit} | {v.get('method', 'sde').upper()} | "
                         f"{v['t_start']:.3f} | {v['sigma_A']:.2f} | "
                         f"{v['lattice_order']:.3f} | {pct(v['start']['ptm_atom_frac'])} | {pct(o['ptm_atom_frac'])} | "
                         f"{pct(o['samples_ptm_ge_95'])} | {pct(o.get('close_pair_atom_frac', float('nan')))} | "
                         f"{o['n_samples']} |")
    return "\n".join(lines) + "\n\n" + "\n".join(sweep)


def figures(phases, a) -> None:
    d = Path(a.out_dir)
    s4, s2 = {}, {}
    rng = np.random.default_rng(0)
    for ph in phases:
        z = np.load(d / f"{ph}.npz", allow_pickle=True)
        spec = phase_spec(ph)
        s4[ph] = {"reference": [augmented(spec, rng, 0.05) for _ in range(4)],
                  "voxel": list(z["voxel"]), "particle": list(z["particle_uniform_sde"])}
        # Fig. 2 in nearest-neighbour units when that sweep exists (cell-independent, see particle.start_time)
        prefix = "d" if any(k.startswith("dstart_") for k in z.files) else ""
        fr = sorted(float(k.split("start_")[1]) for k in z.files if k.startswith(f"{prefix}start_"))
        rows = {"starts": lambda f: f"{prefix}start_{f}", "reverse SDE": lambda f: out_key(prefix, "sde", f),
                "probability-flow ODE": lambda f: out_key(prefix, "ode", f)}
        s2[ph] = {f: {row: list(z[key(f)])[:16] for row, key in rows.items() if key(f) in z.files} for f in fr}
        unit2 = "d_nn" if prefix else "sigma_max"
    Path("docs").mkdir(exist_ok=True)
    E.fig4(s4, "docs/crystal_fig4.png")
    E.fig2(s2, "docs/crystal_fig2.png", unit=unit2)
    print("wrote docs/crystal_fig4.png docs/crystal_fig2.png")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--phases", default="sc,bcc,fcc")
    p.add_argument("--n", type=int, default=64)
    p.add_argument("--sweep-n", type=int, default=16)
    p.add_argument("--fractions", default="0,0.05,0.1,0.2,0.3,0.5,1.0",
                   help="displaced starts, as fractions of sigma_max")
    p.add_argument("--dnn-fractions", default="0.1,0.2,0.3,0.5,1.0",
                   help="displaced starts, std as fractions of the nearest-neighbour distance")
    p.add_argument("--methods", default="sde,ode", help="samplers from uniform starts (--n samples each)")
    p.add_argument("--sweep-methods", default="sde,ode", help="samplers for the d_NN displaced-start sweep")
    p.add_argument("--particle-steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--weights-dir", default=None)
    p.add_argument("--out-dir", default="runs/crystal_bench")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument("--figures-only", action="store_true")
    p.add_argument("--tables-only", action="store_true", help="print the README tables from <out-dir>/<phase>.json")
    p.add_argument("--skip-voxel", action="store_true", help="particle rows only (rows already in <out-dir> are kept)")
    p.add_argument("--skip-particle", action="store_true", help="voxel rows only (rows already in <out-dir> are kept)")
    p.add_argument("--device", default=None, help="where the particle network samples, e.g. cuda")
    p.add_argument("--positions-only", action="store_true",
                   help="generate and save positions, no metrics (for a GPU machine without OVITO)")
    p.add_argument("--metrics-only", action="store_true",
                   help="metrics of the positions saved in <out-dir> by a --positions-only run")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    phases = a.phases.split(",")
    if a.tables_only:
        print(tables(phases, a))
        return
    if not a.figures_only:
        for ph in phases:
            if not a.metrics_only:
                generate_phase(ph, a)
            if not a.positions_only:
                evaluate_phase(ph, a)
    if a.positions_only:
        return
    if not a.figures_only:
        print(tables(phases, a))
    if not a.no_figures:
        figures(phases, a)


if __name__ == "__main__":
    main()
