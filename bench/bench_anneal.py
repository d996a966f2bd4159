"""Effect of the campaign's anneal on the same candidates: each candidate of a campaign folder
is relaxed twice in this process, with CG alone and with the campaign's default anneal (the
velocity seed a campaign of seed 0 would give it) followed by CG.

    python bench/bench_anneal.py runs/run-36.87 [--limit 8]

Prints γ and wall seconds of both per candidate, the best of each, how many candidates the
anneal lowered, and the time ratio (annealed / CG only).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from ase.io import read

from gbsearch.driver.campaign import CANDIDATES
from gbsearch.driver.config import CampaignConfig
from gbsearch.relaxation.relax import relax


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("campaign", type=Path, help="campaign folder holding candidates.extxyz")
    ap.add_argument("--limit", type=int, default=None, help="first K candidates only")
    a = ap.parse_args()
    cands = read(a.campaign / CANDIDATES, index=":")[:a.limit]
    default = CampaignConfig()        # the campaign's default anneal, seed 0
    rows = []
    for i, atoms in enumerate(cands):
        t0 = time.perf_counter()
        cg = relax(atoms.copy()).info["gamma_J_m2"]
        t1 = time.perf_counter()
        an = relax(atoms.copy(), anneal=default.anneal_for(i))
        t2 = time.perf_counter()
        rows.append((cg, an.info["gamma_J_m2"], t1 - t0, t2 - t1))
        print(f"candidate {i}: CG only {cg:.4f} J/m² ({t1 - t0:.1f} s); anneal + CG {an.info['gamma_J_m2']:.4f} J/m² "
              f"at [n] = {an.info['n_frac']:.2f} ({t2 - t1:.1f} s)", flush=True)
    cg, an, t_cg, t_an = zip(*rows)
    print(f"{len(rows)} candidates: best CG only {min(cg):.4f}, best anneal + CG {min(an):.4f} J/m²; the anneal "
          f"lowered {sum(b < c for c, b in zip(cg, an))} of {len(rows)}; time ratio anneal+CG / CG {sum(t_an) / sum(t_cg):.1f}")


if __name__ == "__main__":
    main()
