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
from gbsearch.io_utils import atomic_path
# Old import path: reading reference structures lives in the (torch-free) store package.
from gbsearch.store.database import in_window, load_reference_structures  # noqa: F401

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models"


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
                 upper_dz: list[float] | None = None, half: bool = True) -> Path:
    """Inference file: weights + configs + slab template + provenance, no optimizer.

    upper_dz: the training structures' upper-grain z offsets (Å, :meth:`SlabTemplate.upper_offset`);
    generation draws the fixed upper grain's height from them. half: store the weights as
    float16 (they load into float32 models; see :func:`half_weights`)."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    ckpt = read_checkpoint(checkpoint)
    for key in ("optimizer_state", "lr_scheduler_state"):
        ckpt[key] = None
    if ckpt.get("ema_state") is not None:
        # Sampling uses the averaged weights only; keeping both copies would double the file.
        ckpt["model_state"], ckpt["ema_state"] = ckpt["ema_state"], None
        provenance = {**provenance, "weights": "exponential moving average"}
    if half:
        ckpt["model_state"] = half_weights(ckpt["model_state"])
        provenance = {**provenance, "stored_dtype": "float16"}
    extra = {**(ckpt.get("extra") or {}), "template": template.to_dict(), "provenance": provenance}
    if upper_dz is not None:
        extra["upper_dz"] = [round(float(v), 5) for v in upper_dz]
    ckpt["extra"] = extra
    with atomic_path(target) as tmp:
        torch.save(ckpt, tmp)
    return target


def half_weights(state: dict) -> dict:
    """A state dict with its floating-point tensors stored as float16 (half the file).

    Sampling computes in bf16 (GPU, AMX/AVX512-BF16 CPUs), whose 8-bit mantissa is coarser than
    float16's 11 bits, so storing float16 changes no sample there; a float32 CPU path sees the
    weights rounded by at most 5e-4 relative. The shipped files then fit, with the reference
    library, in what a GPU call carries (64 MiB). Weights beyond float16's range are refused."""
    out = {}
    for k, v in state.items():
        if torch.is_tensor(v) and v.is_floating_point():
            if v.abs().max() > 6e4:
                raise ValueError(f"weight {k} exceeds float16's range; store this model in float32")
            v = v.half()
        out[k] = v
    return out


def bundled_model(boundary, variant: str = "full") -> Path | None:
    """Path of the shipped model for a boundary (TwistCSL or angle in degrees), None if none."""
    from gbsearch.geometry.csl import as_boundary
    path = MODEL_DIR / f"sigma{as_boundary(boundary).sigma}_{variant}.pt"
    return path if path.exists() else None


