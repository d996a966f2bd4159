"""GRIP's results format (issue #18): import-grip / export-grip on fixtures the tests write."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import matplotlib.image as plt_image
import pytest
from ase.io import read

from gbsearch.analysis.report import write_report
from gbsearch.driver.trials import TrialSpec
from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import twist_bicrystal
from gbsearch.relaxation.relax import relax
from gbsearch.store.database import DB_NAME, CampaignDB, row_to_atoms
from gbsearch.store.grip import export_campaign, import_folder, parse_name, read_dump

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def relaxed():
    """A real relaxed Σ5 twist slab (110 atoms, [n] = 0) and a second one with one atom of the
    upper GB plane removed ([n] = 0.8), both with LAMMPS per-atom energies."""
    slab = twist_bicrystal(36.87, n_fixed=7, n_free=4)
    first = relax(slab)
    upper = np.flatnonzero(slab.arrays["region"] == 3)
    lowest = upper[np.argmin(slab.positions[upper, 2])]
    second = relax(slab[[i for i in range(len(slab)) if i != lowest]])
    return first, second


def _grip_dump(path: Path, atoms, egb, zlo=-7.3e-3, order=None):
    """A dump as GRIP's lammps.in_2 leaves it (LAMMPS number formatting), written independently of
    gbsearch's exporter: shrink-wrapped z, id-sorted atoms, then 'Egb = ...'."""
    pos = atoms.positions - [0, 0, atoms.positions[:, 2].min() - zlo]
    lx, ly = atoms.cell[0, 0], atoms.cell[1, 1]
    out = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", f"{len(atoms)}", "ITEM: BOX BOUNDS pp pp ss",
           f"0.0000000000000000e+00 {lx:.16e}", f"0.0000000000000000e+00 {ly:.16e}",
           f"{zlo:.16e} {pos[:, 2].max():.16e}", "ITEM: ATOMS id type x y z c_eng"]
    ids = range(len(atoms)) if order is None else order
    out += [f"{i + 1} 1 {pos[i, 0]:g} {pos[i, 1]:g} {pos[i, 2]:g} {atoms.arrays['energy'][i]:.15g}" for i in ids]
    out.append(f"Egb = {float(egb):.15g}")   # as LAMMPS prints a variable
    path.write_text("\n".join(out) + "\n")


@pytest.fixture()
def grip_run(tmp_path, relaxed):
    """A GRIP run folder: best/ with two dumps and GRIP's summary CSV (3-decimal n and Egb)."""
    best = tmp_path / "grip_run" / "best"
    best.mkdir(parents=True)
    names = []
    for atoms, (dx, dy, rx, ry, t, steps) in zip(relaxed, [(0.59, 0.60, 1, 1, 1100, 3000), (5.56, 5.36, 1, 1, 1300, 0)]):
        g, n = atoms.info["gamma_J_m2"], atoms.info["n_frac"]
        name = f"lammps_{g:.3f}_{n:.3f}_{dx:.2f}_{dy:.2f}_{rx}_{ry}_{t}_{steps}"
        _grip_dump(best / name, atoms, g)
        names.append((n, round(g, 3), dx, dy, rx, ry, t, steps, name))
    pd.DataFrame(names, columns="n,Egb,dx,dy,rx,ry,T,steps,f".split(",")).sort_values("Egb").to_csv(
        best / "best_grip_data.csv", index=False)
    return tmp_path / "grip_run"


def _reference_campaign(folder: Path, relaxed) -> CampaignDB:
    db = CampaignDB(folder / DB_NAME)
    for i, atoms in enumerate(relaxed):
        spec = TrialSpec(index=i, seed=0, misorientation=36.87, replicate=(1, 1), n_fixed=7, n_free=4, gap=0.3,
                         shift=(0.3 + i, 1.25), n_delete=i, n_insert=0, perturbation=0.3,
                         md_temperature=1500.0 if i else 0.0, md_steps=20000 if i else 0).as_dict()
        db.record("reference", i, {"spec": spec, "status": "ok", "atoms": atoms})
    # a diffusion candidate as campaign.py records it: no shift in its spec (the slab's info has one)
    spec = {"candidate": 0, "n_generated": len(relaxed[0]), "md_temperature": 800.0, "md_steps": 5000}
    db.record("diffusion", 0, {"spec": spec, "status": "ok", "atoms": relaxed[0]})
    return db


