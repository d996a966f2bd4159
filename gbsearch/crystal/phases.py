"""Periodic SC / BCC / FCC supercells with W-like nearest-neighbour distance (2.74 Å), so the
shipped W voxel decoder (trained at ~0.5 Å voxels) applies, and voxel grids with a whole
number of voxels per lattice constant (even totals, for the 2-level U-Net)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# W-like nearest-neighbour distance (Å) of all three phases. Frozen at the value the shipped
# crystal models (gbsearch/data/crystal) were trained with: their cells are built from it. It is
# close to, not equal to, W's (gbsearch.geometry.material.TUNGSTEN: d_nn 2.74 Å, exact BCC
# sqrt(3)/2 · a0 = 2.7408 Å).
NN = 2.7406

BASIS = {
    "sc": np.array([[0.0, 0.0, 0.0]]),
    "bcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.5]]),
    "fcc": np.array([[0.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5], [0.0, 0.5, 0.5]]),
}


@dataclass(frozen=True)
class PhaseSpec:
    name: str
    a: float              # lattice constant (Å)
    reps: int             # conventional cells per edge
    vox_per_a: int        # voxels per lattice constant

    @property
    def L(self) -> float:
        return self.a * self.reps

    @property
    def n_atoms(self) -> int:
        return len(BASIS[self.name]) * self.reps ** 3

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        n = self.vox_per_a * self.reps
        return (n, n, n)

    @property
    def spacing(self) -> float:
        return self.a / self.vox_per_a

    def grid(self):
        from gbsearch.voxel.grid import VoxelGrid
        return VoxelGrid(shape=self.grid_shape, lengths=(self.L,) * 3, periodic=(True, True, True))


# nearest-neighbour distance 2.74 Å in all three: a_sc = d, a_bcc = 2d/sqrt3, a_fcc = sqrt2 d
PHASES = {
    "sc": PhaseSpec("sc", NN, 4, 5),                          # 64 atoms, 20^3 voxels of 0.548 Å
    "bcc": PhaseSpec("bcc", 2 * NN / np.sqrt(3), 3, 6),       # 54 atoms, 18^3 voxels of 0.527 Å
    "fcc": PhaseSpec("fcc", np.sqrt(2) * NN, 2, 8),           # 32 atoms, 16^3 voxels of 0.484 Å
}


# length of the shortest reciprocal-lattice vector (cycles/Å × a): SC (100), BCC (110), FCC (111)
K_MIN_A = {"sc": 1.0, "bcc": np.sqrt(2.0), "fcc": np.sqrt(3.0)}


def lattice_order(spec: PhaseSpec | str, sigma_A: float) -> float:
    """How much of the crystal's strongest density wave survives a Gaussian displacement of
    std sigma_A (Å) per component: the Debye-Waller factor exp(-2 pi^2 sigma^2 k^2) at the
    shortest reciprocal-lattice vector (1 = perfect crystal, ~0 = uniform random)."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    k = K_MIN_A[spec.name] / spec.a
    return float(np.exp(-2 * np.pi ** 2 * sigma_A ** 2 * k ** 2))


def phase_spec(name: str) -> PhaseSpec:
    try:
        return PHASES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown phase {name!r}; choose from {sorted(PHASES)}") from None


def perfect_fractional(spec: PhaseSpec) -> np.ndarray:
    """Fractional coordinates (N, 3) in [0, 1) of the perfect supercell."""
    r = spec.reps
    cells = np.stack(np.meshgrid(*[np.arange(r)] * 3, indexing="ij"), -1).reshape(-1, 3)
    return ((cells[:, None, :] + BASIS[spec.name][None]) / r).reshape(-1, 3)


def perfect_crystal(spec: PhaseSpec | str) -> np.ndarray:
    """Cartesian positions (N, 3) Å of the perfect supercell."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    return perfect_fractional(spec) * spec.L


# the 48 cubic symmetry operations (signed axis permutations)
def cubic_ops() -> np.ndarray:
    import itertools
    ops = []
    for p in itertools.permutations(range(3)):
        for s in itertools.product((1, -1), repeat=3):
            m = np.zeros((3, 3))
            for i in range(3):
                m[i, p[i]] = s[i]
            ops.append(m)
    return np.array(ops)


def augmented(spec: PhaseSpec, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """Perfect crystal with a random cubic operation, random translation and Gaussian thermal
    noise (Å); Cartesian positions wrapped into the cell."""
    x = perfect_crystal(spec) - spec.L / 2
    op = cubic_ops()[rng.integers(48)]
    x = x @ op.T + spec.L / 2 + rng.uniform(0, spec.L, 3) + rng.normal(0, noise, x.shape)
    return np.mod(x, spec.L)
