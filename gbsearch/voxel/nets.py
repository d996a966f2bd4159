"""3D ConvNeXt building blocks with per-axis padding (circular on periodic axes, zeros on open).

torch's Conv3d pads every axis the same way, so the padding is done by hand
(:func:`gbsearch.nn_padding.pad_per_axis`) and the convolutions run with padding=0.
"""
from __future__ import annotations

import torch.nn as nn
import torch.nn.functional as F

from gbsearch.nn_padding import pad_per_axis


# One padding function for the decoder and the diffusion U-Net (gbsearch.nn_padding); the old
# name stays importable.
pad_axes = pad_per_axis


class ChannelLayerNorm(nn.Module):
    """LayerNorm over the channel axis of (B, C, X, Y, Z)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x):
        return self.norm(x.movedim(1, -1)).movedim(-1, 1)


class ConvNeXtBlock3d(nn.Module):
    """depthwise k³ conv → LayerNorm → 1×1×1 (C→eC) → GELU → 1×1×1 (eC→C), plus the input."""

    def __init__(self, channels: int, kernel: int = 7, expansion: int = 2):
        super().__init__()
        self.pad = kernel // 2
        self.dw = nn.Conv3d(channels, channels, kernel, padding=0, groups=channels)
        self.norm = ChannelLayerNorm(channels)
        self.pw1 = nn.Conv3d(channels, expansion * channels, 1)
        self.pw2 = nn.Conv3d(expansion * channels, channels, 1)

    def forward(self, x, periodic):
        y = self.dw(pad_per_axis(x, self.pad, periodic))
        y = self.pw2(F.gelu(self.pw1(self.norm(y))))
        return x + y


class ConvNeXt3d(nn.Module):
    """Small ConvNeXt: 3³ stem conv (in→C), ``depth`` blocks, LayerNorm, 1×1×1 head (C→out)."""

    def __init__(self, in_ch: int, out_ch: int, width: int = 64, depth: int = 2, kernel: int = 7,
                 expansion: int = 2, zero_head: bool = False):
        super().__init__()
        self.stem = nn.Conv3d(in_ch, width, 3, padding=0)
        self.blocks = nn.ModuleList(ConvNeXtBlock3d(width, kernel, expansion) for _ in range(depth))
        self.norm = ChannelLayerNorm(width)
        self.head = nn.Conv3d(width, out_ch, 1)
        if zero_head:   # start as the zero map (the denoiser then starts as the identity)
            nn.init.zeros_(self.head.weight)
            nn.init.zeros_(self.head.bias)

    def forward(self, x, periodic):
        x = self.stem(pad_per_axis(x, 1, periodic))
        for blk in self.blocks:
            x = blk(x, periodic)
        return self.head(self.norm(x))
