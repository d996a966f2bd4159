"""Reference-search throughput on the dataset's cell (Σ5 2x2, 640 atoms): relaxed structures
per hour per core, and the speed-up of 2 workers over 1, measured side by side in one run
(the same trials, alternating order would not help: each phase runs the same trial list).

    python bench/bench_reference.py [--trials 8] [--md-steps 2000 2000]

MD length is fixed (default 2,000 steps) so both phases do identical work per trial.
"""
from __future__ import annotations

import argparse
import tempfile
import time

from gbsearch.driver.trials import SearchSettings
from gbsearch.driver.cluster import get_client
from gbsearch.driver.reference import run_search


def timed(workers: int, settings: SearchSettings, trials: int) -> float:
    client = get_client(workers=workers)
    client.run(lambda: __import__("gbsearch.relaxation.relax").relax.bulk_reference())   # warm LAMMPS
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run_search(tmp, trials, settings, seed=7, client=client, progress=False)
        dt = time.perf_counter() - t0
    client.close()
    client.cluster.close()
    return dt


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--md-steps", type=int, nargs=2, default=(2000, 2000))
    args = ap.parse_args()
    settings = SearchSettings(md_steps=tuple(args.md_steps), md_probability=1.0)
    t1 = timed(1, settings, args.trials)
    t2 = timed(2, settings, args.trials)
    print(f"{args.trials} trials of the Σ5 2x2 dataset cell, MD {args.md_steps[0]}–{args.md_steps[1]} steps + CG:")
    print(f"1 worker : {t1:.1f} s -> {3600 * args.trials / t1:.0f} relaxed structures per hour per core")
    print(f"2 workers: {t2:.1f} s -> {3600 * args.trials / t2 / 2:.0f} per hour per core; speed-up {t1 / t2:.2f}x")


if __name__ == "__main__":
    main()
