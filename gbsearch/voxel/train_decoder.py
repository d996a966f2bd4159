"""Training loop for the voxel decoder: AdamW, validation with round-trip metrics, checkpoints,
resume, tqdm progress; CUDA with bf16 autocast when available."""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from gbsearch.errors import CheckpointError
from gbsearch.io_utils import atomic_path
from gbsearch.voxel.dataset import StructurePool, voxel_scale
from gbsearch.voxel.decoder import DecoderConfig, VoxelDecoder, decode, decoder_loss, save_decoder
from gbsearch.voxel.encoder import encode, pad_positions, random_translation
from gbsearch.voxel.metrics import compare, summarize

ALL_KINDS = ("cubic", "rotated", "window", "surface", "gb")


@dataclass
class TrainConfig:
    out: str = "decoder.pt"             # inference checkpoint (best validation), fp16
    steps: int = 4000
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-2
    width: int = 64
    depth: int = 2
    kernel: int = 7
    expansion: int = 2
    spacing: float = 0.5                # target voxel edge, Å
    kinds: tuple = ALL_KINDS
    pool_per_kind: int = 200
    val_per_kind: int = 16
    val_every: int = 250
    sigma_max: float = 0.2              # denoiser noise range (scaled units)
    seed: int = 0
    time_limit_min: float | None = None # stop (and keep the best) after this many minutes
    device: str | None = None           # None: cuda if available else cpu
    resume: bool = False
    progress: bool = True
    kind_kwargs: dict = field(default_factory=dict)   # per kind, extra arguments of samples.sample


def _state_path(out) -> Path:
    out = Path(out)
    return out.with_name(out.stem + ".train.pt")


def validate(model: VoxelDecoder, val, device, sigma: float = 0.0, seed: int = 1234) -> dict:
    """Round-trip metrics on a list of (positions, grid) (already translated), plus noise σ
    (scaled units) added to the voxels when sigma > 0."""
    gen = torch.Generator(device="cpu").manual_seed(seed)
    res = []
    model.eval()
    for pos, g in val:
        p, m = pad_positions([pos], device=device, dtype=torch.float64)
        v = encode(p, g, m).float()
        if sigma > 0:
            v = v + sigma * model.config.scale * torch.randn(v.shape, generator=gen).to(device)
        pred = decode(v, g, model=model)[0]
        res.append(compare(pos, pred, g))
    return summarize(res)


def translated(pool: StructurePool, rng_seed: int):
    """Fixed random translation of each pool structure (held-out checks should not sit on the grid)."""
    gen = torch.Generator().manual_seed(rng_seed)
    out = []
    for pos, g in pool.items():
        p = torch.as_tensor(pos, dtype=torch.float64).unsqueeze(0)
        p, _ = random_translation(p, g, generator=gen)
        out.append((p[0].numpy(), g))
    return out


