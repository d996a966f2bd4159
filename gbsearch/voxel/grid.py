"""Voxel grid geometry: an axis-aligned box cut into n_x × n_y × n_z voxels.

Voxel i along an axis has its centre at ``origin + (i + 0.5) * spacing``; the box spans
``[origin, origin + length)``. Periodic axes wrap (bulk crystals, the GB plane), open axes
end (the GB normal of a slab window) and are zero-padded outside the box.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class VoxelGrid:
    """Box of ``shape`` voxels spanning ``lengths`` (Å) from ``origin`` (Å, lower corner)."""

    shape: tuple[int, int, int]
    lengths: tuple[float, float, float]
    origin: tuple[float, float, float] = (0.0, 0.0, 0.0)
    periodic: tuple[bool, bool, bool] = (True, True, False)

    def __post_init__(self) -> None:
        # Normalise to plain tuples of python scalars so grids hash/compare and serialise.
        object.__setattr__(self, "shape", tuple(int(n) for n in self.shape))
        object.__setattr__(self, "lengths", tuple(float(x) for x in self.lengths))
        object.__setattr__(self, "origin", tuple(float(x) for x in self.origin))
        object.__setattr__(self, "periodic", tuple(bool(p) for p in self.periodic))
        if len(self.shape) != 3 or len(self.lengths) != 3 or len(self.origin) != 3 or len(self.periodic) != 3:
            raise ValueError("VoxelGrid needs three values for shape, lengths, origin and periodic")
        if min(self.shape) < 1:
            raise ValueError(f"voxel counts must be >= 1, got {self.shape}")
        if min(self.lengths) <= 0:
            raise ValueError(f"box lengths must be > 0 Å, got {self.lengths}")

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel edge per axis (Å): length / count, so the box holds whole voxels."""
        return tuple(L / n for L, n in zip(self.lengths, self.shape))

    @property
    def n_voxels(self) -> int:
        return self.shape[0] * self.shape[1] * self.shape[2]

    @classmethod
    def for_box(
        cls,
        lengths,
        origin=(0.0, 0.0, 0.0),
        periodic=(True, True, False),
        target_spacing: float = 0.5,
    ) -> "VoxelGrid":
        """Grid over a box of ``lengths`` (Å) with n = round(L / target_spacing) voxels per axis.

        The edge per axis is then L / n, within half a voxel's worth of the target, so a
        periodic cell edge is always a whole number of voxels (SPEC §3.1).
        """
        if target_spacing <= 0:
            raise ValueError("target_spacing must be > 0 Å")
        shape = tuple(max(1, int(round(float(L) / target_spacing))) for L in lengths)
        return cls(shape=shape, lengths=tuple(lengths), origin=tuple(origin), periodic=tuple(periodic))

    def centers(self) -> np.ndarray:
        """Voxel centres, array (nx, ny, nz, 3) in Å (lab frame)."""
        axes = [o + (np.arange(n) + 0.5) * h for o, n, h in zip(self.origin, self.shape, self.spacing)]
        return np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1)

    def to_dict(self) -> dict:
        return {"shape": list(self.shape), "lengths": list(self.lengths),
                "origin": list(self.origin), "periodic": list(self.periodic)}

    @classmethod
    def from_dict(cls, d: dict) -> "VoxelGrid":
        return cls(shape=tuple(d["shape"]), lengths=tuple(d["lengths"]),
                   origin=tuple(d["origin"]), periodic=tuple(d["periodic"]))
