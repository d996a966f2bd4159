"""Exact properties of the cloud-in-cell voxel encoder (SPEC §3.1)."""
import numpy as np
import pytest
import torch

from gbsearch.voxel.encoder import decoder_targets, encode, encode_atoms, random_translation
from gbsearch.voxel.grid import VoxelGrid

MIXED = VoxelGrid(shape=(6, 7, 8), lengths=(3.0, 3.5, 4.4), origin=(0.5, -1.0, 2.0), periodic=(True, True, False))
PERIODIC = VoxelGrid(shape=(6, 7, 8), lengths=(3.0, 3.5, 4.4), origin=(0.0, 0.0, 0.0), periodic=(True, True, True))


def _t(x):
    return torch.as_tensor(np.asarray(x, float), dtype=torch.float64)


def brute_force(pos: np.ndarray, grid: VoxelGrid) -> np.ndarray:
    """SPEC §3.1 literally: V_i = Σ_j Π_d max(0, 1 - |r_jd - c_id| / l_d), minimum image on periodic axes."""
    c = grid.centers().reshape(-1, 3)
    L, h = np.array(grid.lengths), np.array(grid.spacing)
    d = pos[None, :, :] - c[:, None, :]
    for k in range(3):
        if grid.periodic[k]:
            d[..., k] -= L[k] * np.round(d[..., k] / L[k])
    w = np.prod(np.clip(1 - np.abs(d) / h, 0, None), axis=-1)
    return w.sum(1).reshape(grid.shape)


def test_for_box_whole_voxels():
    g = VoxelGrid.for_box((14.1537, 14.1537, 32.0), periodic=(True, True, False), target_spacing=0.5)
    assert g.shape == (28, 28, 64)
    for n, L, h in zip(g.shape, g.lengths, g.spacing):
        assert n * h == pytest.approx(L)
        assert abs(h - 0.5) < 0.5 / n + 1e-9     # within half a voxel's share of the target
    assert g.centers().shape == (28, 28, 64, 3)
    assert g.centers()[0, 0, 0] == pytest.approx(np.array(g.spacing) / 2)
    assert VoxelGrid.from_dict(g.to_dict()) == g


@pytest.mark.parametrize("grid", [MIXED, PERIODIC])
def test_matches_definition(grid):
    rng = np.random.default_rng(0)
    lo, L = np.array(grid.origin), np.array(grid.lengths)
    pos = lo + rng.uniform(-0.3, 1.3, (25, 3)) * L      # some atoms beyond the box edges
    v = encode(_t(pos)[None], grid)[0].numpy()
    np.testing.assert_allclose(v, brute_force(pos, grid), atol=1e-12)


def test_each_atom_contributes_one():
    rng = np.random.default_rng(1)
    pos = rng.uniform(-10, 10, (3, 40, 3))          # anywhere: periodic axes wrap
    v = encode(_t(pos), PERIODIC)
    np.testing.assert_allclose(v.sum(dim=(1, 2, 3)).numpy(), 40.0, rtol=1e-12)
    # One atom at a time, inside the mixed grid's z range (between the first and last centres).
    lo, h = np.array(MIXED.origin), np.array(MIXED.spacing)
    one = lo + rng.uniform(0, 1, (200, 1, 3)) * np.array(MIXED.lengths) * [3, 3, 0] \
        + [0, 0, 0.5 * h[2]] + rng.uniform(0, 1, (200, 1, 3)) * [0, 0, MIXED.lengths[2] - h[2]]
    v = encode(_t(one), MIXED)
    np.testing.assert_allclose(v.sum(dim=(1, 2, 3)).numpy(), 1.0, rtol=1e-12)
    assert ((v > 0).sum(dim=(1, 2, 3)) <= 8).all()


def test_atom_on_voxel_centre_fills_one_voxel():
    c = MIXED.centers()
    for idx in [(0, 0, 0), (2, 3, 4), (5, 6, 7)]:
        v = encode(_t(c[idx])[None, None], MIXED)[0]
        assert v[idx].item() == pytest.approx(1.0, abs=1e-12)
        assert v.sum().item() == pytest.approx(1.0, abs=1e-12)
        assert (v > 1e-12).sum().item() == 1