def train(cfg: TrainConfig) -> dict:
    """Train a decoder; writes cfg.out (best validation) and a resumable state next to it.
    Returns a summary dict (final step, best validation metrics, wall time)."""
    t_start = time.time()
    device = torch.device(cfg.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    train_pool = StructurePool(cfg.kinds, cfg.pool_per_kind, rng, spacing=cfg.spacing, kind_kwargs=cfg.kind_kwargs)
    val_pool = StructurePool(cfg.kinds, cfg.val_per_kind, np.random.default_rng(cfg.seed + 10_000),
                             spacing=cfg.spacing, kind_kwargs=cfg.kind_kwargs)
    val = translated(val_pool, cfg.seed + 20_000)
    scale = voxel_scale(train_pool)
    periodic = tuple(train_pool.grids[0].periodic) if len({g.periodic for g in train_pool.grids}) == 1 \
        else (True, True, False)
    model = VoxelDecoder(DecoderConfig(width=cfg.width, depth=cfg.depth, kernel=cfg.kernel,
                                       expansion=cfg.expansion, scale=scale, spacing=cfg.spacing,
                                       periodic=periodic)).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    # Learning rate: 100-step warm-up, halved after `patience` validations without improvement
    # (as for the paper's models), and with a time limit also a cosine decay over the budget.
    lr_scale, bad_evals, patience = 1.0, 0, 2
    step, best, history = 0, math.inf, []
    state_path = _state_path(cfg.out)
    if cfg.resume and state_path.is_file():
        try:
            st = torch.load(state_path, map_location=device, weights_only=False)
            model.config = DecoderConfig(**{**st["model_config"], "periodic": tuple(st["model_config"]["periodic"])})
            model.load_state_dict(st["model"])
            opt.load_state_dict(st["opt"])
            step, best, history = st["step"], st["best"], st["history"]
            lr_scale, bad_evals = st["lr_scale"], st["bad_evals"]
            rng = np.random.default_rng([cfg.seed, step])
        except Exception as exc:
            raise CheckpointError(f"cannot resume from {state_path}: {exc}") from exc
    use_amp = device.type == "cuda"
    gen = torch.Generator(device=device).manual_seed(cfg.seed + step)
    bar = None
    if cfg.progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=cfg.steps, initial=step, desc="train-decoder", unit="step")
    avg = {}
    last = {}
    while step < cfg.steps:
        if cfg.time_limit_min is not None and time.time() - t_start > 60 * cfg.time_limit_min:
            break
        model.train()
        v, y, t, g = train_pool.batch(cfg.batch_size, rng, device, generator=gen)
        frac = (step + 1) / cfg.steps
        if cfg.time_limit_min is not None:
            frac = max(frac, (time.time() - t_start) / (60 * cfg.time_limit_min))
        cos = 0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0)))
        for pg in opt.param_groups:
            pg["lr"] = cfg.lr * min(1.0, (step + 1) / 100) * lr_scale * cos
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_amp):
            losses = decoder_loss(model, v, y, t, g.periodic, sigma_max=cfg.sigma_max, generator=gen)
        opt.zero_grad(set_to_none=True)
        losses["loss"].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        for k, val_ in losses.items():
            x = float(val_.detach())
            avg[k] = 0.98 * avg.get(k, x) + 0.02 * x
        if bar is not None:
            bar.update(1)
            bar.set_postfix({k: f"{x:.2e}" for k, x in avg.items()}, refresh=False)
        if step % cfg.val_every == 0 or step == cfg.steps:
            last = _evaluate(model, val, device, cfg, step, avg, opt, history)
            if last["val_score"] < best:
                best, bad_evals = last["val_score"], 0
                save_decoder(model, cfg.out, provenance=_provenance(cfg, step, last))
            else:
                bad_evals += 1
                if bad_evals >= patience:
                    lr_scale, bad_evals = lr_scale * 0.5, 0
            with atomic_path(state_path) as tmp:   # a run killed while saving keeps the last state
                torch.save({"model": model.state_dict(), "model_config": _cfg_dict(model.config), "opt": opt.state_dict(),
                            "lr_scale": lr_scale, "bad_evals": bad_evals, "step": step, "best": best,
                            "history": history, "train_config": asdict(cfg)}, tmp)
    if bar is not None:
        bar.close()
    if not history or history[-1]["step"] != step:
        last = _evaluate(model, val, device, cfg, step, avg, opt, history)
        if last["val_score"] < best:
            best = last["val_score"]
            save_decoder(model, cfg.out, provenance=_provenance(cfg, step, last))
    return {"step": step, "best_val_score": best, "history": history, "wall_s": time.time() - t_start,
            "device": str(device), "scale": model.config.scale}


def _cfg_dict(c: DecoderConfig) -> dict:
    d = asdict(c)
    d["periodic"] = list(d["periodic"])
    return d


def _evaluate(model, val, device, cfg, step, avg, opt, history) -> dict:
    m = validate(model, val, device)
    # One number to rank checkpoints: wrong counts dominate, then position error (Å).
    score = (1.0 - m["exact_frac"]) + m["rmse"]
    rec = {"step": step, "lr": opt.param_groups[0]["lr"], **{f"train_{k}": v for k, v in avg.items()},
           "val_exact": m["exact_frac"], "val_rmse": m["rmse"], "val_missing": m["missing"],
           "val_extra": m["extra"], "val_score": score}
    history.append(rec)
    if cfg.progress:
        from tqdm.auto import tqdm
        tqdm.write(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in rec.items()}))
    return rec


def _provenance(cfg: TrainConfig, step: int, rec: dict) -> dict:
    return {"train_config": asdict(cfg), "step": step, "validation": rec}
