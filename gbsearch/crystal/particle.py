"""Particle-based diffusion baseline (SPEC §5): a GNN score model on atom coordinates.

Positions are fractional coordinates of the periodic cube (N atoms, fixed). Graph ops are
plain torch: a cutoff graph by minimum image on the small cell, index_add for aggregation.

- Node encoder: MLP over Gaussian random Fourier features of the noise level (the node state
  carries no absolute position, so the model is translation invariant).
- Edge encoder: MLP over [edge vector, length] (Å, scaled by the cutoff) plus Gaussian random
  Fourier features of the length.
- Processor: MeshGraphNet layers, residual edge update e += MLP(e, h_i, h_j), then residual node
  update h += MLP(h, sum_j e_ij).
- Decoder: an MLP over (edge state, both node states) gives one weight per edge; the per-atom
  output is the weighted sum of its edge vectors (Å): the predicted displacement back to the
  clean structure, read as eps = -displacement / (sigma L) (score = -eps / sigma). Summing
  edge vectors keeps the output equivariant to the cubic operations and learns much faster
  than a per-node 3-vector head (which stayed at loss ~0.92 after 800 CPU steps).
- Options (ParticleConfig; both on in the shipped models since the second round): random
  Fourier features of the edge-vector components (dir_fourier), and a free per-edge 3-vector
  added to the weighted edge sum (free_head), so an atom's output can be "edge minus a learned
  bond vector", which the edge sum alone cannot express. With hidden 64 these cut the loss at
  sigma = 0.04 from 0.26 to 0.11 (FCC).

VE schedule: x_t = x_0 + sigma(t) eps (wrapped), sigma(t) = sigma_max * t, t in [0, 1],
sigma_max = 0.4 (fractional; the wrapped normal at 0.4 is within 5 % of uniform).
Denoising score matching with eps targets (Tweedie holds for the wrapped normal with the
unwrapped eps as the latent); by default half of each batch draws sigma uniformly from
[0.01, 0.14] (the range the displaced starts pass through), and the EMA weights are returned. Samplers: probability-flow ODE (Euler) and reverse SDE
(Euler-Maruyama), started from uniform random positions (t = 1) or from the crystal with a
displacement sigma_max * p * eps (started at t = p).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from gbsearch.checkpoint_io import CheckpointError, read_checkpoint_file

from .phases import NN, PhaseSpec, cubic_ops, perfect_fractional, phase_spec


SIGMA_MAX = 0.4      # fractional coordinates: the VE schedule's end, close to uniform


@dataclass
class ParticleConfig:
    hidden: int = 32
    layers: int = 3
    n_fourier: int = 16
    fourier_scale: float = 4.0
    cutoff: float = 1.35 * NN       # Å
    L: float = 10.0                 # cell edge (Å), set per phase
    sigma_max: float = SIGMA_MAX
    sigma_min: float = 1e-3
    free_head: int = 0              # 1: add a free per-edge 3-vector to the edge-vector sum
    dir_fourier: int = 0            # 1: also random Fourier features of the edge-vector components

    def to_dict(self) -> dict:
        return {k: (int(v) if isinstance(v, (int, np.integer)) else float(v)) for k, v in asdict(self).items()}


def mlp(i: int, h: int, o: int, norm: bool = True) -> nn.Sequential:
    layers = [nn.Linear(i, h), nn.SiLU(), nn.Linear(h, o)]
    if norm:
        layers.append(nn.LayerNorm(o))
    return nn.Sequential(*layers)


class GaussianFourier(nn.Module):
    def __init__(self, n: int, scale: float, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.register_buffer("w", torch.randn(n, generator=g) * scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [...]-> [..., 2n]
        a = 2 * math.pi * x[..., None] * self.w
        return torch.cat([torch.sin(a), torch.cos(a)], -1)


def radius_graph(x: torch.Tensor, L: float, cutoff: float):
    """x [B, N, 3] fractional -> (src, dst [E] flat node ids, vec [E, 3] Å from src to dst)."""
    B, N, _ = x.shape
    d = x[:, None, :, :] - x[:, :, None, :]          # [B, i, j, 3]: x_j - x_i
    d = (d - torch.round(d)) * L
    r2 = (d * d).sum(-1)
    eye = torch.eye(N, dtype=torch.bool, device=x.device)
    keep = (r2 < cutoff * cutoff) & ~eye
    b, i, j = keep.nonzero(as_tuple=True)
    return b * N + i, b * N + j, d[b, i, j]


class ParticleScoreNet(nn.Module):
    def __init__(self, cfg: ParticleConfig):
        super().__init__()
        self.cfg = cfg
        h, nf = cfg.hidden, cfg.n_fourier
        self.sigma_ff = GaussianFourier(nf, cfg.fourier_scale, seed=1)
        self.len_ff = GaussianFourier(nf, cfg.fourier_scale, seed=2)
        self.node_enc = mlp(2 * nf, h, h)
        if cfg.dir_fourier:
            self.dir_ff = GaussianFourier(nf, cfg.fourier_scale, seed=3)
        self.edge_enc = mlp(4 + 2 * nf + (6 * nf if cfg.dir_fourier else 0), h, h)
        self.edge_mlps = nn.ModuleList([mlp(3 * h, h, h) for _ in range(cfg.layers)])
        self.node_mlps = nn.ModuleList([mlp(2 * h, h, h) for _ in range(cfg.layers)])
        # decoder: MLP over (edge, both nodes) -> one weight per edge; the per-atom output is the
        # weighted sum of its edge vectors (Å), i.e. the predicted displacement to the clean
        # structure; eps = -displacement / (sigma L). Zero-initialised last layer (eps = 0 at start).
        self.dec = mlp(3 * h, h, 1, norm=False)
        nn.init.zeros_(self.dec[-1].weight)
        nn.init.zeros_(self.dec[-1].bias)
        if cfg.free_head:
            # optional: a free 3-vector per edge (Å), summed per atom, so the output can be
            # r_ij - b (edge minus a learned bond vector), which the weighted edge sum alone
            # cannot express. Zero-initialised: adding it to a trained model changes nothing.
            self.dec_free = mlp(3 * h, h, 3, norm=False)
            nn.init.zeros_(self.dec_free[-1].weight)
            nn.init.zeros_(self.dec_free[-1].bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x [B, N, 3] fractional, sigma [B] -> predicted eps [B, N, 3]."""
        B, N, _ = x.shape
        c = self.cfg
        src, dst, vec = radius_graph(x, c.L, c.cutoff)
        r = vec.norm(dim=-1, keepdim=True)
        feats = [vec / c.cutoff, r / c.cutoff, self.len_ff(r[:, 0] / c.cutoff)]
        if c.dir_fourier:
            feats.append(self.dir_ff(vec / c.cutoff).flatten(1))
        e = self.edge_enc(torch.cat(feats, -1))
        s = torch.log(sigma / c.sigma_max).clamp_min(-10) / 4.0
        h = self.node_enc(self.sigma_ff(s))[:, None, :].expand(B, N, -1).reshape(B * N, -1)
        for em, nm in zip(self.edge_mlps, self.node_mlps):
            e = e + em(torch.cat([e, h[src], h[dst]], -1))
            agg = torch.zeros_like(h).index_add_(0, src, e)
            h = h + nm(torch.cat([h, agg], -1))
        eh = torch.cat([e, h[src], h[dst]], -1)
        msg = self.dec(eh) * vec
        if c.free_head:
            msg = msg + self.dec_free(eh) * (c.cutoff / 12.0)
        disp = torch.zeros(B * N, 3, dtype=x.dtype, device=x.device).index_add_(0, src, msg)
        return (-disp / (sigma.repeat_interleave(N)[:, None] * c.L)).view(B, N, 3)


