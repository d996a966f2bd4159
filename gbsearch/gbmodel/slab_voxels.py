"""GB slabs ↔ voxel windows: the bridge between structures and the diffusion model.

The model sees a window around the GB: periodic x, y over the in-plane cell, open z over
``nz`` voxels centred on the GB plane of the template slab. Voxels whose centres lie in the
fixed grains are *known* (held during in-painting); the rest is generated. Decoded
candidates keep the template's fixed atoms exactly and take the generated atoms of the free
region.
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from ase import Atoms
from ase.data import atomic_numbers
from torch.utils.data import Dataset

from gbsearch.geometry.bicrystal import (FIXED_LOWER, FIXED_REGIONS, FIXED_UPPER, FREE_LOWER, FREE_UPPER,
                                twist_bicrystal)
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.voxel.encoder import encode, pad_positions
from gbsearch.voxel.grid import VoxelGrid


@dataclass(frozen=True)
class SlabTemplate:
    """The slab geometry a GB model is trained for (must match its reference dataset)."""
    misorientation: float = DEFAULT_MISORIENTATION
    replicate: tuple = (2, 2)
    n_fixed: int = 8
    n_free: int = 8
    spacing: float = 0.5           # Å, target voxel edge
    nz: int = 64                   # voxels along z in the window

    def build(self, shift=(0.0, 0.0), dz: float = 0.0) -> Atoms:
        """The slab with the upper grain shifted in-plane by ``shift`` (Å) and along z by ``dz`` (Å)."""
        return twist_bicrystal(self.misorientation, replicate=tuple(self.replicate),
                               n_fixed=self.n_fixed, n_free=self.n_free, shift=tuple(shift), gap=float(dz))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["replicate"] = list(self.replicate)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SlabTemplate":
        d = dict(d)
        d["replicate"] = tuple(d["replicate"])
        return cls(**d)

    @classmethod
    def from_atoms(cls, atoms: Atoms, **kw) -> "SlabTemplate":
        """Template of a slab built by :func:`twist_bicrystal` (e.g. a reference structure)."""
        region = atoms.arrays["region"]
        n_plane = atoms.info["n_plane"]
        rep = tuple(int(v) for v in str(atoms.info["replicate"]).split())
        return cls(misorientation=float(atoms.info["misorientation_deg"]), replicate=rep,
                   n_fixed=int(np.sum(region == FIXED_LOWER)) // n_plane,
                   n_free=int(atoms.info["n_free_bulk"]) // (2 * n_plane), **kw)

    def reference_slab(self) -> Atoms:
        """The unshifted slab (built once per template; do not modify it)."""
        return _unshifted_slab(self)

    @classmethod
    def for_boundary(cls, boundary, replicate=None, **settings) -> "SlabTemplate":
        """The template of a campaign on ``boundary`` (a :class:`~gbsearch.geometry.csl.TwistCSL`
        or angle in degrees): ``replicate`` (default :func:`campaign_replicate`) and the other
        fields from ``settings`` or their defaults."""
        from gbsearch.geometry.csl import as_boundary
        b = as_boundary(boundary)
        rep = tuple(replicate) if replicate is not None else campaign_replicate(b)
        return cls(misorientation=float(b.angle_deg), replicate=rep, **settings)

    def cell_voxels(self) -> int:
        """Voxels along one edge of the 1×1 CSL cell: the even number nearest to edge / spacing,
        so that every replication holds whole cells of whole voxels and the 2-level U-Net can
        halve the grid (Σ5: 14, Σ13: 22, Σ17: 26, Σ25: 32, Σ37: 38, Σ41: 40; BOUNDARIES.md)."""
        slab = self.reference_slab()
        edge = float(slab.cell.lengths()[0]) / self.replicate[0]
        return max(2, 2 * round(edge / (2 * self.spacing)))

    def grid(self) -> VoxelGrid:
        slab = self.reference_slab()
        lx, ly = (float(v) for v in slab.cell.lengths()[:2])
        nx, ny = (self.cell_voxels() * int(r) for r in self.replicate)
        lz = self.nz * self.spacing
        z0 = float(slab.info["gb_z"]) - lz / 2
        return VoxelGrid((nx, ny, self.nz), (lx, ly, lz), (0.0, 0.0, z0), (True, True, False))

    def free_z_range(self, dz: float = 0.0) -> tuple[float, float]:
        """z-interval (Å) of the free region: midway between the last fixed and first free
        planes, for the upper grain raised by ``dz`` Å."""
        slab = self.reference_slab()
        z, region = slab.positions[:, 2], slab.arrays["region"]
        d = slab.info["plane_spacing"]
        return (z[region == FIXED_LOWER].max() + d / 2, z[region == FIXED_UPPER].min() - d / 2 + dz)

    def slab_for(self, atoms: Atoms) -> Atoms:
        """The slab a candidate was in-painted into, rebuilt from its ``shift`` and ``upper_dz``
        (``shift`` is a string on fresh candidates, an array once read back from extended XYZ)."""
        shift = atoms.info["shift"]
        shift = shift.split() if isinstance(shift, str) else shift
        return self.build(shift=[float(v) for v in shift], dz=float(atoms.info.get("upper_dz", 0.0)))

    def upper_offset(self, atoms: Atoms) -> float:
        """How far (Å) the fixed upper grain of ``atoms`` sits above this template's.

        Relaxation moves the upper grain rigidly along z, by an amount that depends on the GB
        structure (in the Σ5 reference from -0.9 to +0.6 Å, strongly tied to [n])."""
        slab = self.reference_slab()
        z_ref = slab.positions[slab.arrays["region"] == FIXED_UPPER, 2].mean()
        return float(atoms.positions[atoms.arrays["region"] == FIXED_UPPER, 2].mean() - z_ref)

    def known_mask(self) -> torch.Tensor:
        """Bool [nx, ny, nz]: True where voxel centres lie in the fixed grains."""
        grid = self.grid()
        lo, hi = self.free_z_range()
        zc = grid.origin[2] + (np.arange(grid.shape[2]) + 0.5) * grid.spacing[2]
        col = torch.as_tensor((zc < lo) | (zc > hi))
        return col.view(1, 1, -1).expand(*grid.shape).clone()


# A campaign's cell: the smallest square replication of the CSL cell at least this wide (Å),
# so that small cells still hold a few structural units (Σ5: 2×2, 14.2 Å, as the shipped Σ5
# models; Σ13 and larger: 1×1).
CAMPAIGN_MIN_EDGE = 10.0


def campaign_replicate(boundary, a0: float | None = None) -> tuple[int, int]:
    """(k, k): the smallest square replication of ``boundary``'s CSL cell with edge ≥
    :data:`CAMPAIGN_MIN_EDGE` Å (lattice constant ``a0`` Å, default W's)."""
    from gbsearch.geometry.bicrystal import A0_W
    from gbsearch.geometry.csl import as_boundary
    edge = as_boundary(boundary).edge(a0 or A0_W)
    k = max(1, int(np.ceil(CAMPAIGN_MIN_EDGE / edge - 1e-9)))
    return (k, k)


@functools.lru_cache(maxsize=32)
def _unshifted_slab(template: SlabTemplate) -> Atoms:
    return template.build()


def padded_positions(atoms_list, device=None) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions [B, N_max, 3] (Å, float64, zero-padded) and real-atom mask [B, N_max] of
    ``ase.Atoms`` on ``device``: :func:`gbsearch.voxel.encoder.pad_positions` on their positions."""
    return pad_positions([a.positions for a in atoms_list], device=device, dtype=torch.float64)


def encode_slabs(atoms_list, grid: VoxelGrid, shifts: np.ndarray | None = None, device=None) -> torch.Tensor:
    """Voxels [B, nx, ny, nz] of slabs, each optionally translated in-plane by shifts[B, 2] Å,
    computed on ``device`` (default the CPU)."""
    pos, mask = padded_positions(atoms_list, device)
    if shifts is not None:
        pos[..., :2] += torch.as_tensor(np.asarray(shifts, dtype=float), device=pos.device)[:, None, :]
    return encode(pos.float(), grid, mask)


class GBVoxelDataset(Dataset):
    """Relaxed GB structures as (voxels [1, nx, ny, nz], known_mask [1, nx, ny, nz]).

    With ``augment`` every item is translated by a fresh random in-plane vector (periodic x,
    y; the equivariance the model should have); z is never translated (open axis).
    """

    def __init__(self, structures: list[Atoms], template: SlabTemplate, augment: bool = True):
        self.structures = structures
        self.grid = template.grid()
        self.mask = template.known_mask()[None]
        self.augment = augment
        self._fixed = None if augment else encode_slabs(structures, self.grid)
        self._device_cache = None

    def __len__(self) -> int:
        return len(self.structures)

    def batch(self, n: int, generator: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` random items made on ``device`` (the trainer's fast path): structures drawn with
        replacement, each translated by a fresh random in-plane vector when augmenting."""
        device = torch.device(device)
        if self._device_cache is None or self._device_cache[0].device != device:
            self._device_cache = tuple(t.to(device) for t in padded_positions(self.structures))
        pos, real = self._device_cache
        idx = torch.randint(len(self.structures), (n,), generator=generator, device=device)
        p = pos[idx]
        if self.augment:
            lxy = torch.tensor(self.grid.lengths[:2], dtype=torch.float64, device=device)
            p[..., :2] += torch.rand(n, 1, 2, generator=generator, device=device, dtype=torch.float64) * lxy
        vox = encode(p.float(), self.grid, real[idx])
        return vox[:, None], self.mask.to(device)[None].expand(n, *self.mask.shape)

    def __getitem__(self, i: int):
        if self._fixed is not None:
            return self._fixed[i][None], self.mask
        # torch's RNG: DataLoader workers get distinct seeds, numpy generators would repeat.
        shift = torch.rand(1, 2, dtype=torch.float64).numpy() * np.asarray(self.grid.lengths[:2])
        return encode_slabs([self.structures[i]], self.grid, shift)[0][None], self.mask


def assemble_candidate(template_slab: Atoms, positions: np.ndarray, grid: VoxelGrid,
                       free_range: tuple[float, float]) -> Atoms:
    """Fixed atoms of ``template_slab`` exactly, plus the decoded ``positions`` (Å) that fall in
    the free region; the result carries the template's GB metadata."""
    region = template_slab.arrays["region"]
    fixed = np.isin(region, FIXED_REGIONS)
    lo, hi = free_range
    z = positions[:, 2]
    gen = positions[(z > lo) & (z < hi)].copy()
    gen[:, :2] = np.mod(gen[:, :2], template_slab.cell.lengths()[:2])
    gb_z = template_slab.info["gb_z"]
    gen_region = np.where(gen[:, 2] < gb_z, FREE_LOWER, FREE_UPPER)
    atoms = Atoms(numbers=np.full(int(fixed.sum()) + len(gen), atomic_numbers[TUNGSTEN.symbol]),
                  positions=np.concatenate([template_slab.positions[fixed], gen]),
                  cell=template_slab.cell, pbc=template_slab.pbc)
    atoms.arrays["region"] = np.concatenate([region[fixed], gen_region]).astype(np.int32)
    atoms.info.update(template_slab.info)
    return atoms
