"""General CSL builder (issue #19): symmetric tilt and twist cells, Σ, N_plane, γ and [n]."""
import math

import numpy as np
import pytest
from ase.neighborlist import neighbor_list

from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_REGIONS, FREE_LOWER, FREE_UPPER, twist_bicrystal
from gbsearch.geometry.csl_general import csl_bicrystal, find_gb
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.geometry.properties import atom_fraction

A0 = TUNGSTEN.a0

# (kwargs, Σ, misorientation°, cell edges in a0, N_plane of the 1x1 cell, planes per period)
TABLE = [
    (dict(plane="2,1,0", axis="0,0,1"), 5, 36.87, (1.0, math.sqrt(5)), 1, 10),
    (dict(plane="3,1,0", axis="0,0,1"), 5, 36.87, (1.0, math.sqrt(10)), 2, 10),
    (dict(plane="5,5,2", axis="1,-1,0"), 27, 31.59, (math.sqrt(2), math.sqrt(27) / 2), 1, 54),
    (dict(plane="1,1,2", axis="1,-1,0"), 3, 70.53, (math.sqrt(2), math.sqrt(3) / 2), 1, 6),
    (dict(plane="1,1,1", axis="1,-1,0"), 3, 70.53, (math.sqrt(2), math.sqrt(6)), 2, 3),
    (dict(plane="1,1,1", twist=True, angle=60.0), 3, 60.0, (math.sqrt(2), math.sqrt(6)), 2, 3),
    (dict(plane="1,1,0", twist=True, angle=70.53), 3, 70.53, (math.sqrt(3) / 2, math.sqrt(6)), 3, 2),
    (dict(plane="0,0,1", twist=True, angle=36.87), 5, 36.87, (math.sqrt(5), math.sqrt(5)), 5, 2),
]


def _bulk_coordination_ok(atoms, a0, lattice="bcc", clearance=None):
    """Atoms away from the free surfaces and the GB have the perfect first and second shells."""
    shells = {"bcc": [(math.sqrt(3) / 2, 8), (1.0, 6)], "fcc": [(math.sqrt(0.5), 12), (1.0, 6)]}[lattice]
    cut = 1.05 * a0
    i, d = neighbor_list("id", atoms, cut)
    z = atoms.positions[:, 2]
    far = (z > z.min() + cut) & (z < z.max() - cut)
    if clearance is not None:
        far &= np.abs(z - atoms.info["gb_z"]) > clearance
    assert far.sum() > 0
    for idx in np.flatnonzero(far):
        dd = np.sort(d[i == idx])
        for r, count in shells:
            assert np.sum(np.abs(dd - r * a0) < 1e-4) == count, (idx, dd)


@pytest.mark.parametrize("kwargs,sigma,mis,edges,n_plane,planes", TABLE)
def test_cell_sigma_nplane_and_periodicity(kwargs, sigma, mis, edges, n_plane, planes):
    g = find_gb(**kwargs)
    assert g.sigma == sigma
    assert g.misorientation_deg == pytest.approx(mis, abs=0.01)
    assert g.edges(A0) == pytest.approx([e * A0 for e in edges], abs=1e-6)
    assert g.n_plane_1x1 == n_plane and g.planes_per_period == planes
    atoms = csl_bicrystal(g, replicate=(1, 2))      # default: >= 4 a0 fixed and 4 a0 free per grain
    assert atoms.info["n_plane"] == 2 * n_plane
    n_planes = 4 * int(math.ceil(4 * A0 / atoms.info["plane_spacing"] - 1e-9))
    assert len(atoms) == n_planes * 2 * n_plane
    z = np.round(atoms.positions[:, 2], 5)
    _, counts = np.unique(z, return_counts=True)
    assert len(counts) == n_planes and np.all(counts == 2 * n_plane)   # each atomic plane: N_plane
    assert np.sum(~np.isin(atoms.arrays["region"], FIXED_REGIONS)) == atoms.info["n_free_bulk"]
    # Periodic in x, y: the bulk of each grain has perfect BCC shells across the cell faces.
    _bulk_coordination_ok(atoms, A0, clearance=1.2 * A0)
    perfect = csl_bicrystal(find_gb(perfect=True, **kwargs), replicate=(1, 2))
    _bulk_coordination_ok(perfect, A0)


def test_sigma5_twist_equals_the_twist_builder():
    from gbsearch.relaxation.relax import relax
    new = csl_bicrystal(find_gb("0,0,1", twist=True, angle=36.87))
    old = twist_bicrystal(36.87)
    assert len(new) == len(old) == 160
    assert new.info["n_plane"] == old.info["n_plane"] == 5
    assert new.cell.lengths() == pytest.approx(old.cell.lengths(), abs=1e-9)
    for key in ("sigma", "plane_spacing", "n_free_bulk", "gb_z"):
        assert new.info[key] == pytest.approx(old.info[key])
    for code in (1, 2, 3, 4):
        assert np.sum(new.arrays["region"] == code) == np.sum(old.arrays["region"] == code)
    # Same boundary, same registry: the same relaxed energy.
    assert relax(new).info["gamma_J_m2"] == pytest.approx(relax(old).info["gamma_J_m2"], abs=1e-6)