# ------------------------------------------------------------------ data / training

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


def dsm_loss(model: ParticleScoreNet, x0: torch.Tensor, gen: torch.Generator,
             focus: float = 0.0, focus_range: tuple[float, float] = (0.01, 0.14)) -> torch.Tensor:
    """Denoising score matching on eps. Noise levels: half linear-uniform t, half log-uniform
    down to sigma_min; with focus > 0, that fraction of the batch instead draws sigma uniformly
    from focus_range (the range the displaced starts integrate through)."""
    c = model.cfg
    B = x0.shape[0]
    lo = c.sigma_min / c.sigma_max
    t_lin = torch.rand(B, generator=gen) * (1 - lo) + lo          # the linear schedule's t
    t_log = lo ** torch.rand(B, generator=gen)                     # log-uniform: more small sigmas
    t = torch.where(torch.rand(B, generator=gen) < 0.5, t_lin, t_log)
    sigma = c.sigma_max * t
    if focus > 0:
        a, b = focus_range
        s_f = a + (b - a) * torch.rand(B, generator=gen)
        sigma = torch.where(torch.rand(B, generator=gen) < focus, s_f, sigma)
    # random numbers come from the CPU generator (same stream on every device)
    eps = torch.randn(x0.shape, generator=gen)
    return eps_mse(model, x0, sigma.to(x0.device), eps.to(x0.device))