def test_import_grip_folder_next_to_reference(tmp_path, relaxed, grip_run):
    db = _reference_campaign(tmp_path / "campaign", relaxed)
    added, skipped = import_folder(db, grip_run)            # the run folder: best/ is found
    assert (added, skipped) == (2, 0)
    assert import_folder(db, grip_run / "best") == (0, 2)   # again, via best/: nothing twice
    assert db.db.count(source="grip") == 2

    rows = sorted(db.rows(source="grip"), key=lambda r: r.p_file)
    by_n = {round(a.info["n_frac"], 6): a for a in relaxed}
    for row in rows:
        ref = by_n[round(row.n_frac, 6)]
        assert row.status == "ok" and row.natoms == len(ref)
        assert row.gamma_J_m2 == pytest.approx(ref.info["gamma_J_m2"], abs=1e-13)   # the Egb line, not the name
        assert row.p_gamma_from == "GRIP Egb line" and row.p_n_from == "GRIP best_grip_data.csv"
        atoms = row_to_atoms(row)
        assert "region" not in atoms.arrays                      # GRIP dumps carry no regions
        # The database keeps per-atom energies at float32 (store.database.stored_precision):
        # 5e-7 eV at -7 eV; the total (a key-value pair) is GRIP's own, to the last digit.
        np.testing.assert_allclose(atoms.arrays["energy"], ref.arrays["energy"], rtol=0, atol=1e-6)
        assert row.energy_eV == pytest.approx(ref.arrays["energy"].sum(), abs=1e-9)
        name = parse_name(row.p_file)
        assert (row.p_dx, row.p_dy, row.p_rx, row.p_ry, row.p_T, row.p_steps) == (
            name.dx, name.dy, name.rx, name.ry, name.temperature, name.steps)
    assert sorted(r.p_steps for r in rows) == [0, 3000]

    text = write_report(db, tmp_path / "campaign")
    table = pd.read_csv(tmp_path / "campaign" / "table.csv")
    assert list(table.columns[:6]) == ["id", "source", "n_atoms", "n_frac", "gamma_J_m2", "status"]
    assert sorted(table.source) == ["diffusion", "grip", "grip", "reference", "reference"]
    assert set(table[table.source == "grip"].n_atoms) == {109, 110}
    image = plt_image.imread(tmp_path / "campaign" / "gamma_n.png")[..., :3]
    r, g, b = image[..., 0], image[..., 1], image[..., 2]
    green = (g > r + 0.2) & (g > b + 0.2)          # GRIP's markers are the plot's only green
    assert green.sum() > 50
    assert "grip: 2 distinct ok, 0 duplicates, 0 failed" in text
    assert "grip" in text.split("lowest γ (J/m²) per [n]:")[1].splitlines()[1]


def test_same_name_other_content_is_another_structure(tmp_path, grip_run):
    db = CampaignDB(tmp_path / DB_NAME)
    assert import_folder(db, grip_run) == (2, 0)
    victim = sorted((grip_run / "best").glob("lammps_*"))[0]
    lines = victim.read_text().splitlines()
    lines[9] = " ".join(lines[9].split()[:5] + ["-8.0"])     # atom 1's energy: another run's dump
    victim.write_text("\n".join(lines) + "\n")
    assert import_folder(db, grip_run) == (1, 1)
    assert import_folder(db, grip_run) == (0, 2)
    assert sorted(r.p_file for r in db.rows(source="grip")).count(victim.name) == 2


def test_import_without_csv_takes_n_from_the_name(tmp_path, relaxed, grip_run):
    (grip_run / "best" / "best_grip_data.csv").unlink()
    db = CampaignDB(tmp_path / DB_NAME)
    assert import_folder(db, grip_run) == (2, 0)
    for row in db.rows(source="grip"):
        assert row.n_frac == parse_name(row.p_file).n and row.p_n_from == "GRIP name"


def test_ids_out_of_order_are_sorted(tmp_path, relaxed):
    atoms = relaxed[0]
    path = tmp_path / "lammps_3.346_0.000_0.00_0.00_1_1_1000_0"
    _grip_dump(path, atoms, atoms.info["gamma_J_m2"], order=list(range(len(atoms)))[::-1])
    dump = read_dump(path)
    np.testing.assert_allclose(dump.atoms.arrays["energy"], atoms.arrays["energy"], atol=1e-12)
    assert dump.box_lo[2] == -7.3e-3 and dump.atoms.positions[:, 2].min() == pytest.approx(0, abs=1e-5)


REF_TOKENS = {("0.30", "1.25", "1", "1", "0", "0"), ("1.30", "1.25", "1", "1", "1500", "20000")}
DIFF_TOKENS = {("0.00", "0.00", "1", "1", "800", "5000")}


@pytest.mark.parametrize("source,expected", [("reference", REF_TOKENS), ("diffusion", DIFF_TOKENS),
                                             ("all", REF_TOKENS | DIFF_TOKENS)])
