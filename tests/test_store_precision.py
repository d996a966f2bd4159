"""Stored precision of the campaign database: float32 positions, energies and fingerprints."""
import numpy as np
from ase import Atoms
from ase.db import connect

from gbsearch.store.database import CampaignDB


def _relaxed(seed=0, n=40):
    rng = np.random.default_rng(seed)
    atoms = Atoms("W" * n, positions=rng.uniform(0, 30, (n, 3)), cell=[30, 30, 30], pbc=True)
    atoms.arrays["region"] = np.repeat([1, 2, 3, 4], n // 4)
    atoms.arrays["energy"] = -8.9 + rng.normal(0, 0.1, n)
    atoms.info.update(gamma_J_m2=2.3456789012345, n_frac=0.2, energy_eV=float(atoms.arrays["energy"].sum()))
    return atoms


def test_rows_are_stored_at_float32_and_still_deduplicate(tmp_path):
    db = CampaignDB(tmp_path / "c.db")
    atoms = _relaxed()
    known = db.known("reference")
    row_id, status = db.record("reference", 0, {"status": "ok", "atoms": atoms}, known)
    assert status == "ok"
    back = db.atoms(row_id)
    # Rounded, not truncated to something else: exactly the float32 values, within 3e-6 Å.
    assert np.array_equal(back.positions, atoms.positions.astype(np.float32).astype(float))
    assert np.abs(back.positions - atoms.positions).max() < 1e-5
    assert np.abs(back.arrays["energy"] - atoms.arrays["energy"]).max() < 1e-5
    assert db.db.get(id=row_id).gamma_J_m2 == atoms.info["gamma_J_m2"]   # key-value pairs untouched
    # The same structure again (full float64, as a new trial returns it) is a duplicate,
    # and a reloaded index finds it too.
    assert db.record("reference", 1, {"status": "ok", "atoms": atoms}, known)[1] == "duplicate"
    assert db.record("reference", 2, {"status": "ok", "atoms": atoms}, db.known("reference"))[1] == "duplicate"


def test_slim_rewrites_old_float64_rows(tmp_path):
    path = tmp_path / "old.db"
    atoms = _relaxed(1)
    old = atoms.copy()
    old.set_tags(old.arrays["region"])
    connect(path).write(old, key_value_pairs={"source": "reference", "trial": 0, "status": "ok",
                                              "gamma_J_m2": 2.5, "n_frac": 0.1},
                        data={"energy": atoms.arrays["energy"], "fingerprint": np.sort(atoms.arrays["energy"])})
    db = CampaignDB(path)
    assert db.slim() == 1
    row = db.db.get(id=1)
    assert row.positions.astype(np.float32).astype(float).tolist() == row.positions.tolist()
    assert row.data["fingerprint"].dtype == np.float32
    assert (row.gamma_J_m2, row.n_frac, row.trial) == (2.5, 0.1, 0)
