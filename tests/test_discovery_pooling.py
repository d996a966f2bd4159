"""The pooled relaxations-to-ground-state figure of bench/discovery.py (issue 17)."""
import sys
from math import comb
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from discovery import pooled_relaxations  # noqa: E402


def test_pooled_median_is_the_half_point_of_the_first_hit():
    # one hit among n: the first hit is uniform over positions 1..n
    assert pooled_relaxations(100, 1) == 50
    assert pooled_relaxations(240, 2) == 71          # C(169,2)/C(240,2) = 0.495, C(170,2)/C(240,2) = 0.501
    assert pooled_relaxations(24, 0) is None
    assert pooled_relaxations(5, 5) == 1
    # against shuffles of the same pool
    n, h = 576, 8
    pool = np.zeros(n, bool)
    pool[:h] = True
    rng = np.random.default_rng(0)
    firsts = [np.flatnonzero(rng.permutation(pool))[0] + 1 for _ in range(20000)]
    k = pooled_relaxations(n, h)
    assert 2 * comb(n - k, h) <= comb(n, h) < 2 * comb(n - k + 1, h)
    assert abs(np.median(firsts) - k) <= 2
