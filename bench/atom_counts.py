"""Atom counts of generated candidates against the training data's (issue 17).

    python bench/atom_counts.py -m 28.07 --reference runs/lib/sigma17 --models A.pt B.pt \
        [--candidates 8] [--seed 0] [--nfe 20] [--solver unipc] [--clip-low=-1e9] \
        [--device cuda --batch-size 16] [--out docs/atom_counts.json]

For each model, the free-region atom count of unrelaxed candidates (the campaign's sampler and
NFE; by default one CPU thread, batch 1), in bulk planes above or below the perfect crystal's,
next to the same figure for the reference search's structures of the campaign's replication: a
model whose candidates leave the range of its training data misses most of the [n] it should
propose.
Run it on training boundaries to choose between models; a held-out boundary is only reported.
"""
from __future__ import annotations

import argparse
import json

import numpy as np


def plane_deviation(atoms) -> float:
    """Free-region atoms above (+) or below (−) the perfect crystal's, in bulk planes."""
    from gbsearch.geometry.properties import n_free
    return (n_free(atoms) - atoms.info["n_free_bulk"]) / atoms.info["n_plane"]


def model_comparison_parser(doc: str, candidates: int) -> argparse.ArgumentParser:
    """The arguments the GB-model diagnostics share (this script's and bench/free_mass.py's):
    one boundary, its reference search, the models compared, and the candidates sampled."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--misorientation", "-m", type=float, required=True)
    ap.add_argument("--reference", required=True, help="reference search folder of that boundary")
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--candidates", type=int, default=candidates)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nfe", type=int, default=None, help="default: the campaign's")
    return ap


def main() -> None:
    ap = model_comparison_parser(__doc__, candidates=8)
    ap.add_argument("--solver", default=None, help="a name of gbsearch.solvers.SOLVERS (default: the model's own)")
    ap.add_argument("--clip-low", type=float, default=None,
                    help="lower bound of the sampler's density clamp instead of the campaign's 0 "
                         "(e.g. -1e9: none), to see what the clamp does to the count")
    ap.add_argument("--device", default="cpu", help="cpu (one thread) or cuda")
    ap.add_argument("--batch-size", type=int, default=1,
                    help="candidates sampled together (the same candidates up to floating-point "
                         "differences; the GPU computes in bf16: compare models on one device)")
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    import torch

    from gbsearch.driver.config import CampaignConfig
    from gbsearch.gbmodel.model import GBGenerator
    from gbsearch.store.database import load_reference_structures
    torch.set_num_threads(1)
    cfg = CampaignConfig.build(misorientation=a.misorientation)
    nfe = a.nfe or cfg.nfe
    rows = {}
    for path in a.models:
        gen = GBGenerator.load(path, device=a.device, boundary=a.misorientation)
        if a.clip_low is not None:
            gen.clip = (a.clip_low, gen.clip[1])
        cands = gen.generate(a.candidates, seed=a.seed, steps=nfe, batch_size=a.batch_size, progress=True,
                             solver=a.solver)
        dev = [plane_deviation(c) for c in cands]
        rows[path] = {"deviation_planes": [round(v, 3) for v in dev], "mean": float(np.mean(dev)),
                      "outside_reference_range": None, "trained_on": gen.trained_on}
    rep = " ".join(str(v) for v in gen.template.replicate)
    ref = [plane_deviation(s) for s in load_reference_structures(a.reference) if s.info["replicate"] == rep]
    lo, hi = min(ref), max(ref)
    print(f"{cfg.boundary.label}, replication {rep}: reference structures {len(ref)}, deviation (planes) "
          f"{lo:.2f} to {hi:.2f}, median {np.median(ref):.2f}")
    for path, r in rows.items():
        r["outside_reference_range"] = int(sum(v < lo - 1e-9 or v > hi + 1e-9 for v in r["deviation_planes"]))
        seen = "trained on it" if cfg.boundary.sigma in r["trained_on"] else "never trained on it"
        print(f"  {path} ({seen}): {r['deviation_planes']} mean {r['mean']:+.2f}; "
              f"{r['outside_reference_range']} of {a.candidates} outside the reference range")
    if a.out:
        with open(a.out, "w") as fh:
            json.dump({"boundary": cfg.boundary.label, "replicate": rep, "nfe": nfe, "seed": a.seed,
                       "solver": a.solver, "clip_low": a.clip_low,
                       "device": a.device, "batch_size": a.batch_size,
                       "reference_range": [lo, hi], "reference_structures": len(ref), "models": rows}, fh, indent=2)


if __name__ == "__main__":
    main()