def test_export_import_round_trip(tmp_path, relaxed, source, expected):
    db = _reference_campaign(tmp_path / "campaign", relaxed)
    best, n, notes = export_campaign(db, tmp_path / "to_grip", None if source == "all" else (source,))
    assert (best, n, notes) == (tmp_path / "to_grip" / "best", len(expected), [])
    names = sorted(p.name for p in best.glob("lammps_*"))
    # GRIP's readers split the name on "_": tokens 1..8 are Egb, n, dx, dy, rx, ry, T, steps
    tokens = [name.split("_") for name in names]
    assert all(len(t) == 9 for t in tokens)
    assert {(t[3], t[4], t[5], t[6], t[7], t[8]) for t in tokens} == expected
    csv = pd.read_csv(best / "best_grip_data.csv")
    assert list(csv.columns) == ["n", "Egb", "dx", "dy", "rx", "ry", "T", "steps", "f"]
    assert sorted(csv.f) == names and list(csv.Egb) == sorted(csv.Egb)
    for name in names:                                   # GRIP reads its dumps with ASE
        assert len(read(best / name, format="lammps-dump-text")) in (109, 110)
    for name in names:                                   # last line as GRIP reads it: tokens[2]
        last = (best / name).read_text().splitlines()[-1].split(" ")
        assert last[:2] == ["Egb", "="] and abs(float(last[2]) - float(name.split("_")[1])) < 5e-4

    back = CampaignDB(tmp_path / "back" / DB_NAME)
    assert import_folder(back, tmp_path / "to_grip") == (len(expected), 0)
    ours = [r for r in db.rows(status="ok") if source == "all" or r.source == source]
    for row in back.rows(source="grip"):
        orig = [r for r in ours if r.gamma_J_m2 == row.gamma_J_m2 and r.n_frac == row.n_frac]
        assert orig, (row.gamma_J_m2, row.n_frac)
        orig = orig[0]
        assert row.natoms == orig.natoms
        np.testing.assert_array_equal(row.data["energy"], orig.data["energy"])
        # The exported per-atom energies are the stored float32 ones, so their sum (the
        # imported total) is our total to float32 precision per atom.
        assert row.energy_eV == pytest.approx(orig.energy_eV, abs=1e-6 * row.natoms)


def test_export_of_imported_grip_rows_keeps_the_grip_name(tmp_path, grip_run):
    db = CampaignDB(tmp_path / "c" / DB_NAME)
    import_folder(db, grip_run)
    best, n, _ = export_campaign(db, tmp_path / "again" / "best", ("grip",))
    assert n == 2 and sorted(p.name for p in best.glob("lammps_*")) == sorted(
        p.name for p in (grip_run / "best").glob("lammps_*"))


def test_not_grip_output(tmp_path):
    (tmp_path / "POSCAR").write_text("not a dump\n")
    with pytest.raises(InputError, match=f"{tmp_path}: not GRIP output"):
        import_folder(CampaignDB(tmp_path / "c" / DB_NAME), tmp_path)


def test_bad_name_and_truncated_dump(tmp_path, relaxed, grip_run):
    db = CampaignDB(tmp_path / "c" / DB_NAME)
    best = grip_run / "best"
    bad = best / "lammps_2.297_0.200_0.59_1_1_1100"          # two fields short
    bad.write_text("ITEM: TIMESTEP\n0\n")
    with pytest.raises(InputError, match="lammps_2.297_0.200_0.59_1_1_1100: not a GRIP dump name") as err:
        import_folder(db, grip_run)
    assert "\n" not in str(err.value)
    bad.unlink()

    victim = sorted(best.glob("lammps_*"))[0]
    lines = victim.read_text().splitlines()
    victim.write_text("\n".join(lines[:60]) + "\n")          # cut mid-atoms: a killed run
    with pytest.raises(InputError, match=rf"{victim.name}: not a complete GRIP dump \(51 of 1\d\d atom lines\)") as err:
        import_folder(db, grip_run)
    assert "\n" not in str(err.value)
    assert db.db.count() == 0                                 # nothing written before the error

    victim.write_text("\n".join(lines[:9]))                   # header only
    with pytest.raises(InputError, match=victim.name):
        read_dump(victim)
    victim.write_text("\n".join(lines[:-1] + ["ITEM: TIMESTEP"]) + "\n")   # a second frame begun
    with pytest.raises(InputError, match=rf"{victim.name}: .*unexpected line"):
        read_dump(victim)


def test_cli_import_and_export(tmp_path, relaxed, grip_run):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cli = [sys.executable, "-m", "gbsearch.cli"]
    campaign = tmp_path / "campaign"
    _reference_campaign(campaign, relaxed)
    done = subprocess.run(cli + ["import-grip", str(grip_run), "--out", str(campaign)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "imported 2 GRIP structure(s)" in done.stdout
    assert (campaign / "gamma_n.png").exists() and "grip:" in (campaign / "summary.txt").read_text()
    assert sorted(pd.read_csv(campaign / "table.csv").source) == ["diffusion", "grip", "grip", "reference", "reference"]

    done = subprocess.run(cli + ["export-grip", str(campaign), "--out", str(tmp_path / "x"), "--source", "nonsense"],
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0
    assert "--source must be reference, diffusion or all" in done.stderr

    done = subprocess.run(cli + ["import-grip", str(tmp_path / "campaign"), "--out", str(campaign)], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "not GRIP output" in done.stderr and done.stderr.strip().count("\n") == 0