def eps_mse(model: ParticleScoreNet, x0: torch.Tensor, sigma: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """Mean squared error of the predicted eps for x0 noised by sigma [B] * eps (wrapped)."""
    xt = torch.remainder(x0 + sigma[:, None, None] * eps, 1.0)
    return ((model(xt, sigma) - eps) ** 2).mean()


def train_particle(spec: PhaseSpec | str, steps: int = 2000, batch_size: int = 16, lr: float = 2e-3,
                   seed: int = 0, hidden: int = 64, layers: int = 3, max_time: float | None = None,
                   log_every: int = 100, progress: bool = False, init=None, focus: float = 0.5,
                   focus_range: tuple[float, float] = (0.01, 0.14), ema: float = 0.995,
                   free_head: bool = True, dir_fourier: bool = True, cutoff_nn: float = 1.35,
                   device: str | torch.device = "cpu"):
    """Train on one phase; returns (model, history [{step, loss}]) with the model on the CPU.

    init: a checkpoint path (or model) to continue from (its config wins over hidden/layers);
    focus/focus_range: see dsm_loss; ema > 0: the returned model holds the EMA weights;
    cutoff_nn: graph cutoff in nearest-neighbour distances (capped at 0.49 L for minimum image)."""
    import copy
    import time
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    torch.manual_seed(seed)
    if init is not None:
        model = load_particle(init, free_head=free_head) if isinstance(init, (str, Path)) else init
        model.train()
    else:
        cfg = ParticleConfig(hidden=hidden, layers=layers, L=spec.L, cutoff=min(cutoff_nn * NN, 0.49 * spec.L),
                             free_head=int(free_head), dir_fourier=int(dir_fourier))
        model = ParticleScoreNet(cfg)
    model.to(device)
    ema_model = copy.deepcopy(model).eval() if ema > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    gen = torch.Generator().manual_seed(seed)
    hist, run, t0 = [], [], time.monotonic()
    for step in range(1, steps + 1):
        # cosine decay to 5 % over whichever ends first, the steps or max_time, so that a
        # time-limited run still ends at a low learning rate
        frac = step / steps
        if max_time is not None:
            frac = max(frac, (time.monotonic() - t0) / max_time)
        for g in opt.param_groups:
            g["lr"] = lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))
        x0 = crystal_batch(spec, batch_size, gen, noise_A=0.02).to(device)
        loss = dsm_loss(model, x0, gen, focus, focus_range)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if ema_model is not None:
            with torch.no_grad():
                for pe, pm in zip(ema_model.parameters(), model.parameters()):
                    pe.lerp_(pm, 1 - ema)
        run.append(loss.item())
        if step % log_every == 0 or step == steps:
            hist.append({"step": step, "loss": float(np.mean(run))})
            run = []
            if progress:
                print(hist[-1], flush=True)
        if frac >= 1.0 and step < steps:
            hist.append({"step": step, "loss": float(np.mean(run)) if run else hist[-1]["loss"]})
            break
    if ema_model is not None:
        model = ema_model
    model.to("cpu").eval()
    return model, hist


# ------------------------------------------------------------------ sampling

@torch.inference_mode()
def sample_particle(model: ParticleScoreNet, n: int, n_atoms: int, steps: int = 1000, method: str = "sde",
                    start: torch.Tensor | None = None, t_start: float = 1.0, seed: int = 0,
                    batch: int = 64, device: str | torch.device | None = None) -> torch.Tensor:
    """Reverse process from t_start to sigma_min; returns fractional positions [n, N, 3].

    start None: uniform random positions (the VE prior; use t_start = 1). Otherwise start
    [n, N, 3] fractional (e.g. the crystal displaced by sigma_max * t_start * eps).
    method: "ode" (probability flow, Euler) or "sde" (reverse SDE, Euler-Maruyama).
    Ends with one Tweedie denoising step at sigma_min. device: where the network runs (default:
    the model's; the model is moved there and left there); random numbers come from a CPU
    generator, so a seed gives the same noise anywhere.
    """
    if method not in ("ode", "sde"):
        raise ValueError("method must be 'ode' or 'sde'")
    c = model.cfg
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev)
    gen = torch.Generator().manual_seed(seed)
    outs = []
    for k in range(0, n, batch):
        m = min(batch, n - k)
        x = torch.rand(m, n_atoms, 3, generator=gen) if start is None else start[k:k + m].clone()
        x = x.to(dev)
        t_end = c.sigma_min / c.sigma_max
        ts = torch.linspace(t_start, t_end, steps + 1)
        for a, b in zip(ts[:-1], ts[1:]):
            sig = c.sigma_max * a
            eps = model(x, torch.full((m,), float(sig), device=dev))
            score = -eps / sig
            dt = float(a - b)
            g2 = 2 * c.sigma_max ** 2 * float(a)     # d sigma^2 / dt
            if method == "ode":
                x = x + 0.5 * g2 * score * dt
            else:
                x = x + g2 * score * dt + math.sqrt(g2 * dt) * torch.randn(x.shape, generator=gen).to(dev)
            x = torch.remainder(x, 1.0)
        sig = c.sigma_max * float(ts[-1])
        x = torch.remainder(x - sig * model(x, torch.full((m,), sig, device=dev)), 1.0)
        outs.append(x.cpu())
    return torch.cat(outs)