def test_whole_voxel_shift_rolls_grid():
    rng = np.random.default_rng(2)
    pos = np.array(PERIODIC.origin) + rng.uniform(0, 1, (30, 3)) * np.array(PERIODIC.lengths)
    v0 = encode(_t(pos)[None], PERIODIC)[0]
    shift = np.array([2, -3, 5])
    v1 = encode(_t(pos + shift * np.array(PERIODIC.spacing))[None], PERIODIC)[0]
    np.testing.assert_allclose(v1.numpy(), torch.roll(v0, tuple(shift), dims=(0, 1, 2)).numpy(), atol=1e-12)


def test_wraps_on_periodic_axes_only():
    g = MIXED
    lo, L, h = np.array(g.origin), np.array(g.lengths), np.array(g.spacing)
    # Quarter of a voxel beyond the last x-centre and above the last z-centre.
    r = lo + L - 0.25 * h
    v = encode(_t(r)[None, None], g)[0]
    # x: 1/4 wraps to index 0, 3/4 stays at the last index; z: 3/4 in the last layer, 1/4 lost.
    assert v[0].sum().item() == pytest.approx(0.25 * 0.75, abs=1e-12)
    assert v[-1].sum().item() == pytest.approx(0.75 * 0.75, abs=1e-12)
    assert v[..., 0].sum().item() == 0.0                            # no wrap along open z
    assert v.sum().item() == pytest.approx(0.75, abs=1e-12)         # z part beyond the box is lost
    # Periodic images encode identically; images along z do not.
    v_img = encode(_t(r - [L[0], -2 * L[1], 0])[None, None], g)[0]
    np.testing.assert_allclose(v_img.numpy(), v.numpy(), atol=1e-12)
    assert encode(_t(r - [0, 0, L[2]])[None, None], g)[0].sum().item() == pytest.approx(0.25, abs=1e-12)
    # Entirely outside along z: nothing.
    assert encode(_t(r + [0, 0, 2 * h[2]])[None, None], g).abs().sum().item() == 0.0


def test_mask_and_encode_atoms():
    from ase import Atoms
    rng = np.random.default_rng(3)
    a1 = Atoms("W5", positions=rng.uniform(0, 3, (5, 3)))
    a2 = Atoms("W2", positions=rng.uniform(0, 3, (2, 3)))
    v = encode_atoms([a1, a2], PERIODIC, dtype=torch.float64)
    for b, a in enumerate([a1, a2]):
        np.testing.assert_allclose(v[b].numpy(), brute_force(a.positions, PERIODIC), atol=1e-12)
    assert encode_atoms(a1, PERIODIC).shape == (1, *PERIODIC.shape)


def test_random_translation_moves_periodic_axes_only():
    gen = torch.Generator().manual_seed(0)
    pos = torch.zeros(500, 1, 3, dtype=torch.float64)
    moved, t = random_translation(pos, MIXED, generator=gen)
    assert torch.equal(moved[:, 0], t)
    L = torch.tensor(MIXED.lengths, dtype=torch.float64)
    assert (t[:, :2] >= 0).all() and (t[:, :2] < L[:2]).all()
    assert t[:, :2].std(0).min() > 0.2 * L[:2].min()            # spread over the cell
    assert (t[:, 2] == 0).all()


def test_decoder_targets_point_at_atom():
    rng = np.random.default_rng(4)
    pos = np.array(MIXED.origin) + rng.uniform(0.2, 0.8, (1, 1, 3)) * np.array(MIXED.lengths)
    v, y, tgt, wmax = decoder_targets(_t(pos), MIXED)
    assert torch.equal(y, wmax > 0.05)
    assert 1 <= y.sum() <= 8
    c = torch.as_tensor(MIXED.centers())
    recon = c[y[0]] + tgt[0][y[0]] * torch.tensor(MIXED.spacing, dtype=torch.float64)
    np.testing.assert_allclose(recon.numpy(), np.repeat(pos[0], len(recon), 0), atol=1e-12)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(5)
    pos = _t(rng.uniform(-2, 6, (4, 50, 3)))
    np.testing.assert_allclose(encode(pos.cuda(), MIXED).cpu().numpy(), encode(pos, MIXED).numpy(), atol=1e-10)
