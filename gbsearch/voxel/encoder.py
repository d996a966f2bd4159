"""Cloud-in-cell voxel encoder (SPEC §3.1, paper Eqs. 1–2); no learnable parameters.

Each atom is smeared over the (at most) 8 voxels whose centres lie within one voxel edge of it,
with trilinear weights prod_d max(0, 1 - |r_d - c_d| / l_d). The weights of one atom sum to
exactly 1; periodic axes wrap by minimum image, open axes drop the part outside the box.
Everything is batched torch and runs on whichever device the positions live on.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from gbsearch.voxel.grid import VoxelGrid

# The 8 corners of the 2×2×2 block an atom touches, as 0/1 offsets per axis.
_CORNERS = torch.tensor([[i, j, k] for i in (0, 1) for j in (0, 1) for k in (0, 1)])


def cic_corners(positions: torch.Tensor, grid: VoxelGrid, mask: torch.Tensor | None = None):
    """Where each atom lands: flat voxel index, weight and offset for its 8 corner voxels.

    positions: (B, N, 3) Å, lab frame. Returns ``index`` (B, N, 8) int64 into the flattened
    (B·nx·ny·nz) grid, ``weight`` (B, N, 8) (0 for corners outside an open axis or masked
    atoms) and ``offset`` (B, N, 8, 3) = (r - c) / l in voxel units (unwrapped).
    """
    if positions.dim() != 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must be (B, N, 3), got {tuple(positions.shape)}")
    dev, dt = positions.device, positions.dtype
    if not dt.is_floating_point:
        positions = positions.to(torch.get_default_dtype())
        dt = positions.dtype
    B, N, _ = positions.shape
    shape = torch.tensor(grid.shape, device=dev)
    h = torch.tensor(grid.spacing, device=dev, dtype=dt)
    o = torch.tensor(grid.origin, device=dev, dtype=dt)
    # Continuous index in "voxel-centre" coordinates: u = 2.0 means exactly on centre 2.
    u = (positions - o) / h - 0.5
    i0 = torch.floor(u)
    f = u - i0                                     # in [0, 1): weight 1-f to i0, f to i0+1
    corners = _CORNERS.to(dev)                     # (8, 3)
    idx = i0.long().unsqueeze(2) + corners         # (B, N, 8, 3) unwrapped voxel indices
    w_axis = torch.where(corners.bool(), f.unsqueeze(2), 1.0 - f.unsqueeze(2))  # (B,N,8,3)
    weight = w_axis.prod(dim=-1)
    offset = f.unsqueeze(2) - corners.to(dt)       # r - c_corner in voxel units
    periodic = torch.tensor(grid.periodic, device=dev)
    wrapped = torch.remainder(idx, shape)
    inside = (idx >= 0) & (idx < shape)
    idx = torch.where(periodic, wrapped, idx)
    valid = torch.where(periodic, torch.ones_like(inside), inside).all(dim=-1)
    if mask is not None:
        valid = valid & mask.to(dev).bool().unsqueeze(-1)
    weight = torch.where(valid, weight, torch.zeros_like(weight))
    idx = torch.where(valid.unsqueeze(-1), idx, torch.zeros_like(idx))
    nx, ny, nz = grid.shape
    flat = ((idx[..., 0] * ny + idx[..., 1]) * nz + idx[..., 2])
    flat = flat + torch.arange(B, device=dev).view(B, 1, 1) * grid.n_voxels
    return flat, weight, offset


def encode(positions: torch.Tensor, grid: VoxelGrid, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Voxelise atoms: positions (B, N, 3) Å → densities (B, nx, ny, nz), dtype of positions.

    mask (B, N) bool marks real atoms in a padded batch. Each atom adds exactly 1 in total
    (less only where part of it falls off an open axis).
    """
    flat, weight, _ = cic_corners(positions, grid, mask)
    B = positions.shape[0]
    out = torch.zeros(B * grid.n_voxels, device=positions.device, dtype=weight.dtype)
    out.index_add_(0, flat.reshape(-1), weight.reshape(-1))
    return out.view(B, *grid.shape)


