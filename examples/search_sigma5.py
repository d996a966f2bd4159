"""End to end through the Python API: search the Σ5(100) twist GB of W with the bundled
model, compare with the bundled grand-canonical reference, write the best structure.

    python examples/search_sigma5.py [--candidates 12] [--out runs/example]
"""
import argparse

from ase.io import write

import gbsearch
from gbsearch.store.references import load_reference_dataset

ap = argparse.ArgumentParser()
ap.add_argument("--candidates", type=int, default=12)
ap.add_argument("--out", default="runs/example")
args = ap.parse_args()

found = gbsearch.search(misorientation=36.87, candidates=args.candidates, out=args.out)
reference = load_reference_dataset(36.87)

print(f"{len(found)} relaxed diffusion candidates; best five:")
for atoms in found[:5]:
    n = atoms.info["n_frac"]
    same_n = [a.info["gamma_J_m2"] for a in reference if abs(a.info["n_frac"] - n) < 1e-6]
    ref_best = min(same_n) if same_n else float("nan")
    print(f"  [n] = {n:.2f}  γ = {atoms.info['gamma_J_m2']:.4f} J/m²  (reference best at this [n]: {ref_best:.4f})")
ground = min(reference, key=lambda a: a.info["gamma_J_m2"])
print(f"reference ground state: [n] = {ground.info['n_frac']:.2f}, γ = {ground.info['gamma_J_m2']:.4f} J/m²")
write(f"{args.out}/best_example.extxyz", found[0], format="extxyz")
print(f"wrote {args.out}/best_example.extxyz (open it in OVITO)")
