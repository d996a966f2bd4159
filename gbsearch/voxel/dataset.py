"""Pools of synthetic structures, grouped by grid, turned into decoder training batches."""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch

from gbsearch.voxel.encoder import decoder_targets, pad_positions, random_translation
from gbsearch.voxel.grid import VoxelGrid
from gbsearch.voxel.samples import sample


class StructurePool:
    """Structures of given kinds, grouped by grid so that each batch shares one grid.

    Positions are moved so every grid has its origin at 0 (the origin only places the box).
    """

    def __init__(self, kinds, n_per_kind: int, rng: np.random.Generator, spacing: float = 0.5,
                 kind_kwargs: dict | None = None):
        self.groups: dict[VoxelGrid, list[np.ndarray]] = defaultdict(list)
        kind_kwargs = kind_kwargs or {}
        for kind in kinds:
            for _ in range(n_per_kind):
                s = sample(kind, rng, spacing=spacing, **kind_kwargs.get(kind, {}))
                g = s.grid
                g0 = VoxelGrid(g.shape, g.lengths, (0.0, 0.0, 0.0), g.periodic)
                self.groups[g0].append(s.positions - np.array(g.origin))
        self.grids = list(self.groups)
        self.sizes = np.array([len(self.groups[g]) for g in self.grids], float)

    def __len__(self) -> int:
        return int(self.sizes.sum())

    def items(self):
        """All (positions, grid) pairs, grid origin 0."""
        for g in self.grids:
            for p in self.groups[g]:
                yield p, g

    def batch(self, batch_size: int, rng: np.random.Generator, device, generator=None, dtype=torch.float32):
        """Random batch (drawn from one grid group, ∝ group size), randomly translated.

        Returns (voxels, labels, targets, grid) on ``device``.
        """
        gi = rng.choice(len(self.grids), p=self.sizes / self.sizes.sum())
        g = self.grids[gi]
        members = self.groups[g]
        pick = rng.integers(0, len(members), size=batch_size)
        pos, mask = pad_positions([members[i] for i in pick], device=device, dtype=torch.float64)
        pos, _ = random_translation(pos, g, generator=generator)
        v, y, t, _ = decoder_targets(pos, g, mask)
        return v.to(dtype), y, t.to(dtype), g


def voxel_scale(pool: StructurePool) -> float:
    """s: standard deviation of voxel values over the pool (untranslated), for scaling V / s."""
    vals = []
    for p, g in pool.items():
        pos, mask = pad_positions([p], dtype=torch.float64)
        v, *_ = decoder_targets(pos, g, mask)
        vals.append(v.flatten())
    return float(torch.cat(vals).std())
