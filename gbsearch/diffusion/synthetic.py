"""Synthetic voxel data for tests and benchmarks: a BCC lattice of atoms, randomly translated,
smeared onto the grid with cloud-in-cell (trilinear) weights as in SPEC §3.1.

Stands in for the real encoder (gbsearch.voxel) so the diffusion code can be exercised alone.
"""

from __future__ import annotations

import torch
from torch.utils.data import Dataset


def cic_voxels(pos: torch.Tensor, shape) -> torch.Tensor:
    """Cloud-in-cell density [nx, ny, nz] of positions pos [N, 3] in voxel units (voxel i centred
    at i), periodic on every axis; each atom contributes exactly 1 in total."""
    shape = tuple(int(n) for n in shape)
    n = torch.tensor(shape, dtype=pos.dtype)
    base = torch.floor(pos)
    frac = pos - base
    base = base.long()
    grid = torch.zeros(shape, dtype=torch.float32)
    for corner in range(8):
        off = torch.tensor([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
        w = torch.where(off.bool(), frac, 1 - frac).prod(dim=1)
        idx = (base + off) % n.long()
        grid.index_put_((idx[:, 0], idx[:, 1], idx[:, 2]), w.float(), accumulate=True)
    return grid


class LatticeBlobs(Dataset):
    """Items: voxels [1, nx, ny, nz] of a BCC lattice (lattice constant `a` voxels, which must
    divide every size), translated by a uniform random vector; item i is reproducible.

    known_slabs=k > 0 makes items (voxels, known_mask) with the k bottom and k top z-layers
    known, like the fixed grains of a GB slab.
    """

    def __init__(self, n: int, shape=(8, 8, 8), a: int = 4, seed: int = 0, known_slabs: int = 0):
        self.n, self.shape, self.a, self.seed, self.known_slabs = n, tuple(shape), a, seed, known_slabs
        if any(s % a for s in self.shape):
            raise ValueError(f"lattice constant {a} must divide grid {self.shape}")
        cells = torch.stack(torch.meshgrid(*[torch.arange(s // a) for s in self.shape], indexing="ij"), -1)
        corners = cells.reshape(-1, 3).float() * a
        self.base = torch.cat([corners, corners + a / 2])  # BCC: corner + body centre

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(i))
        shift = torch.rand(3, generator=g) * self.a
        vox = cic_voxels(self.base + shift, self.shape)[None]
        if not self.known_slabs:
            return vox
        mask = torch.zeros_like(vox, dtype=torch.bool)
        mask[..., : self.known_slabs] = True
        mask[..., -self.known_slabs:] = True
        return vox, mask