def model_sigmas(path: str | Path) -> set[int] | None:
    """The Σ values a model file serves: ``extra["boundaries"]`` when the model declares several
    (a list of Σ, or "any" for every boundary it can take), else its slab template's Σ."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.geometry.csl import find_twist_csl
    extra = read_checkpoint(path).get("extra") or {}
    declared = extra.get("boundaries")
    if declared == "any":
        return None
    if declared:
        return {int(v) for v in declared}
    if "template" not in extra:
        raise CheckpointError(f"{path} is a diffusion checkpoint without a GB slab template; "
                              "use the model.pt written at the end of `gbsearch train`")
    return {find_twist_csl(extra["template"]["misorientation"]).sigma}


def model_for(boundary, model: str | Path | None = None) -> Path:
    """The model file to in-paint ``boundary`` (a TwistCSL) with: ``model`` when given, else the
    bundled one. A model trained for another boundary is refused with both named, before any
    work is done (it would in-paint its own boundary's slabs under the requested title)."""
    if model is None:
        path = bundled_model(boundary)
        if path is None:
            s = boundary.sigma
            raise InputError(
                f"no bundled model for Σ{s} ({boundary.angle_deg:.2f}°). Make one with:\n"
                f"  gbsearch reference --misorientation {boundary.angle_deg:.2f} --out runs/ref-sigma{s}\n"
                f"  gbsearch train --reference runs/ref-sigma{s} --out runs/model-sigma{s}\n"
                f"then pass --model runs/model-sigma{s}/model.pt (or use --train to do both now)")
        return path
    path = Path(model)
    if not path.exists():
        raise InputError(f"model file not found: {path}")
    sigmas = model_sigmas(path)
    if sigmas is not None and boundary.sigma not in sigmas:
        served = ", ".join(f"Σ{v}" for v in sorted(sigmas))
        raise InputError(f"{path} is a model for {served}, not for the requested {boundary.label} "
                         "boundary; pass a model trained for it (or none, for the bundled one)")
    return path


@dataclass
class GBGenerator:
    """A loaded GB model ready to in-paint candidates."""
    model: torch.nn.Module
    scheduler: object
    meta: dict
    template: SlabTemplate
    device: torch.device

    @classmethod
    def load(cls, path: str | Path, device=None, *, precision: str = "autocast",
             compile: bool = False, runtime: str = "torch") -> "GBGenerator":
        """precision: "autocast" (fp32 weights, bf16 autocast where the hardware has it: what
        every quality figure of the README was measured with) or "bf16" (weights cast to
        bfloat16, GroupNorm in bf16 too: on the H200 76 against 97 ms per batch-64 forward; its
        candidates' quality has not been measured apart from a change of solver, so it is not the
        default). compile: torch.compile the network (CUDA; default mode; the first batch of each
        size compiles, about a minute). runtime: "torch", or "openvino" on a CPU (the network
        converted once, ~30 s, and run by OpenVINO at its default precision, bf16 on AMX /
        AVX512-BF16 CPUs: 2.2-2.4x torch's bf16 forward on a loaded 2-core machine, 1.1x over a
        whole idle generation; bench/bench_cpu_runtimes.py, bench/bench_generation.py; needs the
        ``openvino`` extra)."""
        from gbsearch.diffusion import load_checkpoint
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision not in ("bf16", "autocast"):
            raise ValueError(f"precision must be bf16 or autocast, not {precision!r}")
        model, scheduler, meta = load_checkpoint(path, device=device)
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        if runtime == "openvino":
            if device.type != "cpu":
                raise InputError("the openvino runtime runs on the CPU; use runtime torch on a GPU")
            from gbsearch.diffusion.cpu_runtime import OpenVINOModel, openvino_available
            if not openvino_available():
                raise InputError('runtime openvino needs the openvino package: pip install "gbsearch[openvino]"')
            grid_shape = tuple(meta["grid"]["shape"])
            model = OpenVINOModel(model, grid_shape, threads=torch.get_num_threads())
        elif runtime != "torch":
            raise ValueError(f"runtime must be torch or openvino, not {runtime!r}")
        if compile:
            model = torch.compile(model)
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

    @property
    def boundary(self):
        """The boundary (:class:`~gbsearch.geometry.csl.TwistCSL`) of the model's slab template."""
        from gbsearch.geometry.csl import find_twist_csl
        return find_twist_csl(self.template.misorientation)

    def generate(self, indices, seed: int = 0, *, steps: int, batch_size: int = 16,
                 progress: bool = False, on_batch=None, solver: str | None = None) -> list[Atoms]:
        """Unrelaxed candidates ``indices`` (an int n means 0…n−1), each with its fixed grains
        in-painted as known and the GB core generated. Candidate i depends on ``(seed, i)``
        only: its upper-grain shift and height and its starting noise are drawn from its own
        generator, so the same candidate comes out whichever batch it is drawn in or whichever
        other indices are asked for (up to floating-point differences between batch sizes).
        The known upper grain gets a random in-plane shift (a search variable, uniform over
        the CSL cell) and a z offset drawn from the training structures' (the model learned
        the free region for grains at those heights; the relaxation then finds the grain's
        height itself). Voxel densities are clipped to [0, 1] during sampling.

        steps: solver steps (network evaluations) per candidate; solver: a name of
        :data:`gbsearch.solvers.SOLVERS` (None: the model file's own DPM-Solver);
        on_batch(list of Atoms) is called as each batch is decoded (a campaign writes it to
        disk there)."""
        from tqdm.auto import tqdm

        from gbsearch.diffusion import sample
        from gbsearch.diffusion.schedule import ScheduleConfig, make_scheduler
        from gbsearch.voxel.decoder import decode, load_decoder

        indices = list(range(indices)) if isinstance(indices, int) else [int(i) for i in indices]
        grid = self.template.grid()
        mask = self.template.known_mask()
        dz_pool = np.asarray(self.upper_dz)
        decoder = load_decoder(device=self.device)
        scheduler = (self.scheduler if solver is None else
                     make_scheduler(ScheduleConfig.from_dict(self.meta["schedule_config"]), solver))
        edge = grid.lengths[0] / self.template.replicate[0]
        out = []
        bar = tqdm(total=len(indices), desc="generating candidates", unit="cand", disable=not progress)
        for start in range(0, len(indices), batch_size):
            batch = indices[start:start + batch_size]
            draws = [_candidate_draws(seed, i, edge, dz_pool, grid.shape) for i in batch]
            slabs = [self.template.build(shift=shift, dz=dz) for shift, dz, _ in draws]
            known = encode_slabs(slabs, grid)
            noise = torch.stack([eps for _, _, eps in draws])
            vox = sample(self.model, scheduler, grid.shape, len(batch), known=known, known_mask=mask,
                         noise=noise, steps=steps, scale=self.meta["data_scale"], device=self.device,
                         clip=(0.0, 1.0))
            positions = decode(vox[:, 0].float(), grid, model=decoder)
            done = []
            for i, slab, pos, (_, dz, _) in zip(batch, slabs, positions, draws):
                # info["shift"] comes from the slab at full precision: template.slab_for rebuilds it exactly.
                cand = assemble_candidate(slab, pos, grid, self.template.free_z_range(dz))
                cand.info.update(upper_dz=float(dz), candidate=i, seed=int(seed), nfe=int(steps),
                                 solver=solver or "dpm3-singlestep")
                done.append(cand)
            if on_batch is not None:
                on_batch(done)
            out.extend(done)
            bar.update(len(batch))
        bar.close()
        return out


def _candidate_draws(seed: int, index: int, edge: float, dz_pool: np.ndarray, shape):
    """Candidate ``index``'s own random draws: in-plane shift (Å), upper-grain z offset (Å) and
    starting noise [1, nx, ny, nz], from a generator seeded by (seed, index) alone."""
    rng = np.random.default_rng([seed, index])
    shift = rng.uniform(0, edge, 2)
    dz = float(rng.choice(dz_pool))
    gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
    return shift, dz, torch.randn((1, *shape), generator=gen)


def model_card(path: str | Path) -> str:
    """Human summary of a model file (template, training provenance)."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    ckpt = read_checkpoint(path)
    extra = ckpt.get("extra") or {}
    return json.dumps({"step": ckpt["step"], "data_scale": ckpt["data_scale"], "grid": ckpt["grid"],
                       "template": extra.get("template"), "provenance": extra.get("provenance")}, indent=2)
