"""The helpers that give each shared job one home (issue #14): minimum image, atomic writes and
the cache folder, the checkpoint reader, git provenance, the W constants."""
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gbsearch.checkpoint_io import read_checkpoint_file
from gbsearch.errors import CheckpointError
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.geometry.periodic import minimum_image
from gbsearch.io_utils import atomic_path, atomic_write, cache_dir

DATA = Path(__file__).resolve().parents[1] / "gbsearch" / "data"


def test_minimum_image_wraps_periodic_axes_only():
    L = (10.0, 4.0, 6.0)
    d = np.array([[6.0, -3.0, 5.0], [-14.0, 2.5, -5.0], [4.9, 1.9, 0.0]])
    got = minimum_image(d, L, (True, True, False))
    np.testing.assert_allclose(got, [[-4.0, 1.0, 5.0], [-4.0, -1.5, -5.0], [4.9, 1.9, 0.0]])
    assert d[0, 0] == 6.0                                 # the input is not modified
    # every periodic component lands in [-L/2, L/2], and differs from the input by whole cells
    rng = np.random.default_rng(0)
    r = rng.uniform(-50, 50, (200, 3))
    m = minimum_image(r, L, (True, True, True))
    assert np.all(np.abs(m) <= np.array(L) / 2 + 1e-12)
    k = (r - m) / np.array(L)
    np.testing.assert_allclose(k, np.round(k), atol=1e-9)
    with pytest.raises(ValueError, match="3 lengths"):
        minimum_image(d, (1.0, 2.0), (True, True, False))


def test_atomic_path_replaces_only_on_success(tmp_path):
    target = tmp_path / "model.pt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            assert tmp.parent == tmp_path and tmp.suffix == ".pt" and tmp != target
            tmp.write_text("half a fi")
            raise RuntimeError("killed while writing")
    assert target.read_text() == "old" and list(tmp_path.iterdir()) == [target]
    with atomic_path(target) as tmp:
        tmp.write_text("new")
        assert target.read_text() == "old"                # readers see the old file until the rename
    assert target.read_text() == "new" and list(tmp_path.iterdir()) == [target]
    assert atomic_write(tmp_path / "a.txt", "γ = 1 J/m²").read_text(encoding="utf-8") == "γ = 1 J/m²"
    assert atomic_write(tmp_path / "b.bin", b"\x00\x01").read_bytes() == b"\x00\x01"


def test_cache_dir_follows_xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "xdg" / "gbsearch" and cache_dir().is_dir()
    monkeypatch.setenv("XDG_CACHE_HOME", "")                  # empty means unset (XDG spec)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "gbsearch"


def test_shipped_checkpoints_load_through_the_one_reader():
    from gbsearch.crystal.particle import load_particle
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.voxel.decoder import CHECKPOINT_FORMAT, load_decoder

    for path in sorted((DATA / "models").glob("*.pt")) + sorted((DATA / "crystal").glob("voxel_*.pt")):
        assert read_checkpoint(path)["format"] == "gbsearch.voxel-diffusion"
    for path in sorted((DATA / "crystal").glob("particle_*.pt")):
        assert load_particle(path).cfg.hidden > 0
    assert read_checkpoint_file(DATA / "decoder_W.pt", CHECKPOINT_FORMAT, "voxel-decoder")["config"]
    assert load_decoder().config.element == TUNGSTEN.symbol


def test_particle_checkpoint_errors_name_the_file(tmp_path):
    from gbsearch.crystal.particle import load_particle

    missing = tmp_path / "missing.pt"
    with pytest.raises(CheckpointError, match=f"not found: {re.escape(str(missing))}"):
        load_particle(missing)
    with pytest.raises(CheckpointError, match="is not a file"):
        load_particle(tmp_path)
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(CheckpointError, match=f"{re.escape(str(bad))} is unreadable or corrupt"):
        load_particle(bad)
    # another gbsearch format: the voxel decoder's file is refused by its tag
    with pytest.raises(CheckpointError, match="(?s)decoder_W.pt is not a gbsearch particle model checkpoint.*gbsearch-voxel-decoder/1"):
        load_particle(DATA / "decoder_W.pt")
    # right tag, wrong weights: still a CheckpointError naming the file
    ck = torch.load(DATA / "crystal" / "particle_sc.pt", map_location="cpu", weights_only=True)
    ck["state"]["bogus.weight"] = torch.zeros(1)
    odd = tmp_path / "odd.pt"
    torch.save(ck, odd)
    with pytest.raises(CheckpointError, match=f"{re.escape(str(odd))}: weights do not match its config"):
        load_particle(odd)
    del ck["state"]
    torch.save(ck, odd)
    with pytest.raises(CheckpointError, match="lacks \\['state'\\]"):
        load_particle(odd)


def test_diffusion_reader_checks_version(tmp_path):
    from gbsearch.diffusion.checkpoint import read_checkpoint

    ck = torch.load(DATA / "crystal" / "voxel_sc.pt", map_location="cpu", weights_only=True)
    ck["version"] = 99
    path = tmp_path / "future.pt"
    torch.save(ck, path)
    with pytest.raises(CheckpointError, match="version 99, this gbsearch reads 1"):
        read_checkpoint(path)


def test_git_commit():
    from gbsearch.provenance import git_commit

    repo = Path(__file__).resolve().parents[1]
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert git_commit() == head and re.fullmatch(r"[0-9a-f]{40}", head)
    assert head.startswith(git_commit(short=True)) and 4 <= len(git_commit(short=True)) < 40
    # without git on PATH (a bare install), provenance says so instead of failing
    code = "from gbsearch.provenance import git_commit; print(git_commit())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "PATH": "", "PYTHONPATH": str(repo)})
    assert out.stdout.strip() == "unknown", out.stderr


def test_tungsten_constants_are_the_ones_in_use():
    """The W constants have one home; the modules that used to spell them read it."""
    from gbsearch.geometry.bicrystal import A0_W, twist_bicrystal
    from gbsearch.relaxation.checks import OVERLAP_DISTANCE
    from gbsearch.relaxation.potential import ELEMENT, W_ZHOU_2004
    from gbsearch.voxel.samples import A_W

    assert (TUNGSTEN.symbol, TUNGSTEN.a0, TUNGSTEN.e_coh, TUNGSTEN.d_nn) == ("W", 3.164849, -8.76, 2.74)
    assert A0_W == TUNGSTEN.a0 and twist_bicrystal().info["a0"] == TUNGSTEN.a0
    assert OVERLAP_DISTANCE == 0.5 * TUNGSTEN.d_nn and ELEMENT == TUNGSTEN.symbol
    assert W_ZHOU_2004.mass == TUNGSTEN.mass
    assert A_W == 3.1648                  # the shipped decoder's training value (decoder_W.json)
    with pytest.raises(Exception):
        TUNGSTEN.a0 = 3.0                 # frozen: nobody can change W for everyone else
