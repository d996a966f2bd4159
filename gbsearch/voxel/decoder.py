"""Learned voxel → atom decoder (SPEC §3.2, paper Eqs. 3–6).

Three small 3D ConvNeXt modules act on voxels in scaled units (V / s):
denoiser D (V̂ = V + D-correction), classifier C (per-voxel logit "an atom overlaps this voxel
by more than 0.05") and regressor R (per-voxel offset from the voxel centre to that atom, in
voxel units). Decoding keeps voxels with σ(C(V̂)) > 0.5, places an atom at c_i + R_i(V̂)·l,
and merges candidates closer than ``merge_distance`` (periodic-aware), averaging them.
"""
from __future__ import annotations

import functools
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from gbsearch.checkpoint_io import read_checkpoint_file
from gbsearch.errors import CheckpointError
from gbsearch.geometry.material import TUNGSTEN
from gbsearch.geometry.periodic import minimum_image
from gbsearch.io_utils import atomic_path
from gbsearch.voxel.grid import VoxelGrid
from gbsearch.voxel.nets import ConvNeXt3d

CHECKPOINT_FORMAT = "gbsearch-voxel-decoder/1"
DEFAULT_PATH = Path(__file__).resolve().parent.parent / "data" / "decoder_W.pt"


@dataclass
class DecoderConfig:
    """Self-description stored in every checkpoint."""
    width: int = 64                 # hidden features of each ConvNeXt
    depth: int = 2                  # ConvNeXt blocks per module
    kernel: int = 7                 # depthwise kernel edge (voxels)
    expansion: int = 2              # pointwise MLP expansion
    scale: float = 0.048            # s: std of voxel values; networks see V / s
    spacing: float = 0.5            # target voxel edge (Å) the decoder was trained at
    periodic: tuple = (True, True, False)   # periodicity of the training grids (GB slab)
    label_threshold: float = 0.05   # y_i = 1[max_j w_i(r_j) > threshold]
    merge_distance: float = 1.0     # Å, default clustering radius at decode time
    element: str = TUNGSTEN.symbol
    extra: dict = field(default_factory=dict)


class VoxelDecoder(nn.Module):
    """Denoiser D, classifier C and regressor R; all take and give voxel arrays (B, X, Y, Z)."""

    def __init__(self, config: DecoderConfig | None = None):
        super().__init__()
        self.config = config or DecoderConfig()
        c = self.config
        kw = dict(width=c.width, depth=c.depth, kernel=c.kernel, expansion=c.expansion)
        self.denoiser = ConvNeXt3d(1, 1, zero_head=True, **kw)
        self.classifier = ConvNeXt3d(1, 1, **kw)
        self.regressor = ConvNeXt3d(1, 3, **kw)

    def denoise(self, x: torch.Tensor, periodic) -> torch.Tensor:
        """Scaled voxels (B, X, Y, Z) → denoised scaled voxels (residual correction)."""
        return x + self.denoiser(x.unsqueeze(1), periodic).squeeze(1)

    def classify(self, x: torch.Tensor, periodic) -> torch.Tensor:
        """Scaled voxels → per-voxel occupancy logits (B, X, Y, Z)."""
        return self.classifier(x.unsqueeze(1), periodic).squeeze(1)

    def regress(self, x: torch.Tensor, periodic) -> torch.Tensor:
        """Scaled voxels → per-voxel offsets (B, X, Y, Z, 3), voxel units."""
        return self.regressor(x.unsqueeze(1), periodic).movedim(1, -1)

    def forward(self, voxels: torch.Tensor, periodic=None):
        """Raw voxels (encoder units) → (denoised raw voxels, logits, offsets in voxel units)."""
        periodic = tuple(self.config.periodic if periodic is None else periodic)
        x = self.denoise(voxels / self.config.scale, periodic)
        return x * self.config.scale, self.classify(x, periodic), self.regress(x, periodic)


def decoder_loss(model: VoxelDecoder, voxels: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor,
                 periodic, sigma_max: float = 0.2, sigma_min: float = 0.002, p_clean: float = 0.2,
                 weights=(1.0, 1.0, 1.0), generator: torch.Generator | None = None) -> dict:
    """L = L_den + L_cls + L_coord for a batch of clean raw voxels with their targets.

    Denoiser: noise σ (scaled units) log-uniform in [sigma_min, sigma_max], or 0 with
    probability p_clean; L_den = mean (D(x + σε) − x)². C and R see the denoiser's output
    (gradient stopped) so they learn on what inference feeds them. L_cls = BCE vs labels;
    L_coord = mean squared offset error (voxel units²) over labelled voxels.
    """
    s = model.config.scale
    x = voxels / s
    B, dev = x.shape[0], x.device
    u = torch.rand(B, 2, device=dev, generator=generator)
    sig = torch.exp(np.log(sigma_min) + u[:, 0] * (np.log(sigma_max) - np.log(sigma_min)))
    sig = torch.where(u[:, 1] < p_clean, torch.zeros_like(sig), sig).view(B, 1, 1, 1)
    noisy = x + sig * torch.randn(x.shape, device=dev, generator=generator)
    den = model.denoise(noisy, periodic)
    l_den = F.mse_loss(den.float(), x.float())
    xin = den.detach()
    logits = model.classify(xin, periodic).float()
    l_cls = F.binary_cross_entropy_with_logits(logits, labels.float())
    off = model.regress(xin, periodic).float()
    m = labels.unsqueeze(-1).float()
    l_coord = ((off - targets.float()) ** 2 * m).sum() / (m.sum() * 3).clamp_min(1.0)
    wd, wc, wr = weights
    total = wd * l_den + wc * l_cls + wr * l_coord
    return {"loss": total, "den": l_den.detach(), "cls": l_cls.detach(), "coord": l_coord.detach()}


