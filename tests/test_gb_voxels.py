"""Slab ↔ voxel-window bridge used by the GB diffusion model."""
import numpy as np
import torch

from gbsearch.geometry.bicrystal import FIXED_REGIONS, FIXED_UPPER
from gbsearch.gbmodel.slab_voxels import GBVoxelDataset, SlabTemplate, assemble_candidate, encode_slabs

TEMPLATE = SlabTemplate(replicate=(1, 1), n_fixed=7, n_free=4, nz=48)


def test_window_grid_covers_free_region_with_fixed_context():
    grid = TEMPLATE.grid()
    lo, hi = TEMPLATE.free_z_range()
    z0, lz = grid.origin[2], grid.lengths[2]
    assert z0 < lo - 1.5 and z0 + lz > hi + 1.5          # at least one fixed plane each side
    assert grid.periodic == (True, True, False)
    assert np.allclose(grid.spacing, 0.5, atol=0.02)
    mask = TEMPLATE.known_mask()
    assert mask.shape == grid.shape and mask[:, :, 0].all() and not mask[:, :, grid.shape[2] // 2].any()


def test_known_region_holds_only_fixed_atoms():
    slab = TEMPLATE.build()
    grid, mask = TEMPLATE.grid(), TEMPLATE.known_mask()
    fixed = np.isin(slab.arrays["region"], FIXED_REGIONS)
    only_free = slab[~fixed]
    v_free = encode_slabs([only_free], grid)[0]
    assert v_free[mask].abs().max() < 1e-6                 # free atoms never touch known voxels
    v_all = encode_slabs([slab], grid)[0]
    assert v_all[mask].sum() > 10


def test_assemble_keeps_fixed_atoms_exactly_and_takes_free_positions():
    slab = TEMPLATE.build(shift=(0.4, 1.3))
    grid = TEMPLATE.grid()
    fixed = np.isin(slab.arrays["region"], FIXED_REGIONS)
    decoded = slab.positions[(slab.positions[:, 2] > grid.origin[2])] + 0.01   # a decoder's output
    cand = assemble_candidate(slab, decoded, grid, TEMPLATE.free_z_range())
    cand_fixed = np.isin(cand.arrays["region"], FIXED_REGIONS)
    assert np.array_equal(cand.positions[cand_fixed], slab.positions[fixed])
    assert (~cand_fixed).sum() == (~fixed).sum()
    assert cand.info["n_plane"] == slab.info["n_plane"]


def test_upper_grain_offset_round_trips_and_moves_the_free_range():
    slab = TEMPLATE.build(shift=(0.2, 0.1), dz=-0.35)
    assert abs(TEMPLATE.upper_offset(slab) + 0.35) < 1e-9
    assert abs(TEMPLATE.upper_offset(TEMPLATE.build()) - 0.0) < 1e-12
    lo0, hi0 = TEMPLATE.free_z_range()
    lo, hi = TEMPLATE.free_z_range(-0.35)
    assert lo == lo0 and abs(hi - (hi0 - 0.35)) < 1e-12
    upper_fixed = slab.positions[slab.arrays["region"] == FIXED_UPPER, 2]
    assert upper_fixed.min() > hi                            # still outside the free range


def test_dataset_augmentation_translates_in_plane_only():
    slab = TEMPLATE.build()
    ds = GBVoxelDataset([slab], TEMPLATE, augment=True)
    a, mask = ds[0]
    b, _ = ds[0]
    assert a.shape == (1, *TEMPLATE.grid().shape) and mask.dtype == torch.bool
    assert not torch.allclose(a, b)                          # fresh shift per draw
    assert torch.allclose(a.sum(dim=(0, 1, 2)), b.sum(dim=(0, 1, 2)), atol=1e-4)  # same z profile


def test_device_batches_match_the_item_path():
    """The trainer's fast path (whole batches encoded on the training device) gives what the
    per-item path gives: the same structures' voxels, translated in-plane only."""
    slabs = [TEMPLATE.build(), TEMPLATE.build(shift=(0.7, 0.2))]
    del slabs[1][[5, 9]]                                    # different atom counts (padding)
    ds = GBVoxelDataset(slabs, TEMPLATE, augment=True)
    g = torch.Generator().manual_seed(0)
    vox, mask = ds.batch(6, g, "cpu")
    assert vox.shape == (6, 1, *TEMPLATE.grid().shape) and mask.shape == vox.shape
    assert torch.equal(mask[3], ds.mask)
    fixed = GBVoxelDataset(slabs, TEMPLATE, augment=False)
    z_profiles = [fixed[i][0].sum(dim=(0, 1, 2)) for i in range(2)]
    for v in vox:
        prof = v.sum(dim=(0, 1, 2))
        assert min(float((prof - p).abs().max()) for p in z_profiles) < 1e-3
    assert not torch.allclose(vox[0], vox[1]) or not torch.allclose(vox[1], vox[2])
    unaug = GBVoxelDataset(slabs, TEMPLATE, augment=False).batch(4, g, "cpu")[0]
    for v in unaug:
        assert any(torch.allclose(v, fixed[i][0], atol=1e-5) for i in range(2))
