"""OVITO rendering of a tiny real campaign (3 relaxed Σ5 slabs): PNGs, extended XYZ, PTM."""
import os
import subprocess
import sys
from pathlib import Path

import ase.io
import numpy as np
import pytest
from PIL import Image

from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.store.database import CampaignDB, row_to_atoms
from gbsearch.errors import InputError
from gbsearch.driver.trials import SearchSettings
from gbsearch.driver.reference import run_search

TINY = SearchSettings(replicates=((1, 1),), n_fixed=7, n_free=4, md_steps=(100, 400))


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    out = tmp_path_factory.mktemp("campaign")
    run_search(out, 3, TINY, seed=0, workers=1, progress=False)
    return out


@pytest.fixture(scope="module")
def rendered(campaign):
    """The CLI run once for the module: 2 best structures, PTM colours, 400x300 images."""
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "render", str(campaign), "--best", "2",
                          "--size", "400", "300", "--out", "imgs"],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return campaign / "imgs", res.stdout


def _rgb(path):
    return np.asarray(Image.open(path).convert("RGB"), dtype=float) / 255.0


def test_cli_writes_nonblank_images_of_the_requested_size(rendered, campaign):
    out, stdout = rendered
    db = CampaignDB(campaign / "campaign.db")
    best = sorted(db.rows(status="ok"), key=lambda r: r.gamma_J_m2)[:2]
    for rank, row in enumerate(best, 1):
        for view in ("side", "plan"):
            png = out / f"{rank:02d}_id{row.id}_{view}.png"
            assert Image.open(png).size == (400, 300)
            img = _rgb(png)
            assert img.std() > 0.1                          # not blank
            assert (img.min(axis=2) < 0.9).mean() > 0.1     # a good share of non-white pixels
        assert f"id {row.id} (reference)" in stdout
    sheet = Image.open(out / "contact_sheet.png")
    assert sheet.size[1] > sheet.size[0] * 0.6 and _rgb(out / "contact_sheet.png").std() > 0.1
    assert not (out / f"03_id{sorted(db.rows(status='ok'), key=lambda r: r.gamma_J_m2)[2].id}.xyz").exists()


def test_fixed_grains_are_visibly_dimmed(rendered):
    out, _ = rendered
    img = _rgb(next(out.glob("01_*_side.png")))
    sat = img.max(axis=2) - img.min(axis=2)
    # Slab rows from the non-white pixels of the left half (the legend is on the right).
    rows = np.where((img[:, : img.shape[1] // 2].min(axis=2) < 0.9).sum(axis=1) > 20)[0]
    top, bottom = rows.min(), rows.max()
    h = bottom - top
    # 7 of 22 planes are fixed per side: the outer ~25 % of the slab's height is fixed grain.
    band = lambda a, b: sat[top + int(a * h): top + int(b * h), : img.shape[1] // 2]
    fixed = np.concatenate([band(0.03, 0.22), band(0.78, 0.97)])
    free = band(0.4, 0.6)
    ink = lambda s: s[s > 0.05].mean()                   # mean saturation of coloured pixels
    assert ink(fixed) < 0.7 * ink(free), (ink(fixed), ink(free))


def test_extended_xyz_round_trips_with_energy_and_structure_type(rendered, campaign):
    out, _ = rendered
    db = CampaignDB(campaign / "campaign.db")
    row = sorted(db.rows(status="ok"), key=lambda r: r.gamma_J_m2)[0]
    ref = row_to_atoms(row)
    a = ase.io.read(out / f"01_id{row.id}.xyz")
    assert np.allclose(a.positions, ref.positions) and (a.numbers == ref.numbers).all()
    assert np.allclose(a.arrays["atomic_energy"], ref.arrays["energy"])
    assert (a.arrays["region"] == ref.arrays["region"]).all()
    assert a.info["gamma_J_m2"] == pytest.approx(row.gamma_J_m2)
    st, names = a.arrays["structure_type"], a.arrays["structure"]
    assert st.dtype.kind == "i" and set(names) <= {"Other", "FCC", "HCP", "BCC", "ICO", "Simple cubic"}
    # PTM: the fixed grains are BCC but for the two outer (surface) planes of each; the GB is not.
    fixed = np.isin(a.arrays["region"], FIXED_REGIONS)
    assert (names[fixed] == "BCC").mean() > 0.6
    assert (st[fixed] == 3).mean() == (names[fixed] == "BCC").mean()      # PTM's id for BCC is 3
    near_gb = np.abs(a.positions[:, 2] - a.info["gb_z"]) < 1.0
    assert (names[near_gb] != "BCC").mean() > 0.5


def test_energy_colouring_differs_from_ptm(rendered, campaign, tmp_path):
    from gbsearch.analysis.render import render_campaign
    out, _ = rendered
    done = render_campaign(campaign, best=1, color="energy", out=tmp_path, size=(400, 300), sheet=False)
    assert len(done) == 1 and not (tmp_path / "contact_sheet.png").exists()
    energy, ptm = _rgb(done[0].side_png), _rgb(next(out.glob("01_*_side.png")))
    assert energy.shape == ptm.shape and np.abs(energy - ptm).mean() > 0.02


def test_input_errors(campaign, tmp_path):
    from gbsearch.analysis.render import render_campaign
    with pytest.raises(InputError, match="no campaign database"):
        render_campaign(tmp_path, best=1)
    with pytest.raises(InputError, match="at least 1"):
        render_campaign(campaign, best=0)
    with pytest.raises(InputError, match="ptm, energy"):
        render_campaign(campaign, best=1, color="cna")
    empty = tmp_path / "empty"
    CampaignDB(empty / "campaign.db").record("reference", 0, {"status": "failed", "error": "boom"})
    with pytest.raises(InputError, match="no structures with status 'ok'"):
        render_campaign(empty, best=1)


def test_missing_vulkan_driver_names_the_packages(campaign, tmp_path):
    # A Vulkan loader pointed at a driver that does not exist fails as a machine without one.
    env = dict(os.environ, VK_ICD_FILENAMES=str(tmp_path / "none.json"), VK_DRIVER_FILES=str(tmp_path / "none.json"))
    res = subprocess.run([sys.executable, "-m", "gbsearch.cli", "render", str(campaign), "--best", "1",
                          "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode == 2
    assert "apt-get install -y libvulkan1 mesa-vulkan-drivers" in res.stderr
