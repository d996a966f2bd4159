"""Quality of a GB model's unrelaxed candidates (and optionally their relaxed energies).

    python bench/bench_gb_model.py --model gbsearch/data/models/sigma5_full.pt -n 256 \
        [--reference runs/ref] [--relax 64 --workers 16] [--nfe 60] [--out DIR]

Prints: candidates/s, the fraction with no pair closer than 0.5 x the nearest-neighbour
distance (1.37 Å), whether every candidate's fixed grains equal the slab's, the [n] histogram
of candidates against the training data's, and, with --relax, γ statistics after LAMMPS CG.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from ase.neighborlist import neighbor_list

from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.gbmodel.model import GBGenerator, load_reference_structures
from gbsearch.geometry.properties import atom_fraction
from gbsearch.relaxation.checks import OVERLAP_DISTANCE


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("-n", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--nfe", type=int, default=60, help="solver steps (network evaluations) per candidate")
    ap.add_argument("--reference", default=None, help="reference campaign for the [n] histogram of the training data")
    ap.add_argument("--relax", type=int, default=0, help="relax the first K candidates with LAMMPS")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", default=None, help="folder for candidates.extxyz and metrics.json")
    args = ap.parse_args()

    gen = GBGenerator.load(args.model)
    gen.generate(1, seed=999, batch_size=1, steps=args.nfe)   # warm-up (kernels, decoder load)
    t0 = time.perf_counter()
    cands = gen.generate(args.n, seed=0, batch_size=args.batch_size, steps=args.nfe, progress=True)
    rate = args.n / (time.perf_counter() - t0)
    clean = [len(neighbor_list("i", c, OVERLAP_DISTANCE)) == 0 for c in cands]
    fixed_ok = []
    for c in cands:
        slab = gen.template.slab_for(c)
        a = c.positions[np.isin(c.arrays["region"], FIXED_REGIONS)]
        b = slab.positions[np.isin(slab.arrays["region"], FIXED_REGIONS)]
        fixed_ok.append(a.shape == b.shape and np.array_equal(a, b))
    n_plane = cands[0].info["n_plane"]
    bins = np.arange(n_plane + 1) / n_plane - 0.5 / n_plane
    hist_c = np.histogram([atom_fraction(c) for c in cands], bins)[0]
    metrics = {"model": args.model, "device": str(gen.device), "candidates": args.n, "nfe": args.nfe,
               "candidates_per_s": rate, "no_close_pair_fraction": float(np.mean(clean)),
               "fixed_grains_identical_fraction": float(np.mean(fixed_ok)),
               "n_atoms_mean": float(np.mean([len(c) for c in cands])),
               "n_hist_candidates": hist_c.tolist()}
    if args.reference:
        window = (gen.meta.get("extra") or {}).get("provenance", {}).get("n_window")
        ref = load_reference_structures(args.reference, tuple(window) if window else None)
        metrics["n_hist_training"] = np.histogram([a.info["n_frac"] for a in ref], bins)[0].tolist()
        metrics["n_atoms_training_mean"] = float(np.mean([len(a) for a in ref]))
    print(f"{args.n} candidates on {gen.device}: {rate:.2f} candidates/s ({args.nfe} NFE + decode)")
    print(f"no pair closer than {OVERLAP_DISTANCE:.2f} Å: {100 * metrics['no_close_pair_fraction']:.1f} %; "
          f"fixed grains identical to the slab: {100 * metrics['fixed_grains_identical_fraction']:.1f} %")
    print("[n] bins      :", " ".join(f"{(b + 0.5 / n_plane):.2f}" for b in bins[:-1]))
    print("candidates    :", " ".join(f"{v:4d}" for v in hist_c))
    if "n_hist_training" in metrics:
        print("training data :", " ".join(f"{v:4d}" for v in metrics["n_hist_training"]))
    if args.relax:
        from gbsearch.driver.campaign import relax_candidate
        from gbsearch.driver.cluster import get_client
        client = get_client(workers=args.workers)
        futs = client.map(relax_candidate, cands[: args.relax], range(args.relax), pure=False)
        res = client.gather(futs)
        client.close()
        ok = [r["atoms"].info for r in res if r["status"] == "ok"]
        g = np.array([i["gamma_J_m2"] for i in ok])
        metrics.update(relaxed=len(ok), relax_failed=args.relax - len(ok),
                       gamma_min=float(g.min()), gamma_median=float(np.median(g)),
                       relaxed_n_gamma=[[i["n_frac"], i["gamma_J_m2"]] for i in ok])
        print(f"relaxed {len(ok)}/{args.relax}: γ min {g.min():.4f}, median {np.median(g):.4f} J/m²")
        metrics.update(against_reference(metrics["relaxed_n_gamma"], gen.template.misorientation))
        cands = [r["atoms"] for r in res] + cands[args.relax:]
    if args.out:
        from ase.io import write
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        write(out / "candidates.extxyz", cands, format="extxyz")
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2))


def against_reference(n_gamma, misorientation: float) -> dict:
    """Relaxed candidates (in generation order) against the bundled reference search: best γ at
    the ground state's and the metastable phase's [n], the first candidate within 5 mJ/m² of
    the ground state, and the fraction within 0.05 J/m² of the reference lower envelope."""
    import pandas as pd
    from discovery import ENV_TOL, GS_TOL, best_near, first_hit, near_envelope, reference_frame
    from gbsearch.store.references import provenance
    from gbsearch.analysis.report import lower_envelope

    ref = reference_frame(misorientation)
    env = lower_envelope(ref)
    gs = ref.loc[ref.gamma_J_m2.idxmin()]
    meta = provenance(misorientation)["metastable"]
    df = pd.DataFrame(n_gamma, columns=["n_frac", "gamma_J_m2"])

    res = {"reference_ground_state": [float(gs.n_frac), float(gs.gamma_J_m2)],
           "reference_metastable": [meta["n_frac"], meta["gamma_J_m2"]],
           "best_near_ground_state": best_near(df, gs.n_frac), "best_near_metastable": best_near(df, meta["n_frac"]),
           "first_ground_state_hit": first_hit(df.gamma_J_m2, gs.gamma_J_m2),
           "fraction_near_envelope": float(near_envelope(df, env).mean()),
           "reference_fraction_near_envelope": float(near_envelope(ref, env).mean())}
    fmt = lambda v: "none at that [n]" if v is None else f"{v:.4f}"  # noqa: E731
    print(f"best γ at the ground state's [n] = {gs.n_frac:.2f}: {fmt(res['best_near_ground_state'])} "
          f"(reference {gs.gamma_J_m2:.4f}); at the metastable [n] = {meta['n_frac']:.2f}: "
          f"{fmt(res['best_near_metastable'])} (reference {meta['gamma_J_m2']:.4f}) J/m²")
    print(f"first candidate within {GS_TOL * 1e3:.0f} mJ/m² of the ground state: {res['first_ground_state_hit']}; "
          f"within {ENV_TOL} J/m² of the reference envelope: {res['fraction_near_envelope']:.3f} of candidates "
          f"(reference trials: {res['reference_fraction_near_envelope']:.3f})")
    return res


if __name__ == "__main__":
    main()
