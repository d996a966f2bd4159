import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))


@pytest.mark.slow
def test_500_relaxations_do_not_grow_memory():
    from bench_relax_memory import soak
    first, last = soak(500)
    assert last - first < 50.0
