"""Voxel decoder: padding, merging, checkpoints, a real tiny training run, the shipped weights."""
import numpy as np
import pytest
import torch

from gbsearch.errors import CheckpointError
from gbsearch.voxel.decoder import (DEFAULT_PATH, DecoderConfig, VoxelDecoder, decode, decode_atoms,
                                    load_decoder, merge_positions, save_decoder)
from gbsearch.voxel.encoder import encode, pad_positions
from gbsearch.voxel.grid import VoxelGrid
from gbsearch.voxel.metrics import compare, summarize
from gbsearch.voxel.nets import pad_axes
from gbsearch.voxel.samples import sample

SLAB = VoxelGrid(shape=(10, 9, 12), lengths=(5.0, 4.5, 6.0), origin=(0.0, 0.0, 1.0), periodic=(True, True, False))


def test_pad_axes_circular_and_zero():
    x = torch.arange(2 * 5 * 4 * 3, dtype=torch.float32).view(1, 2, 5, 4, 3)
    for pad in (1, 3, 7):                     # 7 > axis length: wraps more than once
        y = pad_axes(x, pad, (True, True, False))
        assert y.shape == (1, 2, 5 + 2 * pad, 4 + 2 * pad, 3 + 2 * pad)
        core = y[..., pad:-pad]
        for i in range(-pad, 5 + pad):
            for j in range(-pad, 4 + pad):
                assert torch.equal(core[:, :, i + pad, j + pad], x[:, :, i % 5, j % 4])
        assert (y[..., :pad] == 0).all() and (y[..., -pad:] == 0).all()


