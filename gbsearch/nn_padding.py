"""Per-axis 'same' padding for 3D convolutions: circular on periodic axes, zeros on open ones.

torch's Conv3d pads every axis the same way, so the voxel decoder (:mod:`gbsearch.voxel.nets`)
and the diffusion U-Net (:mod:`gbsearch.diffusion.unet`) pad by hand with this one function
and run their convolutions with padding=0. It lives outside both packages so that neither has
to import the other (the voxel codec knows nothing of diffusion and vice versa).
"""
from __future__ import annotations

import torch


def pad_per_axis(x: torch.Tensor, pad: int, periodic, zeros: bool = True) -> torch.Tensor:
    """Pad the 3 spatial axes of x [B, C, X, Y, Z] by ``pad`` voxels on each side:
    circular on axes where ``periodic`` (3 bools for x, y, z) is True, zeros on the others
    (``zeros=False``: open axes are left unpadded, for a convolution that zero-pads them itself).

    Written out by hand (one allocation, interior copy, border copies) rather than with
    F.pad(mode="circular"), which returns a standard-layout tensor and so would force a layout
    conversion before every channels_last_3d convolution on the GPU; the output keeps the
    input's memory format. Only copies values, so the result is exact in any dtype.
    A pad larger than a periodic axis wraps more than once (by index); that case is rare
    (kernels wider than tiny test grids) and takes a slower path.
    """
    if pad == 0 or not (zeros or any(periodic)):
        return x
    b, c, *n = x.shape
    # Graph export (TorchScript tracing for ONNX / OpenVINO, torch.export) does not follow the
    # in-place border copies below (ONNX export silently drops them; OpenVINO refuses the graph),
    # so it takes the by-index path, which has none.
    if any(per and pad > k for k, per in zip(n, periodic)) or torch.jit.is_tracing() \
            or torch.compiler.is_exporting():
        return _pad_by_index(x, pad, periodic, zeros)
    widen = [pad if (per or zeros) else 0 for per in periodic]
    cl = x.is_contiguous(memory_format=torch.channels_last_3d) and not x.is_contiguous()
    out = torch.empty((b, c, *(k + 2 * w for k, w in zip(n, widen))), dtype=x.dtype, device=x.device,
                      memory_format=torch.channels_last_3d if cl else torch.contiguous_format)
    out[(slice(None), slice(None), *(slice(w, w + k) for k, w in zip(n, widen)))] = x
    # Axis by axis, each border slab spans the full (padded) extent of the other axes, so the
    # later axes overwrite the corners with the right values.
    for d, (k, per, w) in enumerate(zip(n, periodic, widen), start=2):
        if w == 0:
            continue
        lo, hi = out.narrow(d, 0, pad), out.narrow(d, k + pad, pad)
        if per:
            lo.copy_(out.narrow(d, k, pad))
            hi.copy_(out.narrow(d, pad, pad))
        else:
            lo.zero_()
            hi.zero_()
    return out


def _pad_by_index(x: torch.Tensor, pad: int, periodic, zeros: bool = True) -> torch.Tensor:
    """Same result as :func:`pad_per_axis`, for pads wider than a periodic axis and for graph
    export: wrap indices modulo the axis length (index_select), zeros on open axes. Output in
    the standard layout."""
    import torch.nn.functional as F

    for k, per in enumerate(periodic):
        dim = 2 + k
        if per:
            idx = torch.arange(-pad, x.shape[dim] + pad, device=x.device) % x.shape[dim]
            x = x.index_select(dim, idx)
        elif zeros:
            spec = [0, 0] * 3
            spec[2 * (2 - k)] = spec[2 * (2 - k) + 1] = pad   # F.pad lists the last axis first
            x = F.pad(x, spec)
    return x
