"""LAMMPS relaxation, γ_GB and [n] on tiny real boxes."""
import numpy as np
import pytest
from ase.io import read, write

from gbsearch.geometry.bicrystal import FIXED_LOWER, FIXED_UPPER, FREE_LOWER, FREE_UPPER
from gbsearch.errors import InputError, RelaxationError
from gbsearch.geometry.properties import atom_fraction
from gbsearch.relaxation.engine import LammpsEngine
from gbsearch.relaxation.relax import relax


def test_perfect_crystal_has_zero_gb_energy(perfect_slab):
    out = relax(perfect_slab)
    assert abs(out.info["gamma_J_m2"]) < 1e-3
    assert out.info["n_frac"] == 0.0


def _free_plane_indices(atoms, code, which):
    """Indices of atoms of one free plane (``which``-th lowest in that region)."""
    idx = np.flatnonzero(atoms.arrays["region"] == code)
    z = np.round(atoms.positions[idx, 2], 4)
    return idx[z == np.unique(z)[which]]


def test_removing_a_whole_plane_leaves_n_unchanged(sigma5_slab):
    atoms = sigma5_slab.copy()
    del atoms[_free_plane_indices(atoms, FREE_UPPER, -1)[:2]]
    before = atom_fraction(atoms)
    assert before == pytest.approx(3 / 5)
    del atoms[_free_plane_indices(atoms, FREE_LOWER, 2)]
    assert atom_fraction(atoms) == pytest.approx(before)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_removing_k_atoms_changes_n_by_k_over_nplane(sigma5_slab, k):
    atoms = sigma5_slab.copy()
    del atoms[_free_plane_indices(atoms, FREE_LOWER, -1)[:k]]
    assert atom_fraction(atoms) == pytest.approx((-k / 5) % 1.0)


def test_sigma5_gamma_and_reproducibility_across_api_cli_and_reuse(sigma5_slab, tmp_path):
    from typer.testing import CliRunner

    from gbsearch.cli import app
    path = tmp_path / "slab.extxyz"
    write(path, sigma5_slab, format="extxyz")
    slab = read(path)
    first = relax(slab)
    second = relax(slab)                           # same process, reused LAMMPS instance
    assert 0.5 < first.info["gamma_J_m2"] < 4.0
    res = CliRunner().invoke(app, ["relax", str(path), "-o", str(tmp_path / "relaxed.extxyz")])
    assert res.exit_code == 0, res.output
    cli = read(tmp_path / "relaxed.extxyz")
    assert abs(first.info["energy_eV"] - second.info["energy_eV"]) < 1e-8
    assert abs(first.info["energy_eV"] - cli.info["energy_eV"]) < 1e-8
    assert f"gamma_GB = {first.info['gamma_J_m2']:.6f}" in res.output


def test_relaxed_structure_keeps_fixed_grains(sigma5_slab):
    out = relax(sigma5_slab)
    region = sigma5_slab.arrays["region"]
    lower = region == FIXED_LOWER
    upper = region == FIXED_UPPER
    assert np.allclose(out.positions[lower], sigma5_slab.positions[lower], atol=1e-10)
    dz = out.positions[upper] - sigma5_slab.positions[upper]
    assert np.allclose(dz[:, :2], 0, atol=1e-10) and np.ptp(dz[:, 2]) < 1e-8   # rigid z shift only
    assert out.info["upper_dz_A"] == pytest.approx(dz[0, 2])


# --- bad input -------------------------------------------------------------------------------

def test_missing_and_unparseable_files(tmp_path):
    from gbsearch.relaxation.checks import read_structure
    with pytest.raises(InputError, match="not found"):
        read_structure(tmp_path / "nope.extxyz")
    bad = tmp_path / "bad.extxyz"
    bad.write_text("this is not\na structure\n")
    with pytest.raises(InputError, match="cannot parse"):
        read_structure(bad)
    with pytest.raises(InputError, match="not a file"):
        read_structure(tmp_path)


def test_other_elements_are_refused(sigma5_slab):
    atoms = sigma5_slab.copy()
    atoms[5].symbol = "Mo"
    with pytest.raises(InputError, match="only W is supported.*Mo"):
        relax(atoms)


def test_atoms_outside_the_cell_along_open_z(sigma5_slab):
    atoms = sigma5_slab.copy()
    atoms.positions[3, 2] = atoms.cell[2, 2] + 1.0
    with pytest.raises(InputError, match="1 atom\\(s\\) outside the cell along the non-periodic axis z"):
        relax(atoms)


def test_atoms_outside_periodic_axes_are_wrapped(sigma5_slab):
    atoms = sigma5_slab.copy()
    atoms.positions[:, 0] += 3 * atoms.cell[0, 0]
    assert relax(atoms).info["energy_eV"] == pytest.approx(relax(sigma5_slab).info["energy_eV"], abs=1e-8)


def test_overlapping_atoms_are_merged_or_rejected(sigma5_slab):
    atoms = sigma5_slab.copy()
    free = np.flatnonzero(atoms.arrays["region"] == FREE_LOWER)
    extra = atoms[[free[0], free[7]]]
    extra.positions += [0.3, 0.0, 0.0]
    atoms += extra
    out = relax(atoms)
    assert out.info["merged_atoms"] == 2 and len(out) == len(sigma5_slab)
    with pytest.raises(InputError, match="2 overlapping atom pair"):
        relax(atoms, overlaps="reject")


def test_lammps_error_message_surfaces_and_engine_survives(tmp_path, sigma5_slab):
    broken = tmp_path / "broken.eam.alloy"
    broken.write_text("not\na\npotential\n1 W\n")
    with LammpsEngine(broken) as engine:
        with pytest.raises(RelaxationError, match="LAMMPS error: .*ERROR"):
            engine.relax(sigma5_slab)
    from gbsearch.relaxation.engine import shared_engine
    engine = shared_engine()
    with pytest.raises(RelaxationError, match="LAMMPS error"):
        engine._cmd("this_is_not_a_lammps_command")
    assert engine.relax(sigma5_slab).energy < 0


def test_per_call_settings_do_not_leak_into_later_relaxations(sigma5_slab):
    from gbsearch.relaxation.engine import RelaxSettings
    short = relax(sigma5_slab, RelaxSettings(maxiter=3))
    full = relax(sigma5_slab)
    assert short.info["iterations"] <= 3 < full.info["iterations"]
    assert full.info["fmax_eV_A"] < 1e-4
