"""Resident memory over many consecutive relaxations in one process (one LAMMPS instance).

    python bench/bench_relax_memory.py [--count 500]
"""
from __future__ import annotations

import argparse

import numpy as np
import psutil

from gbsearch.geometry.bicrystal import FIXED_REGIONS, twist_bicrystal
from gbsearch.relaxation.relax import relax


def soak(count: int, seed: int = 0) -> tuple[float, float]:
    """Relax ``count`` perturbed small Σ5 slabs; return RSS (MB) after the first and the last."""
    rng = np.random.default_rng(seed)
    base = twist_bicrystal(36.87, n_fixed=6, n_free=3)
    free = ~np.isin(base.arrays["region"], FIXED_REGIONS)
    proc = psutil.Process()
    first = None
    for k in range(count):
        atoms = base.copy()
        atoms.positions[free] += rng.normal(0, 0.05, (free.sum(), 3))
        relax(atoms)
        if k == 9:          # after warm-up (imports, first allocations)
            first = proc.memory_info().rss / 2**20
    return first, proc.memory_info().rss / 2**20


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=500)
    n = ap.parse_args().count
    a, b = soak(n)
    print(f"{n} relaxations: RSS {a:.1f} MB after 10, {b:.1f} MB after {n}: growth {b - a:+.1f} MB")