def decoder_targets(positions: torch.Tensor, grid: VoxelGrid, mask: torch.Tensor | None = None,
                    threshold: float = 0.05):
    """Training targets of SPEC §3.2: voxels V, labels y, regression targets and max weights.

    y_i = 1[max_j w_i(r_j) > threshold]; target_i = (r_j(i) - c_i) / l for the atom j(i) of
    largest overlap (voxel units). Returns (V, y, target, wmax) with shapes (B, *shape),
    (B, *shape) bool, (B, *shape, 3), (B, *shape).
    """
    flat, weight, offset = cic_corners(positions, grid, mask)
    B, dev = positions.shape[0], positions.device
    nvox = B * grid.n_voxels
    fl, w, off = flat.reshape(-1), weight.reshape(-1), offset.reshape(-1, 3)
    vox = torch.zeros(nvox, device=dev, dtype=w.dtype).index_add_(0, fl, w)
    wmax = torch.zeros(nvox, device=dev, dtype=w.dtype).scatter_reduce(0, fl, w, reduce="amax")
    # The corner entries that hold their voxel's maximum give that voxel's regression target.
    best = (w > 0) & (w >= wmax[fl])
    target = torch.zeros(nvox, 3, device=dev, dtype=w.dtype)
    target[fl[best]] = off[best]
    label = wmax > threshold
    return (vox.view(B, *grid.shape), label.view(B, *grid.shape),
            target.view(B, *grid.shape, 3), wmax.view(B, *grid.shape))


def pad_positions(arrays: Sequence[np.ndarray], device=None, dtype=torch.float32):
    """Stack ragged per-sample positions, (N_b, 3) arrays in Å, into a zero-padded
    (B, N_max, 3) tensor of ``dtype`` on ``device`` and a (B, N_max) bool mask of real atoms
    (N_max at least 1, so an all-empty batch still has a shape). The one padding routine for
    batches of structures (decoder training, GB slab windows)."""
    B = len(arrays)
    nmax = max((len(a) for a in arrays), default=0)
    pos = torch.zeros(B, max(nmax, 1), 3, dtype=dtype)
    mask = torch.zeros(B, max(nmax, 1), dtype=torch.bool)
    for b, a in enumerate(arrays):
        n = len(a)
        if n:
            pos[b, :n] = torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=dtype)
            mask[b, :n] = True
    return pos.to(device), mask.to(device)


def encode_atoms(atoms_list, grid: VoxelGrid, device=None, dtype=torch.float32) -> torch.Tensor:
    """Encode a list of ``ase.Atoms`` (or one) on ``grid``: → (B, nx, ny, nz) tensor.

    Positions are taken as they are (Å, lab frame); the grid's origin and lengths place the box.
    """
    if hasattr(atoms_list, "get_positions"):
        atoms_list = [atoms_list]
    pos, mask = pad_positions([a.get_positions() for a in atoms_list], device=device, dtype=dtype)
    return encode(pos, grid, mask)


def random_translation(positions: torch.Tensor, grid: VoxelGrid, generator: torch.Generator | None = None,
                       open_range: float = 0.0):
    """Augmentation: shift each structure of a batch by t ~ U(cell) along the periodic axes.

    positions (B, N, 3) Å. Along open axes the shift is U(-open_range, open_range) Å (0 by
    default: a slab window must keep its fixed grains in place). Returns (shifted, t (B, 3)).
    Positions are not wrapped; the encoder applies minimum image itself.
    """
    B, dev, dt = positions.shape[0], positions.device, positions.dtype
    r = torch.rand(B, 3, generator=generator, dtype=dt, device="cpu" if generator is None else generator.device)
    r = r.to(dev)
    L = torch.tensor(grid.lengths, dtype=dt, device=dev)
    per = torch.tensor(grid.periodic, device=dev)
    t = torch.where(per, r * L, (2 * r - 1) * open_range)
    return positions + t.unsqueeze(1), t