DISPLACEMENT_UNITS = ("d_nn", "sigma_max")


def start_time(spec: PhaseSpec | str, displacement: float, unit: str = "d_nn") -> float:
    """The schedule time t (= sigma / sigma_max) of a start displaced by ``displacement`` in ``unit``.

    d_nn: Gaussian displacement of std ``displacement`` × nearest-neighbour distance per Cartesian
    component, a measure of disorder that does not depend on the supercell; sigma_max: a fraction
    of the schedule's sigma_max (fractional coordinates), which does: 20 % of sigma_max is 0.32
    lattice spacings in the 4×4×4 SC cell but 0.16 in a 2×2×2 one."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    if unit == "sigma_max":
        return float(displacement)
    if unit == "d_nn":
        return float(displacement) * NN / (SIGMA_MAX * spec.L)
    raise ValueError(f"displacement unit must be one of {DISPLACEMENT_UNITS}, got {unit!r}")


def displaced_starts(spec: PhaseSpec, n: int, fraction: float, seed: int = 0) -> torch.Tensor:
    """n crystals (random translation/op) displaced by sigma_max * fraction * eps (fractional)."""
    gen = torch.Generator().manual_seed(seed)
    x0 = crystal_batch(spec, n, gen)
    return torch.remainder(x0 + SIGMA_MAX * fraction * torch.randn(x0.shape, generator=gen), 1.0)


def save_particle(model: ParticleScoreNet, path, provenance: dict | None = None) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"format": "gbsearch-crystal-particle", "config": model.cfg.to_dict(),
                "state": {k: v.half() if v.is_floating_point() and not k.endswith(".w") else v
                          for k, v in model.state_dict().items()},
                "provenance_json": json.dumps(provenance or {}, default=float)}, path)


def load_particle(path, free_head: bool | None = None) -> ParticleScoreNet:
    """Load a checkpoint; free_head=True adds a (zero-initialised) free head to one saved without."""
    obj = read_checkpoint_file(path, "gbsearch-crystal-particle", "crystal-particle", required=("config", "state"))
    cfg = dict(obj["config"])
    if free_head is not None and free_head and not cfg.get("free_head", 0):
        cfg["free_head"] = 1
    model = ParticleScoreNet(ParticleConfig(**cfg))
    missing, unexpected = model.load_state_dict({k: v.float() for k, v in obj["state"].items()}, strict=False)
    if unexpected or any(not k.startswith("dec_free.") for k in missing):
        raise CheckpointError(f"{path}: checkpoint mismatch: missing {missing}, unexpected {unexpected}")
    return model.eval()


@torch.no_grad()
def loss_at(model: ParticleScoreNet, spec: PhaseSpec | str, sigmas=(0.02, 0.04, 0.08, 0.12), n: int = 256,
            seed: int = 123, device: str | torch.device | None = None) -> dict[float, float]:
    """DSM loss (mean squared eps error) at fixed noise levels on n fresh crystals: a
    validation figure that does not depend on how training drew its noise levels. The model
    is moved to ``device`` (default: where it is) and left there."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model = model.to(dev).eval()
    out = {}
    for s in sigmas:
        gen = torch.Generator().manual_seed(seed)
        x0 = crystal_batch(spec, n, gen, noise_A=0.02)
        eps = torch.randn(x0.shape, generator=gen)
        # batches of 64 (the dense pair table grows as B N^2); equal sizes, so the mean of means
        errs = [eps_mse(model, x0[k:k + 64].to(dev), torch.full((len(x0[k:k + 64]),), s, device=dev),
                        eps[k:k + 64].to(dev)) * len(x0[k:k + 64]) for k in range(0, n, 64)]
        out[float(s)] = float(sum(errs) / n)
    return out
