import pytest

from gbsearch.geometry.bicrystal import twist_bicrystal


@pytest.fixture(scope="session")
def sigma5_slab():
    """Σ5(100) twist slab, 1x1 CSL cell, 160 atoms."""
    return twist_bicrystal(36.87)


@pytest.fixture(scope="session")
def perfect_slab():
    """0° 'boundary': a perfect BCC slab with the same layout."""
    return twist_bicrystal(0.0)


@pytest.fixture(scope="module")
def client():
    """A local Dask cluster of two single-threaded worker processes (real LAMMPS in each)."""
    from gbsearch.driver.cluster import close_client, get_client
    c = get_client(workers=2)
    yield c
    close_client(c)
