"""Twist bicrystal builder and CSL angles."""
import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from gbsearch.geometry.bicrystal import FIXED_LOWER, FIXED_UPPER, FREE_LOWER, FREE_UPPER, twist_bicrystal
from gbsearch.geometry.csl import csl_twist_angles, find_twist_csl
from gbsearch.errors import InputError


@pytest.mark.parametrize("angle,sigma", [(36.87, 5), (22.62, 13), (28.07, 17), (16.26, 25), (43.60, 29), (53.13, 5)])
def test_csl_angles_are_recognised(angle, sigma):
    assert find_twist_csl(angle).sigma == sigma


def test_non_csl_angle_names_nearest_csl_angles():
    with pytest.raises(InputError) as err:
        find_twist_csl(30.0)
    msg = str(err.value)
    assert "30° is not a coincidence-site-lattice" in msg and "Σ17 28.07°" in msg


@pytest.mark.parametrize("angle", [36.87, 22.62, 28.07, 16.26, 43.60])
@pytest.mark.parametrize("rep", [(1, 1), (2, 1)])
def test_planes_hold_sigma_atoms_and_grains_are_bulk(angle, rep):
    atoms = twist_bicrystal(angle, replicate=rep, n_fixed=3, n_free=3)
    sigma = atoms.info["sigma"]
    z = np.round(atoms.positions[:, 2], 6)
    counts = np.unique(z, return_counts=True)[1]
    assert len(counts) == 12 and np.all(counts == sigma * rep[0] * rep[1]) and atoms.info["n_plane"] == counts[0]
    lx, ly = atoms.cell.lengths()[:2]
    assert lx * ly == pytest.approx(sigma * rep[0] * rep[1] * atoms.info["a0"] ** 2)
    # Inside one grain every neighbour sits at the BCC nearest-neighbour distance.
    lower = atoms[np.isin(atoms.arrays["region"], [FIXED_LOWER, FREE_LOWER])]
    d = neighbor_list("d", lower, 2.9)
    assert np.allclose(d, np.sqrt(3) / 2 * atoms.info["a0"])


def test_zero_degree_slab_is_a_perfect_crystal(perfect_slab):
    i = neighbor_list("i", perfect_slab, 2.9)
    nn = np.bincount(i, minlength=len(perfect_slab))
    z = perfect_slab.positions[:, 2]
    interior = (z > z.min() + 2) & (z < z.max() - 2)
    assert np.all(nn[interior] == 8)


def test_regions_and_metadata(sigma5_slab):
    region = sigma5_slab.arrays["region"]
    for code in (FIXED_LOWER, FREE_LOWER, FREE_UPPER, FIXED_UPPER):
        assert np.sum(region == code) == 40
    assert sigma5_slab.info["n_free_bulk"] == 80 and sigma5_slab.info["sigma"] == 5


def test_shift_moves_only_the_upper_grain():
    a = twist_bicrystal(36.87)
    b = twist_bicrystal(36.87, shift=(0.7, 1.1))
    lower = np.isin(a.arrays["region"], [FIXED_LOWER, FREE_LOWER])
    assert np.allclose(a.positions[lower], b.positions[lower])
    d = b.positions[~lower, :2] - a.positions[~lower, :2]
    d = np.mod(d + 0.5 * a.cell.lengths()[:2], a.cell.lengths()[:2]) - 0.5 * a.cell.lengths()[:2]
    assert np.allclose(d, [0.7, 1.1])


def test_csl_table_is_sorted_and_bounded():
    table = csl_twist_angles(50)
    angles = [c.angle_deg for c in table]
    assert angles == sorted(angles) and 0 < angles[0] and angles[-1] <= 45


def test_cli_build_prints_summary(tmp_path):
    from typer.testing import CliRunner

    from gbsearch.cli import app
    out = tmp_path / "slab.extxyz"
    res = CliRunner().invoke(app, ["build", "--misorientation", "36.87", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Σ5" in res.output and "N_plane 5" in res.output and "atoms 160" in res.output
    assert out.exists()