def test_network_is_equivariant_along_periodic_axes_only():
    torch.manual_seed(0)
    model = VoxelDecoder(DecoderConfig(width=8, depth=1, kernel=7)).eval()
    v = torch.rand(1, *SLAB.shape)
    with torch.no_grad():
        _, logit, off = model(v, SLAB.periodic)
        _, logit_r, off_r = model(torch.roll(v, (3, -2), dims=(1, 2)), SLAB.periodic)
        torch.testing.assert_close(logit_r, torch.roll(logit, (3, -2), dims=(1, 2)), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(off_r, torch.roll(off, (3, -2), dims=(1, 2)), atol=1e-5, rtol=1e-5)
        # Along open z the zero padding breaks the symmetry.
        _, logit_z, _ = model(torch.roll(v, 4, dims=3), SLAB.periodic)
        assert not torch.allclose(logit_z, torch.roll(logit, 4, dims=3), atol=1e-3)


def test_merge_positions_periodic_aware():
    L = np.array(SLAB.lengths)
    pts = np.array([[0.1, 2.0, 3.0], [L[0] - 0.1, 2.0, 3.0],       # same atom across the x boundary
                    [2.5, 0.05, 3.0], [2.5, L[1] - 0.15, 3.0],      # and across y
                    [2.5, 2.0, 1.1], [2.5, 2.0, 6.9]])              # opposite z edges: open, stay apart
    out = merge_positions(pts, np.ones(len(pts)), SLAB, merge_distance=1.0)
    assert len(out) == 4
    out = out[np.lexsort(out.T)]
    assert any(np.allclose(p, [0.0, 2.0, 3.0], atol=1e-9) or np.allclose(p, [L[0], 2.0, 3.0], atol=1e-9) for p in out)
    assert any(np.allclose(p, [2.5, L[1] - 0.05, 3.0], atol=1e-9) for p in out)
    assert ((out[:, :2] >= 0) & (out[:, :2] <= L[:2])).all()
    w = merge_positions(pts[:2], np.array([3.0, 1.0]), SLAB, 1.0)   # weighted mean
    assert w[0, 0] == pytest.approx(0.05)


def test_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_decoder(tmp_path / "missing.pt")
    bad = tmp_path / "garbage.pt"
    bad.write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_decoder(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(CheckpointError, match="not a gbsearch"):
        load_decoder(other)
    good = tmp_path / "good.pt"
    save_decoder(VoxelDecoder(DecoderConfig(width=8, depth=1)), good)
    obj = torch.load(good, weights_only=True)
    obj["config"]["width"] = 16                      # config says 16, weights are 8 wide
    torch.save(obj, tmp_path / "mismatch.pt")
    with pytest.raises(CheckpointError, match="does not match"):
        load_decoder(tmp_path / "mismatch.pt")
    m = load_decoder(good)
    assert m.config.width == 8 and m.config.periodic == (True, True, False)


def _round_trip(model, structures, noise=0.0, seed=0):
    gen = torch.Generator().manual_seed(seed)
    res = []
    for pos, g in structures:
        p, m = pad_positions([pos], dtype=torch.float64)
        v = encode(p, g, m).float()
        v = v + noise * model.config.scale * torch.randn(v.shape, generator=gen)
        res.append(compare(pos, decode(v, g, model=model)[0], g))
    return summarize(res)


def _translated(kind, n, seed, **kw):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s = sample(kind, rng, **kw)
        per = np.array(s.grid.periodic)
        pos = s.positions.copy()
        pos[:, per] += rng.random(per.sum()) * np.array(s.grid.lengths)[per]
        out.append((pos, s.grid))
    return out


def test_tiny_decoder_learns_bcc_cell(tmp_path):
    """A real (CPU, seconds) training run: small decoder, 2×2×2 BCC W cells with defects."""
    from gbsearch.voxel.train_decoder import TrainConfig, train

    torch.set_num_threads(min(2, torch.get_num_threads()))
    out = tmp_path / "tiny.pt"
    cfg = TrainConfig(out=str(out), steps=240, batch_size=4, lr=3e-3, width=16, depth=1, kernel=3,
                      kinds=("cubic",), kind_kwargs={"cubic": {"reps": (2, 2, 2)}}, pool_per_kind=16,
                      val_per_kind=4, val_every=120, progress=False, seed=3)
    result = train(cfg)
    assert result["step"] == 240
    assert result["history"][-1]["val_exact"] == 1.0
    model = load_decoder(out)
    held_out = _translated("cubic", 8, seed=99, reps=(2, 2, 2))
    r = _round_trip(model, held_out)
    assert r["exact_frac"] == 1.0, r
    assert r["rmse"] < 0.05, r


@pytest.fixture(scope="module")
def shipped():
    if not DEFAULT_PATH.is_file():
        pytest.fail(f"shipped decoder weights missing: {DEFAULT_PATH}")
    return load_decoder()


def test_shipped_decoder_is_small_and_self_describing(shipped):
    assert DEFAULT_PATH.stat().st_size < 25e6
    c = shipped.config
    assert c.element == "W" and 0.45 <= c.spacing <= 0.55 and 0.02 < c.scale < 0.1
    assert c.periodic == (True, True, False)


@pytest.mark.parametrize("kind", ["cubic", "rotated", "window", "surface", "gb"])
def test_shipped_decoder_round_trip(shipped, kind):
    torch.set_num_threads(min(2, torch.get_num_threads()))
    n = 2 if kind in ("gb", "surface") else 4
    structures = _translated(kind, n, seed=4242)
    clean = _round_trip(shipped, structures)
    assert clean["exact_frac"] == 1.0, clean
    assert clean["rmse"] <= 0.02, clean
    noisy = _round_trip(shipped, structures, noise=0.05, seed=1)
    assert noisy["exact_frac"] == 1.0, noisy


def test_decode_atoms_gb_window(shipped):
    s = _translated("gb", 1, seed=7, sigma=5, replicate=(2, 2))[0]
    pos, g = s
    assert g.shape == (28, 28, 64)
    p, m = pad_positions([pos])
    atoms = decode_atoms(encode(p, g, m), g, model=shipped)[0]
    assert atoms.get_chemical_symbols() == ["W"] * len(atoms)
    assert list(atoms.pbc) == [True, True, False]
    np.testing.assert_allclose(atoms.cell.lengths(), g.lengths)
    assert compare(pos, atoms.positions, g)["exact"]
