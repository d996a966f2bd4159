"""Training data of a transferable GB model: relaxed structures of several <100> twist
boundaries and replications, each group on its own voxel grid.

A batch holds one group only (one boundary and replication, one grid shape): the U-Net is fully
convolutional, so every grid whose edges hold whole, even numbers of voxels fits it, and the fixed
grains' voxels (the known region) are what tells it the misorientation. Boundaries are drawn
with equal probability, whatever their number of structures; within a boundary its replications
are drawn in proportion to their structures.
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np
import torch
from ase import Atoms
from torch.utils.data import Dataset

from gbsearch.gbmodel.slab_voxels import GBVoxelDataset, SlabTemplate


def group_key(atoms: Atoms) -> tuple[int, tuple[int, int]]:
    """(Σ, replication) of a reference structure."""
    rep = tuple(int(v) for v in str(atoms.info["replicate"]).replace("x", " ").split())
    return int(atoms.info["sigma"]), rep


def split_by_boundary(structures: list[Atoms], val_fraction: float, seed: int) -> tuple[list, list]:
    """(train, validation): ``val_fraction`` of each boundary's structures (at least one where
    it has two or more), drawn with ``seed``."""
    by_sigma = defaultdict(list)
    for a in structures:
        by_sigma[group_key(a)[0]].append(a)
    rng = np.random.default_rng(seed)
    train, val = [], []
    for sigma in sorted(by_sigma):
        items = by_sigma[sigma]
        order = rng.permutation(len(items))
        n_val = max(1, int(round(val_fraction * len(items)))) if len(items) > 1 else 0
        val += [items[i] for i in order[:n_val]]
        train += [items[i] for i in order[n_val:]]
    return train, val


class BoundaryLibraryDataset(Dataset):
    """Structures of several boundaries as (voxels [1, nx, ny, nz], known_mask) items, grouped by
    (Σ, replication); ``template_settings`` (n_fixed, n_free, spacing, nz) are shared by all
    groups and must match the structures' slabs."""

    def __init__(self, structures: list[Atoms], augment: bool = True, **template_settings):
        grouped = defaultdict(list)
        for a in structures:
            grouped[group_key(a)].append(a)
        self.keys = sorted(grouped)
        self.templates = {k: SlabTemplate.from_atoms(grouped[k][0], **template_settings) for k in self.keys}
        self.datasets = {k: GBVoxelDataset(grouped[k], self.templates[k], augment=augment) for k in self.keys}
        for k, t in self.templates.items():
            nx, ny, _ = t.grid().shape
            if nx % 2 or ny % 2:
                raise ValueError(f"Σ{k[0]} {k[1][0]}x{k[1][1]}: grid {nx}x{ny} is not even (the U-Net halves it)")
        sigmas = sorted({k[0] for k in self.keys})
        per_sigma = {s: sum(len(self.datasets[k]) for k in self.keys if k[0] == s) for s in sigmas}
        self.weights = torch.tensor([len(self.datasets[k]) / per_sigma[k[0]] / len(sigmas) for k in self.keys],
                                    dtype=torch.float64)
        self._starts = np.cumsum([0] + [len(self.datasets[k]) for k in self.keys])

    @property
    def sigmas(self) -> list[int]:
        return sorted({k[0] for k in self.keys})

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int):
        g = int(np.searchsorted(self._starts, i, side="right")) - 1
        return self.datasets[self.keys[g]][i - int(self._starts[g])]

    def groups(self) -> dict:
        """name ("Σ5 2x2") → (boundary label "Σ5", dataset): validation runs per group, and
        reports per boundary."""
        return {f"Σ{s} {r[0]}x{r[1]}": (f"Σ{s}", self.datasets[(s, r)]) for s, r in self.keys}

    def batch(self, n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` items of one group, drawn as the module docstring says, made on ``device``."""
        g = int(torch.multinomial(self.weights.to(generator.device), 1, generator=generator).item())
        return self.datasets[self.keys[g]].batch(n, generator, device)

    def upper_offsets(self) -> list[float]:
        """Every structure's upper-grain z offset (Å) against its own group's template."""
        return [self.templates[k].upper_offset(a) for k in self.keys for a in self.datasets[k].structures]