@pytest.mark.parametrize("kwargs", [dict(plane="3,1,0", axis="0,0,1"), dict(plane="1,1,2", axis="1,-1,0"),
                                    dict(plane="5,5,2", axis="1,-1,0"), dict(plane="1,1,1", twist=True, angle=60.0),
                                    dict(plane="1,1,0", twist=True, angle=70.53),
                                    dict(plane="0,0,1", twist=True, angle=36.87)])
def test_perfect_crystal_boundary_on_each_axis_has_zero_gamma(kwargs):
    from gbsearch.relaxation.relax import relax
    out = relax(csl_bicrystal(find_gb(perfect=True, **kwargs)))
    assert abs(out.info["gamma_J_m2"]) < 1e-3
    assert out.info["n_frac"] == 0.0


def _plane(atoms, code, which):
    idx = np.flatnonzero(atoms.arrays["region"] == code)
    z = np.round(atoms.positions[idx, 2], 4)
    return idx[z == np.unique(z)[which]]


def test_tilt_slab_relaxes_and_whole_plane_removal_keeps_n():
    from gbsearch.relaxation.relax import relax
    atoms = csl_bicrystal(find_gb("3,1,0", axis="0,0,1"), replicate=(2, 1))     # elongated 2x1, N_plane 4
    assert atoms.info["n_plane"] == 4
    del atoms[_plane(atoms, FREE_UPPER, 0)[:1]]
    before = atom_fraction(atoms)
    assert before == pytest.approx(3 / 4)
    del atoms[_plane(atoms, FREE_LOWER, 3)]
    assert len(_plane(atoms, FREE_LOWER, 3)) == 4          # the next plane now sits there
    assert atom_fraction(atoms) == pytest.approx(before)
    out = relax(atoms)
    assert out.info["n_frac"] == pytest.approx(before)
    assert 0.3 < out.info["gamma_J_m2"] < 10.0     # an internal stacking defect plus the GB
    assert out.info["fmax_eV_A"] < 1e-3
    fixed = np.isin(out.arrays["region"], FIXED_REGIONS)
    lower = out.arrays["region"] == 1
    assert np.abs(out.positions[lower] - atoms.positions[lower]).max() < 1e-9   # fixed grain A held
    assert fixed.sum() == np.isin(atoms.arrays["region"], FIXED_REGIONS).sum()


def test_sigma3_112_twin_is_the_low_energy_tilt():
    """Σ3(112)[1-10] (the BCC twin) relaxes far below Σ5(310)[001], as it must (≈0.6 vs ≈2 J/m²)."""
    from gbsearch.relaxation.relax import relax
    twin = relax(csl_bicrystal(find_gb("1,1,2", axis="1,-1,0"))).info["gamma_J_m2"]
    s5 = relax(csl_bicrystal(find_gb("3,1,0", axis="0,0,1"))).info["gamma_J_m2"]
    assert 0.4 < twin < 0.8 and 1.5 < s5 < 3.5


def test_fcc_lattice_cells():
    g = find_gb("3,1,0", axis="0,0,1", lattice="fcc", a0=3.615)
    assert g.sigma == 5 and g.n_plane_1x1 == 1 and g.planes_per_period == 10
    atoms = csl_bicrystal(find_gb("3,1,0", axis="0,0,1", lattice="fcc", a0=3.615, perfect=True),
                          a0=3.615, symbol="Cu")
    _bulk_coordination_ok(atoms, 3.615, lattice="fcc")


@pytest.mark.parametrize("kwargs,message", [
    (dict(plane="2,1,0", axis="1,0,0"), "⟂"),                              # axis not in the plane
    (dict(plane="1,1,1", axis="1,1,1"), "twist"),                           # axis ∥ normal without --twist
    (dict(plane="0,0,1", twist=True, angle=10.0), "not a CSL twist angle"),
    (dict(plane="5,5,2", axis="1,-1,0", max_edge=6.0), "edges ≤ 6 Å"),      # Σ27 needs 8.2 Å
    (dict(plane="1,1,0", twist=True, axis="0,0,1", angle=30.0), "not ∥"),
    (dict(plane="1,x,0", axis="0,0,1"), "three integers"),
])
def test_clear_errors(kwargs, message):
    with pytest.raises(InputError, match=message):
        find_gb(**kwargs)
