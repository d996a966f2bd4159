"""Few-step samplers judged by relaxed candidates (issue 16): which solver and how many steps.

    python bench/bench_solvers.py [--model PATH] [--candidates 16] [--seed 100] [--workers 2]
                                  [--configs dpm3-singlestep:20 unipc:8 ...] [--out runs/solvers]
                                  [--student PATH --configs dpm3-singlestep:20 student:1 student:2 ...]
                                  [--anneal-steps 5000] [--blind-to 0.1 0.5]

``student:K`` samples the distilled student ``--student`` (a few-step model of ``--model``,
gbsearch distill) in K first-order steps; the same candidate indices, so the same shifts,
heights and starting noise as the teacher's rows.

For each solver:steps the same candidates (indices 0…N−1 of one seed: the same upper-grain
shifts, heights and starting noise) are in-painted, checked before relaxation at the boundary
between the fixed grains and the generated core (free atoms closer than 2.2 Å to a fixed atom:
W's nearest-neighbour distance is 2.74 Å, so such pairs are in-painting seams), then relaxed
with CG alone (the cheap, unforgiving test: no anneal repairs a bad core) and compared:
generated free atoms, seams, γ (median, best) and the fraction of candidates within 0.05 J/m²
of the bundled reference's lower envelope at their [n]. Generation core-seconds per candidate
are measured in this run, configuration by configuration.

Use the full Σ5 model (the default) to choose, with ``--blind-to 0.1 0.5``: the held-out window
model's benchmark (bench/discovery.py) is what the choice is then checked on, so neither that
model nor any candidate at the window's [n] may inform it.
"""
from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

SEAM_A = 2.2


def _relax_cg(atoms, anneal_steps: int = 0):
    from gbsearch.driver.config import CampaignConfig
    from gbsearch.relaxation.relax import relax
    try:
        out = relax(atoms, anneal=CampaignConfig(anneal_steps=anneal_steps).anneal_for(int(atoms.info["candidate"])))
        return float(out.info["gamma_J_m2"]), float(out.info["n_frac"])
    except Exception as exc:  # noqa: BLE001 - a failed relaxation is a data point
        return None, str(exc)[:100]


def seams(atoms) -> int:
    """Free atoms closer than SEAM_A to a fixed atom (minimum image in x, y)."""
    from ase.neighborlist import neighbor_list

    from gbsearch.geometry.bicrystal import FIXED_REGIONS
    fixed = np.isin(atoms.arrays["region"], FIXED_REGIONS)
    i, j = neighbor_list("ij", atoms, SEAM_A)
    return int(len(np.unique(i[~fixed[i] & fixed[j]])))


def envelope_gap(gammas, fracs, ref) -> np.ndarray:
    """γ minus the reference lower envelope at the nearest reference [n] (periodic)."""
    env = ref.groupby(ref.n_frac.round(4)).gamma_J_m2.min()
    n_env, g_env = env.index.to_numpy(), env.to_numpy()
    out = []
    for g, f in zip(gammas, fracs):
        d = np.abs((n_env - f + 0.5) % 1.0 - 0.5)
        out.append(g - g_env[np.argmin(d)])
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model file (default: the bundled full Σ5 model)")
    ap.add_argument("--candidates", type=int, default=16)
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--configs", nargs="+",
                    default=["dpm3-singlestep:60", "dpm3-singlestep:20", "dpm3-singlestep:8",
                             "unipc:5", "unipc:8", "unipc:10", "dpm2m:8"])
    ap.add_argument("--student", default=None, help="a distilled student of --model, for student:K configs")
    ap.add_argument("--anneal-steps", type=int, default=0, help="anneal (campaign's 1500 K) before CG; 0: CG only")
    ap.add_argument("--blind-to", type=float, nargs=2, metavar=("LO", "HI"), default=None,
                    help="leave relaxed candidates with [n] in [LO, HI) out of the γ summaries (median, best, near "
                         "envelope): a held-out model's window, so that a choice made here does not look at it")
    ap.add_argument("--out", type=Path, default=Path("runs/solvers"))
    a = ap.parse_args()

    import pandas as pd
    import torch

    from gbsearch.gbmodel.model import GBGenerator, bundled_model
    from gbsearch.geometry.bicrystal import FIXED_REGIONS
    from gbsearch.geometry.csl import as_boundary
    from gbsearch.store.references import load_reference_dataset

    path = a.model or bundled_model(as_boundary(36.87))
    gen = GBGenerator.load(path)
    ref = pd.DataFrame([{"n_frac": s.info["n_frac"], "gamma_J_m2": s.info["gamma_J_m2"]}
                        for s in load_reference_dataset(gen.misorientation)])
    threads = torch.get_num_threads()
    student = GBGenerator.load(a.student) if a.student else None
    for g in filter(None, (gen, student)):
        g.generate(a.batch, seed=a.seed, steps=2, batch_size=a.batch)        # warm-up (oneDNN primitives)
    a.out.mkdir(parents=True, exist_ok=True)
    rows = []
    with ProcessPoolExecutor(a.workers) as pool:
        for spec in a.configs:
            solver, steps = spec.split(":")
            model = student if solver == "student" else gen
            if model is None:
                raise SystemExit(f"{spec}: pass --student PATH")
            t0 = time.perf_counter()
            cands = model.generate(a.candidates, seed=a.seed, steps=int(steps), batch_size=a.batch,
                                   solver=None if solver == "student" else solver)
            gen_s = (time.perf_counter() - t0) * (threads if gen.device.type == "cpu" else 1) / a.candidates
            free = [int((~np.isin(c.arrays["region"], FIXED_REGIONS)).sum()) for c in cands]
            seam = [seams(c) for c in cands]
            res = list(pool.map(_relax_cg, cands, [a.anneal_steps] * len(cands)))
            ok = [(g, f) for g, f in res if g is not None]
            n_all = [round(f, 4) for _, f in ok]
            if a.blind_to is not None:
                lo, hi = a.blind_to
                ok = [(g, f) for g, f in ok if not lo - 1e-6 <= f < hi - 1e-6]
            g = np.array([v for v, _ in ok])
            gap = envelope_gap(g, [f for _, f in ok], ref)
            row = {"solver": solver, "nfe": int(steps), "gen_core_s": round(gen_s, 2),
                   "free_atoms_mean": float(np.mean(free)), "seam_atoms_mean": float(np.mean(seam)),
                   "relaxed": len(n_all), "gamma_median": float(np.median(g)), "gamma_best": float(g.min()),
                   "near_envelope": float(np.mean(gap <= 0.05)), "gamma": g.round(4).tolist(),
                   "n_frac_all": n_all, "summarised": len(ok)}
            rows.append(row)
            print(f"{solver:16s} {steps:>3s} NFE: gen {row['gen_core_s']:6.2f} core-s/cand, free atoms "
                  f"{row['free_atoms_mean']:.1f}, seam atoms {row['seam_atoms_mean']:.2f}, CG γ median "
                  f"{row['gamma_median']:.4f} best {row['gamma_best']:.4f}, within 0.05 of envelope "
                  f"{row['near_envelope']:.2f} ({len(n_all)}/{a.candidates} relaxed, {len(ok)} summarised)", flush=True)
    meta = {"model": str(path), "student": a.student, "anneal_steps": a.anneal_steps, "blind_to": a.blind_to, "candidates": a.candidates, "seed": a.seed, "device": str(gen.device),
            "threads": threads, "batch": a.batch, "rows": rows}
    (a.out / "solvers.json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {a.out / 'solvers.json'}")


if __name__ == "__main__":
    main()
