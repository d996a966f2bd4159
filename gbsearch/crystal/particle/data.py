"""Training crystals of the particle model: perfect cells in fractional coordinates."""
from __future__ import annotations

import torch

from ..phases import PhaseSpec, cubic_ops, perfect_fractional


def crystal_batch(spec: PhaseSpec, B: int, gen: torch.Generator, noise_A: float = 0.0) -> torch.Tensor:
    """B perfect crystals (fractional) with a random cubic operation, translation and
    atom order; optional thermal noise (Å)."""
    x0 = torch.tensor(perfect_fractional(spec), dtype=torch.float32)
    ops = torch.tensor(cubic_ops(), dtype=torch.float32)
    k = torch.randint(0, 48, (B,), generator=gen)
    x = torch.einsum("bij,nj->bni", ops[k], x0 - 0.5) + 0.5
    x = x + torch.rand(B, 1, 3, generator=gen)
    if noise_A > 0:
        x = x + torch.randn(x.shape, generator=gen) * noise_A / spec.L
    perm = torch.argsort(torch.rand(B, x.shape[1], generator=gen), dim=1)
    x = torch.gather(x, 1, perm[..., None].expand_as(x))
    return torch.remainder(x, 1.0)
