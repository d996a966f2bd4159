"""3D U-Net score network after Palette (Saharia et al. 2021), with per-axis padding.

The network maps a noisy voxel array x_t [B, C, nx, ny, nz] and a diffusion time t [B]
(or a scalar) to a tensor of the same shape (ε or v, whichever it was trained on). It knows
nothing of noise schedules or samplers.

Circular padding is done by hand (:func:`gbsearch.nn_padding.pad_per_axis`), zero padding by the
convolutions themselves, so one module handles
"periodic x, y / open z" (GB slabs) and "periodic everywhere" (bulk crystals): circular padding
on periodic axes, zero padding on open ones. With L levels the network is exactly equivariant to
translations by multiples of 2**(L-1) voxels along periodic axes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

# Shared with the voxel decoder; `gbsearch.diffusion.unet.pad_per_axis` stays importable.
from gbsearch.nn_padding import pad_per_axis


@dataclass
class UNetConfig:
    """Architecture of the score network (stored in checkpoints as a plain dict).

    channel_mult: one entry per resolution level (2 levels for the GB model);
    level i has base_channels * channel_mult[i] features.
    periodic: per spatial axis (x, y, z), circular (True) or zero (False) padding.
    """

    in_channels: int = 1
    out_channels: int = 1
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2)
    num_res_blocks: int = 3
    norm_groups: int = 8
    dropout: float = 0.0
    periodic: tuple[bool, bool, bool] = (True, True, False)
    kernel_size: int = 3

    def __post_init__(self) -> None:
        self.channel_mult = tuple(int(m) for m in self.channel_mult)
        self.periodic = tuple(bool(p) for p in self.periodic)
        if len(self.periodic) != 3:
            raise ValueError(f"periodic needs 3 entries (x, y, z), got {self.periodic}")
        if not self.channel_mult:
            raise ValueError("channel_mult needs at least one level")
        if self.kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {self.kernel_size}")
        for m in self.channel_mult:
            if (self.base_channels * m) % self.norm_groups:
                raise ValueError(
                    f"norm_groups={self.norm_groups} must divide every level's channels "
                    f"({self.base_channels}*{m})"
                )

    @property
    def levels(self) -> int:
        return len(self.channel_mult)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channel_mult"] = list(self.channel_mult)
        d["periodic"] = list(self.periodic)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "UNetConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown U-Net config keys: {sorted(unknown)}")
        return cls(**d)


class PaddedConv3d(nn.Module):
    """Conv3d with 'same' per-axis padding: circular axes padded by hand, open (zero-padded)
    axes by the convolution itself, so cuDNN / oneDNN pad them inside the kernel instead of
    reading a copy (the GB slabs' open z axis is the longest one). The weights are those of a
    plain Conv3d, so checkpoints of either padding load."""

    def __init__(self, cin: int, cout: int, kernel_size: int, periodic, stride: int = 1):
        super().__init__()
        self.periodic = tuple(periodic)
        self.pad = kernel_size // 2
        self.conv = nn.Conv3d(cin, cout, kernel_size, stride=stride,
                              padding=tuple(0 if per else self.pad for per in self.periodic))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(pad_per_axis(x, self.pad, self.periodic, zeros=False))


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of diffusion times t [B] (any scale, e.g. 0..999) -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half
    )
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = F.pad(emb, (0, 1))
    return emb


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, time embedding added in between, residual skip."""

    def __init__(self, cin: int, cout: int, temb: int, cfg: UNetConfig):
        super().__init__()
        k, per = cfg.kernel_size, cfg.periodic
        self.norm1 = nn.GroupNorm(cfg.norm_groups, cin)
        self.conv1 = PaddedConv3d(cin, cout, k, per)
        self.temb = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(cfg.norm_groups, cout)
        self.drop = nn.Dropout(cfg.dropout)
        self.conv2 = PaddedConv3d(cout, cout, k, per)
        # Zero-init the last conv so each block starts as the identity (stable deep training).
        nn.init.zeros_(self.conv2.conv.weight)
        nn.init.zeros_(self.conv2.conv.bias)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.temb(emb)[:, :, None, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return self.skip(x) + h


class Downsample(nn.Module):
    """Stride-2 conv (halves every axis)."""

    def __init__(self, ch: int, cfg: UNetConfig):
        super().__init__()
        self.conv = PaddedConv3d(ch, ch, 3, cfg.periodic, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    """Nearest-neighbour x2 then conv (doubles every axis)."""

    def __init__(self, ch: int, cfg: UNetConfig):
        super().__init__()
        self.conv = PaddedConv3d(ch, ch, cfg.kernel_size, cfg.periodic)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))


class UNet3D(nn.Module):
    """Palette-style 3D U-Net: x [B, C, nx, ny, nz], t [B] or scalar -> [B, C_out, nx, ny, nz].

    Every spatial size must be divisible by 2**(levels-1).
    """

    def __init__(self, cfg: UNetConfig | None = None, **kwargs):
        super().__init__()
        if cfg is None:
            cfg = UNetConfig(**kwargs)
        elif kwargs:
            raise TypeError("pass either a UNetConfig or keyword arguments, not both")
        self.cfg = cfg
        ch0 = cfg.base_channels
        self.temb_dim = temb = 4 * ch0
        self.time_mlp = nn.Sequential(nn.Linear(ch0, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.conv_in = PaddedConv3d(cfg.in_channels, ch0, cfg.kernel_size, cfg.periodic)

        # Down path; remember each stored activation's width for the skip concatenations.
        self.down = nn.ModuleList()
        skips = [ch0]
        ch = ch0
        for lvl, mult in enumerate(cfg.channel_mult):
            for _ in range(cfg.num_res_blocks):
                self.down.append(ResBlock(ch, ch0 * mult, temb, cfg))
                ch = ch0 * mult
                skips.append(ch)
            if lvl != cfg.levels - 1:
                self.down.append(Downsample(ch, cfg))
                skips.append(ch)

        self.mid = nn.ModuleList([ResBlock(ch, ch, temb, cfg), ResBlock(ch, ch, temb, cfg)])

        self.up = nn.ModuleList()
        for lvl, mult in reversed(list(enumerate(cfg.channel_mult))):
            for _ in range(cfg.num_res_blocks + 1):
                self.up.append(ResBlock(ch + skips.pop(), ch0 * mult, temb, cfg))
                ch = ch0 * mult
            if lvl != 0:
                self.up.append(Upsample(ch, cfg))

        self.norm_out = nn.GroupNorm(cfg.norm_groups, ch)
        self.conv_out = PaddedConv3d(ch, cfg.out_channels, cfg.kernel_size, cfg.periodic)
        # Zero output at init: an ε-model then starts at loss 1 instead of a random large value.
        nn.init.zeros_(self.conv_out.conv.weight)
        nn.init.zeros_(self.conv_out.conv.bias)

    def check_shape(self, shape) -> None:
        """Raise ValueError unless `shape` (nx, ny, nz) fits this network's down-sampling."""
        f = 2 ** (self.cfg.levels - 1)
        if len(shape) != 3 or any(int(n) % f for n in shape):
            raise ValueError(
                f"voxel grid {tuple(shape)} must be 3 sizes divisible by 2**(levels-1) = {f}"
            )

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        if x.ndim != 5:
            raise ValueError(f"expected x [B, C, nx, ny, nz], got shape {tuple(x.shape)}")
        self.check_shape(x.shape[2:])
        t = torch.as_tensor(t, device=x.device)
        if t.ndim == 0:
            t = t.expand(x.shape[0])
        emb = self.time_mlp(timestep_embedding(t, self.cfg.base_channels).to(x.dtype))

        h = self.conv_in(x)
        hs = [h]
        for m in self.down:
            h = m(h, emb) if isinstance(m, ResBlock) else m(h)
            hs.append(h)
        for m in self.mid:
            h = m(h, emb)
        for m in self.up:
            if isinstance(m, ResBlock):
                h = m(torch.cat([h, hs.pop()], dim=1), emb)
            else:
                h = m(h)
        return self.conv_out(F.silu(self.norm_out(h)))
