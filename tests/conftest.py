import pytest

from gbsearch.bicrystal import twist_bicrystal


@pytest.fixture(scope="session")
def sigma5_slab():
    """Σ5(100) twist slab, 1x1 CSL cell, 160 atoms."""
    return twist_bicrystal(36.87)


@pytest.fixture(scope="session")
def perfect_slab():
    """0° 'boundary': a perfect BCC slab with the same layout."""
    return twist_bicrystal(0.0)
