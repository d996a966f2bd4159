"""GB diffusion models: training on a reference search, generation of candidate slabs.

Structure → voxels → model → voxels → structure: this module joins the slab template
(:mod:`gbsearch.gbmodel.slab_voxels`), the diffusion model (:mod:`gbsearch.diffusion`) and the voxel
decoder (:mod:`gbsearch.voxel`). It knows nothing of LAMMPS.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from gbsearch.errors import CheckpointError, InputError
from gbsearch.gbmodel.slab_voxels import GBVoxelDataset, SlabTemplate, assemble_candidate, encode_slabs

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models"


def in_window(n_frac: float, window: tuple[float, float]) -> bool:
    lo, hi = window
    return lo <= n_frac < hi if lo <= hi else (n_frac >= lo or n_frac < hi)


def load_reference_structures(reference: str | Path, n_window: tuple[float, float] | None = None) -> list[Atoms]:
    """Distinct relaxed reference structures of a campaign (folder or database path),
    optionally only those with lo <= [n] < hi ([n] is periodic: lo > hi means the window
    wraps through 0, i.e. [lo, 1) plus [0, hi))."""
    from gbsearch.store.database import CampaignDB, row_to_atoms
    path = Path(reference)
    db_path = path / "campaign.db" if path.is_dir() else path
    if not db_path.exists():
        raise InputError(f"no reference database at {db_path} (run `gbsearch reference --out {path}` first)")
    rows = CampaignDB(db_path).rows(source="reference", status="ok")
    out = []
    for row in rows:
        if n_window is None or in_window(row.n_frac, n_window):
            out.append(row_to_atoms(row))
    if not out:
        raise InputError(f"no ok reference structures in {db_path}"
                         + (f" with {n_window[0]} <= [n] < {n_window[1]}" if n_window else ""))
    return out


def gb_train_config(**settings):
    """The GB model's training settings: TrainConfig's defaults with the weight average on
    (EMA 0.999, what the shipped models use); keyword settings override them."""
    from gbsearch.diffusion import TrainConfig
    return TrainConfig(ema_decay=0.999).updated(**settings)


def train_gb_model(structures: list[Atoms], out_dir: str | Path, config=None, *, base_channels: int = 32,
                   val_fraction: float = 0.1, progress: bool = True, provenance: dict | None = None,
                   n_window=None, prediction_type: str = "v_prediction", **settings):
    """Train (or resume) an in-painting GB model; writes OUT/last.pt, OUT/best.pt and the
    self-contained OUT/model.pt (best weights + slab template) for ``gbsearch generate``.

    config: a gbsearch.diffusion.TrainConfig (default: `gb_train_config()`); keyword settings
    (steps=..., batch_size=..., lr=..., seed=..., max_time=..., ema_decay=..., ...) override
    its fields. config.seed also draws the validation split.
    v-prediction is the default: an ε-model's data estimate at the noisiest steps is its error
    divided by alpha_t (~0.006), and the shipped ε-models' samples ran away there."""
    from gbsearch.diffusion import ScheduleConfig, TrainConfig, UNetConfig, train

    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__} (steps=N is a keyword)")
    config = (config or gb_train_config()).updated(**settings)
    template = SlabTemplate.from_atoms(structures[0])
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(len(structures))
    n_val = max(1, int(round(val_fraction * len(structures)))) if len(structures) > 1 else 0
    val = [structures[i] for i in order[:n_val]]
    trn = [structures[i] for i in order[n_val:]] or val
    model_cfg = UNetConfig(base_channels=base_channels, channel_mult=(1, 2), num_res_blocks=3,
                           periodic=(True, True, False))
    res = train(model_cfg, GBVoxelDataset(trn, template, augment=True),
                GBVoxelDataset(val, template, augment=False) if val else None,
                out_dir, config, schedule_cfg=ScheduleConfig(prediction_type=prediction_type),
                grid=template.grid(), progress=progress)
    best = Path(out_dir) / "best.pt"
    export_model(best if best.exists() else Path(out_dir) / "last.pt", Path(out_dir) / "model.pt", template,
                 {**(provenance or {}), "train_structures": len(trn), "val_structures": len(val),
                  "n_window": list(n_window) if n_window else None, "steps": res.step,
                  "best_val_loss": res.best_val_loss},
                 upper_dz=[template.upper_offset(a) for a in structures])
    return res