# ---------------------------------------------------------------- merging candidate positions

def merge_positions(pos: np.ndarray, weights: np.ndarray, grid: VoxelGrid, merge_distance: float) -> np.ndarray:
    """Cluster positions (M, 3) Å closer than merge_distance (minimum image on periodic axes)
    and return the weighted mean of each cluster, wrapped into the box on periodic axes."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components
    from scipy.spatial import cKDTree

    if len(pos) == 0:
        return np.zeros((0, 3))
    L = np.array(grid.lengths)
    o = np.array(grid.origin)
    per = np.array(grid.periodic)
    rel = pos - o
    rel[:, per] = np.mod(rel[:, per], L[per])
    # cKDTree wraps every axis of a boxsize; give open axes a box wide enough never to wrap.
    lo = rel.min(axis=0)
    box = L.copy()
    shifted = rel.copy()
    shifted[:, ~per] -= lo[~per]
    box[~per] = shifted[:, ~per].max(axis=0) + 3 * merge_distance + 1.0
    shifted[:, per] = np.minimum(shifted[:, per], np.nextafter(L[per], 0))  # mod can give L
    tree = cKDTree(shifted, boxsize=box)
    pairs = tree.query_pairs(merge_distance, output_type="ndarray")
    n = len(pos)
    graph = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    ncl, lab = connected_components(graph, directed=False)
    ref = np.full(ncl, -1)
    ref[lab[::-1]] = np.arange(n)[::-1]      # first member of each cluster
    d = minimum_image(rel - rel[ref[lab]], L, per)
    w = np.maximum(weights, 1e-6)
    wsum = np.bincount(lab, weights=w, minlength=ncl)
    mean = np.stack([np.bincount(lab, weights=w * d[:, k], minlength=ncl) for k in range(3)], 1) / wsum[:, None]
    out = rel[ref] + mean
    out[:, per] = np.mod(out[:, per], L[per])
    return out + o


# ---------------------------------------------------------------- inference

@torch.no_grad()
def decode(voxels: torch.Tensor, grid: VoxelGrid, model: VoxelDecoder | None = None,
           merge_distance: float | None = None, threshold: float = 0.5, batch_size: int = 8,
           precision: str = "auto") -> list[np.ndarray]:
    """Raw voxels (B, X, Y, Z) or (X, Y, Z) on ``grid`` → list of atom positions (N_b, 3) in Å.

    Uses the shipped W decoder when ``model`` is None; runs on the voxels' device; precision as
    for :func:`decoder_points`.
    """
    if model is None:
        model = load_decoder(device=voxels.device)
    merge = model.config.merge_distance if merge_distance is None else merge_distance
    return [merge_positions(p, w, grid, merge)
            for p, w in decoder_points(voxels, grid, model, threshold=threshold, batch_size=batch_size,
                                       precision=precision)]


@torch.no_grad()
def decoder_points(voxels: torch.Tensor, grid: VoxelGrid, model: VoxelDecoder, threshold: float = 0.5,
                   batch_size: int = 8, precision: str = "auto") -> list[tuple[np.ndarray, np.ndarray]]:
    """The network half of :func:`decode`: per sample, the candidate atom positions (M, 3) Å of
    the voxels classified occupied and their denoised densities (M,) as merge weights. The
    other half, :func:`merge_positions`, is plain CPU work that a caller may overlap with the
    next batch's network (``GBGenerator.generate`` does on a GPU).

    precision: "fp32", "bf16" (autocast; channels-last on a CPU, where oneDNN's bf16 3D
    convolutions are fastest so), or "auto": bf16 where the hardware computes it natively (a GPU,
    a CPU with AVX512-BF16/AMX), else fp32. On 2 Zen 4 cores one 28x28x64 window took 0.27 s in
    bf16 against 0.81 s in fp32 (one thread); the round trip on reference structures is the same
    (README, Voxel codec: bench/bench_codec.py --precision)."""
    if voxels.dim() == 3:
        voxels = voxels.unsqueeze(0)
    if tuple(voxels.shape[1:]) != grid.shape:
        raise ValueError(f"voxels of shape {tuple(voxels.shape[1:])} do not match grid {grid.shape}")
    model.eval()
    p = next(model.parameters())
    amp = _decoder_amp(p.device, precision)
    if amp is not None and p.device.type == "cpu":
        model.to(memory_format=torch.channels_last_3d)      # layout only: the values are unchanged
    centers = grid.centers().reshape(-1, 3)
    h = np.array(grid.spacing)
    out = []
    for start in range(0, voxels.shape[0], batch_size):
        v = voxels[start:start + batch_size].to(device=p.device, dtype=p.dtype)
        with amp or nullcontext():
            vhat, logits, off = (r.float() for r in model(v, grid.periodic))
        keep = (torch.sigmoid(logits) > threshold).reshape(v.shape[0], -1).cpu().numpy()
        off = off.reshape(v.shape[0], -1, 3).double().cpu().numpy()
        vw = vhat.reshape(v.shape[0], -1).double().cpu().numpy()
        for b in range(v.shape[0]):
            k = keep[b]
            out.append((centers[k] + off[b, k] * h, vw[b, k]))
    return out


def _decoder_amp(device: torch.device, precision: str):
    """The bf16 autocast context the decoder runs in, None for fp32."""
    if precision not in ("auto", "bf16", "fp32"):
        raise ValueError(f"decoder precision must be auto, bf16 or fp32, not {precision!r}")
    if precision == "fp32":
        return None
    if precision == "auto" and device.type != "cuda":
        from gbsearch.diffusion.sampler import cpu_has_bf16
        if not cpu_has_bf16():
            return None
    return torch.autocast(device.type, dtype=torch.bfloat16)


def decode_atoms(voxels: torch.Tensor, grid: VoxelGrid, symbol: str = TUNGSTEN.symbol, cell=None, pbc=None,
                 model: VoxelDecoder | None = None, **kw):
    """Like :func:`decode` but returns ``ase.Atoms`` (cell defaults to the grid box lengths,
    pbc to the grid periodicity); positions stay in the lab frame (Å)."""
    from ase import Atoms

    cell = np.diag(grid.lengths) if cell is None else cell
    pbc = grid.periodic if pbc is None else pbc
    return [Atoms([symbol] * len(p), positions=p, cell=cell, pbc=pbc)
            for p in decode(voxels, grid, model=model, **kw)]


# ---------------------------------------------------------------- checkpoints

def save_decoder(model: VoxelDecoder, path, provenance: dict | None = None, half: bool = True) -> None:
    """Write a self-describing inference checkpoint (config + weights, fp16 by default)."""
    sd = {k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
          for k, v in model.state_dict().items()}
    cfg = asdict(model.config)
    cfg["periodic"] = list(cfg["periodic"])
    # Atomic: training rewrites the best checkpoint while other processes may be loading it.
    with atomic_path(path) as tmp:
        torch.save({"format": CHECKPOINT_FORMAT, "config": cfg, "state_dict": sd,
                    "provenance": provenance or {}}, str(tmp))


def decoder_from_state(obj, source: str = "checkpoint") -> VoxelDecoder:
    """Build a float32 decoder from a loaded checkpoint dict; CheckpointError if it does not fit."""
    if not isinstance(obj, dict) or obj.get("format") != CHECKPOINT_FORMAT or "state_dict" not in obj:
        raise CheckpointError(f"{source} is not a gbsearch voxel-decoder checkpoint "
                              f"(expected format {CHECKPOINT_FORMAT!r})")
    try:
        cfg = dict(obj["config"])
        cfg["periodic"] = tuple(cfg["periodic"])
        model = VoxelDecoder(DecoderConfig(**cfg))
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()})
    except (TypeError, KeyError, RuntimeError, ValueError) as exc:
        raise CheckpointError(f"{source} does not match the voxel decoder: {exc}") from exc
    return model.eval()


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, device: str) -> VoxelDecoder:
    obj = read_checkpoint_file(path, CHECKPOINT_FORMAT, "voxel-decoder", required=("config", "state_dict"),
                               hint="train one with `gbsearch train-decoder --out <file>`")
    return decoder_from_state(obj, source=path).to(device)


def load_decoder(path=None, device="cpu") -> VoxelDecoder:
    """Load a decoder checkpoint (the shipped W decoder ``gbsearch/data/decoder_W.pt`` when
    path is None). Raises :class:`gbsearch.errors.CheckpointError` if missing/corrupt/mismatched.
    The model is shared between calls with the same path and device: do not train it in place."""
    path = DEFAULT_PATH if path is None else Path(path)
    return _load_cached(str(Path(path).resolve()), str(torch.device(device)))