def export_model(checkpoint: Path, target: Path, template: SlabTemplate, provenance: dict,
                 upper_dz: list[float] | None = None) -> Path:
    """Inference file: weights (fp32) + configs + slab template + provenance, no optimizer.

    upper_dz: the training structures' upper-grain z offsets (Å, :meth:`SlabTemplate.upper_offset`);
    generation draws the fixed upper grain's height from them."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    ckpt = read_checkpoint(checkpoint)
    for key in ("optimizer_state", "lr_scheduler_state"):
        ckpt[key] = None
    if ckpt.get("ema_state") is not None:
        # Sampling uses the averaged weights only; keeping both copies would double the file.
        ckpt["model_state"], ckpt["ema_state"] = ckpt["ema_state"], None
        provenance = {**provenance, "weights": "exponential moving average"}
    extra = {**(ckpt.get("extra") or {}), "template": template.to_dict(), "provenance": provenance}
    if upper_dz is not None:
        extra["upper_dz"] = [round(float(v), 5) for v in upper_dz]
    ckpt["extra"] = extra
    tmp = target.with_suffix(".tmp")
    torch.save(ckpt, tmp)
    tmp.replace(target)
    return target


def bundled_model(misorientation: float, variant: str = "full") -> Path | None:
    """Path of the shipped model for a misorientation (None if there is none)."""
    from gbsearch.geometry.csl import find_twist_csl
    csl = find_twist_csl(misorientation)
    path = MODEL_DIR / f"sigma{csl.sigma}_{variant}.pt"
    return path if path.exists() else None


@dataclass
class GBGenerator:
    """A loaded GB model ready to in-paint candidates."""
    model: torch.nn.Module
    scheduler: object
    meta: dict
    template: SlabTemplate
    device: torch.device

    @classmethod
    def load(cls, path: str | Path, device=None) -> "GBGenerator":
        from gbsearch.diffusion import load_checkpoint
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model, scheduler, meta = load_checkpoint(path, device=device)
        extra = meta.get("extra") or {}
        if "template" not in extra:
            raise CheckpointError(f"{path} is a diffusion checkpoint without a GB slab template; "
                                  "use the model.pt written at the end of `gbsearch train`")
        template = SlabTemplate.from_dict(extra["template"])
        grid = template.grid()
        if list(grid.shape) != list(meta["grid"]["shape"]):
            raise CheckpointError(f"{path}: grid {meta['grid']['shape']} does not match its template {grid.shape}")
        return cls(model, scheduler, meta, template, device)

    @property
    def misorientation(self) -> float:
        return self.template.misorientation

    @property
    def upper_dz(self) -> list[float]:
        """Upper-grain z offsets (Å) of the training structures ([0.0] for older model files)."""
        return list((self.meta.get("extra") or {}).get("upper_dz") or [0.0])

    def generate(self, n: int, seed: int = 0, batch_size: int = 16, steps: int = 60,
                 progress: bool = False) -> list[Atoms]:
        """``n`` unrelaxed candidates, each with its fixed grains in-painted as known and the
        GB core generated. The known upper grain gets a random in-plane shift (a search
        variable, uniform over the CSL cell) and a z offset drawn from the training
        structures' (the model learned the free region for grains at those heights; the
        relaxation then finds the grain's height itself). Voxel densities are clipped to
        [0, 1] during sampling."""
        from tqdm.auto import tqdm

        from gbsearch.diffusion import sample
        from gbsearch.voxel.decoder import decode, load_decoder

        grid = self.template.grid()
        mask = self.template.known_mask()
        dz_pool = np.asarray(self.upper_dz)
        rng = np.random.default_rng(seed)
        gen = torch.Generator().manual_seed(seed)
        decoder = load_decoder(device=self.device)
        edge = grid.lengths[0] / self.template.replicate[0]
        out = []
        bar = tqdm(total=n, desc="generating candidates", unit="cand", disable=not progress)
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            shifts = rng.uniform(0, edge, (b, 2))
            dzs = rng.choice(dz_pool, b)
            slabs = [self.template.build(shift=s, dz=d) for s, d in zip(shifts, dzs)]
            known = encode_slabs(slabs, grid)
            vox = sample(self.model, self.scheduler, grid.shape, b, known=known, known_mask=mask,
                         generator=gen, steps=steps, scale=self.meta["data_scale"], device=self.device,
                         clip=(0.0, 1.0))
            positions = decode(vox[:, 0].float(), grid, model=decoder)
            for slab, pos, d in zip(slabs, positions, dzs):
                # info["shift"] comes from the slab at full precision: template.slab_for rebuilds it exactly.
                cand = assemble_candidate(slab, pos, grid, self.template.free_z_range(d))
                cand.info["upper_dz"] = float(d)
                out.append(cand)
            bar.update(b)
        bar.close()
        return out


def model_card(path: str | Path) -> str:
    """Human summary of a model file (template, training provenance)."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    ckpt = read_checkpoint(path)
    extra = ckpt.get("extra") or {}
    return json.dumps({"step": ckpt["step"], "data_scale": ckpt["data_scale"], "grid": ckpt["grid"],
                       "template": extra.get("template"), "provenance": extra.get("provenance")}, indent=2)
