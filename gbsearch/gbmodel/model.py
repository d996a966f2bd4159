"""GB diffusion models: training on a reference search, generation of candidate slabs.

Structure → voxels → model → voxels → structure: this module joins the slab template
(:mod:`gbsearch.gbmodel.slab_voxels`), the diffusion model (:mod:`gbsearch.diffusion`) and the voxel
decoder (:mod:`gbsearch.voxel`). It knows nothing of LAMMPS.
"""
from __future__ import annotations

import json
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from ase import Atoms

from gbsearch.errors import CheckpointError, InputError
from gbsearch.gbmodel.slab_voxels import GBVoxelDataset, SlabTemplate, assemble_candidate, encode_slabs
from gbsearch.io_utils import atomic_path
from gbsearch.voxel.decoder import merge_positions
# Old import path: reading reference structures lives in the (torch-free) store package.
from gbsearch.store.database import in_window, load_reference_structures  # noqa: F401

MODEL_DIR = Path(__file__).resolve().parents[1] / "data" / "models"
# The bundled model for every <100> twist boundary without a model of its own (issue 17).
TRANSFER_MODEL = "twist100_transfer.pt"
# Largest campaign cell (Å along each edge) a transferable model is run on: the network is
# local (fully convolutional) so it takes any grid, but it was trained on cells of 7-21 Å (40
# voxels at most) and a 60-voxel grid already costs 2.25x the Σ41 cell per candidate.
MAX_MODEL_EDGE = 30.0
# Solver steps per candidate of a diffusion model (not distilled) when none are asked for. SPEC §4
# samples with 60; on the full Σ5 model 20 gave the same best relaxed γ of 32 candidates (2.762
# against 2.756 J/m²) at a third of the cost, and on a CPU generation dominates a campaign.
# Re-checked blind to the window model's held-out [0.1, 0.5) (README, "Why these defaults").
DEFAULT_NFE = 20
# Bounds every data estimate is clamped to while sampling (data units): cloud-in-cell voxel
# densities lie in [0, 1] (see gbsearch.diffusion.sampler). On Σ5 the lower clamp adds the
# rectified noise floor to the free region's voxel total (up to ~22 atoms in an early step, under
# 1 by the last) but moves the decoded atom count by at most one atom (README, issue 17;
# bench/atom_counts.py --clip-low reruns the count).
DENSITY_CLIP = (0.0, 1.0)


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
    _export_run(Path(out_dir), {**(provenance or {}), "train_structures": len(trn), "val_structures": len(val),
                                "n_window": list(n_window) if n_window else None, "steps": res.step,
                                "best_val_loss": res.best_val_loss},
                template=template, upper_dz=[template.upper_offset(a) for a in structures])
    return res


def _export_run(out_dir: Path, record: dict, **export_kw) -> None:
    """OUT/model.pt from the best weights (the last without validation), and OUT/model_step_N.pt
    from each snapshot kept by TrainConfig.keep_every (to be chosen among by sampling, e.g.
    bench/atom_counts.py; each records its step)."""
    from gbsearch.diffusion.train import kept_snapshots
    best = out_dir / "best.pt"
    export_model(best if best.exists() else out_dir / "last.pt", out_dir / "model.pt", provenance=record, **export_kw)
    for step, snap in kept_snapshots(out_dir):
        export_model(snap, out_dir / f"model_{snap.name}", provenance={**record, "steps": step, "snapshot": True},
                     **export_kw)


def train_transfer_model(structures: list[Atoms], out_dir: str | Path, config=None, *, base_channels: int = 32,
                         val_fraction: float = 0.1, progress: bool = True, provenance: dict | None = None,
                         init_from: str | Path | None = None, prediction_type: str = "v_prediction",
                         **settings):
    """Train (or resume) one in-painting model on structures of several <100> twist boundaries
    (any replications; each (Σ, replication) on its own grid, batches drawn per boundary,
    :mod:`gbsearch.gbmodel.library_data`); writes OUT/last.pt, OUT/best.pt and OUT/model.pt, a
    model for any <100> twist boundary (:meth:`GBGenerator.load` with ``boundary=``).

    Validation takes ``val_fraction`` of every boundary and is reported per boundary;
    ``config.stop_patience`` stops the run when every boundary's validation loss has
    plateaued. init_from: a model file whose weights start a fresh run (e.g. a Σ5 model)."""
    from gbsearch.diffusion import ScheduleConfig, TrainConfig, UNetConfig, train
    from gbsearch.gbmodel.library_data import BoundaryLibraryDataset, split_by_boundary

    if config is not None and not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, not {type(config).__name__} (steps=N is a keyword)")
    config = (config or gb_train_config()).updated(**settings)
    trn, val = split_by_boundary(structures, val_fraction, config.seed)
    train_set = BoundaryLibraryDataset(trn, augment=True)
    val_set = BoundaryLibraryDataset(val, augment=False) if val else None
    model_cfg = UNetConfig(base_channels=base_channels, channel_mult=(1, 2), num_res_blocks=3,
                           periodic=(True, True, False))
    res = train(model_cfg, train_set, val_set, out_dir, config, schedule_cfg=ScheduleConfig(prediction_type=prediction_type),
                grid=None, progress=progress, init_from=init_from)
    any_template = next(iter(train_set.templates.values()))
    out_dir = Path(out_dir)
    counts = {f"Σ{s}": sum(len(train_set.datasets[k]) for k in train_set.keys if k[0] == s) for s in train_set.sigmas}
    record = {**(provenance or {}), "train_structures": counts, "val_structures": len(val),
              "steps": res.step, "best_val_loss": res.best_val_loss, "plateaued": res.plateaued,
              "init_from": str(init_from) if init_from else None}
    transfer = {"trained_on": train_set.sigmas,
                "template_settings": {k: v for k, v in any_template.to_dict().items()
                                      if k not in ("misorientation", "replicate")},
                "max_edge_A": MAX_MODEL_EDGE}
    _export_run(out_dir, record, template=None, upper_dz=train_set.upper_offsets(), transfer=transfer)
    return res


def export_model(checkpoint: Path, target: Path, template: SlabTemplate | None, provenance: dict,
                 upper_dz: list[float] | None = None, half: bool = True, transfer: dict | None = None,
                 distilled: dict | None = None) -> Path:
    """Inference file: weights + configs + slab template + provenance, no optimizer.

    upper_dz: the training structures' upper-grain z offsets (Å, :meth:`SlabTemplate.upper_offset`);
    generation draws the fixed upper grain's height from them. half: store the weights as
    float16 (they load into float32 models; see :func:`half_weights`). transfer: for a model of
    many boundaries (``template`` None): trained_on (list of Σ), template_settings (SlabTemplate
    fields but misorientation and replicate), max_edge_A. distilled: a few-step student's
    settings (times, default_steps, teacher; :mod:`gbsearch.gbmodel.distill`)."""
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
    if (template is None) == (transfer is None):
        raise ValueError("export_model needs exactly one of a template (one boundary) and transfer settings (many)")
    extra = {**(ckpt.get("extra") or {}), "provenance": provenance}
    if template is not None:
        extra["template"] = template.to_dict()
    else:
        extra.update(boundaries="any", **transfer)
    if distilled is not None:
        extra["distilled"] = distilled
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


def bundled_model(boundary, variant: str = "full", transfer: bool = True) -> Path | None:
    """Path of the shipped model for a boundary (TwistCSL or angle in degrees): its own
    ``sigmaΣ_{variant}.pt`` when there is one, else (variant "full", ``transfer``) the
    transferable :data:`TRANSFER_MODEL` when shipped; None if neither."""
    from gbsearch.geometry.csl import as_boundary
    path = MODEL_DIR / f"sigma{as_boundary(boundary).sigma}_{variant}.pt"
    if path.exists():
        return path
    shared = MODEL_DIR / TRANSFER_MODEL
    return shared if transfer and variant == "full" and shared.exists() else None


def model_sigmas(path: str | Path) -> set[int] | None:
    """The Σ values a model file serves: ``extra["boundaries"]`` when the model declares several
    (a list of Σ, or "any" for every boundary it can take: None), else its slab template's Σ."""
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


def model_trained_on(path: str | Path) -> list[int]:
    """Σ of the boundaries a model file was trained on."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    return _trained_on(read_checkpoint(path).get("extra") or {})


def _trained_on(extra: dict) -> list[int]:
    """Σ trained on, from a model file's extra: ``trained_on`` (a model of many boundaries),
    else its slab template's boundary."""
    from gbsearch.geometry.csl import find_twist_csl
    if "trained_on" in extra:
        return [int(v) for v in extra["trained_on"]]
    return [find_twist_csl(extra["template"]["misorientation"]).sigma]


def check_model_takes(path: str | Path, boundary, extra: dict | None = None) -> None:
    """InputError when a model for any boundary cannot take ``boundary``'s campaign cell
    (edge above its ``max_edge_A``, :data:`MAX_MODEL_EDGE` by default). extra: the model
    file's ``extra`` when already loaded (else it is read from ``path``)."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.gbmodel.slab_voxels import campaign_replicate
    from gbsearch.geometry.bicrystal import A0_W
    if extra is None:
        extra = read_checkpoint(path).get("extra") or {}
    limit = float(extra.get("max_edge_A", MAX_MODEL_EDGE))
    k = campaign_replicate(boundary)[0]
    edge = k * boundary.edge(A0_W)
    if edge > limit + 1e-9:
        largest = max((c for c in _twist_sigmas() if c.edge(A0_W) <= limit), key=lambda c: c.sigma)
        raise InputError(f"{boundary.label}: its CSL cell is {edge:.1f} Å wide, more than the {limit:g} Å "
                         f"{Path(path).name} takes (boundaries up to Σ{largest.sigma}, "
                         f"{largest.angle_deg:.2f}°); run `gbsearch reference -m {boundary.angle_deg:.2f}` "
                         "for this boundary instead")


def _twist_sigmas():
    from gbsearch.geometry.csl import csl_twist_angles
    return csl_twist_angles(101)


def model_for(boundary, model: str | Path | None = None) -> Path:
    """The model file to in-paint ``boundary`` (a TwistCSL) with: ``model`` when given, else the
    bundled one (the boundary's own, else the transferable one). A model trained for another
    boundary, or a cell too large for a transferable model, is refused with both named, before
    any work is done."""
    if model is None:
        path = bundled_model(boundary)
        if path is None:
            s = boundary.sigma
            raise InputError(
                f"no bundled model for Σ{s} ({boundary.angle_deg:.2f}°). Make one with:\n"
                f"  gbsearch reference --misorientation {boundary.angle_deg:.2f} --out runs/ref-sigma{s}\n"
                f"  gbsearch train --reference runs/ref-sigma{s} --out runs/model-sigma{s}\n"
                f"then pass --model runs/model-sigma{s}/model.pt (or use --train to do both now)")
    else:
        path = Path(model)
        if not path.exists():
            raise InputError(f"model file not found: {path}")
    sigmas = model_sigmas(path)
    if sigmas is None:
        check_model_takes(path, boundary)
    elif boundary.sigma not in sigmas:
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
    clip: tuple[float, float] = DENSITY_CLIP    # the sampler's clamp; a diagnostic may widen it

    @classmethod
    def load(cls, path: str | Path, device=None, *, precision: str = "autocast",
             compile: bool = False, runtime: str = "torch", boundary=None) -> "GBGenerator":
        """precision: "autocast" (fp32 weights, bf16 autocast where the hardware has it: what
        every quality figure of the README was measured with) or "bf16" (weights cast to
        bfloat16, GroupNorm in bf16 too: on the H200 76 against 97 ms per batch-64 forward; its
        candidates' quality has not been measured apart from a change of solver, so it is not the
        default). compile: torch.compile the network (CUDA; default mode; the first batch of each
        size compiles, about a minute). runtime: "torch", or "openvino" on a CPU (the network
        converted once, ~30 s, and run by OpenVINO at its default precision, bf16 on AMX /
        AVX512-BF16 CPUs: 2.2-2.4x torch's bf16 forward on a loaded 2-core machine, 1.1x over a
        whole idle generation; bench/bench_cpu_runtimes.py, bench/bench_generation.py; needs the
        ``openvino`` extra). boundary: the boundary (TwistCSL or angle, degrees) to in-paint;
        needed for a model of any boundary (its slab template is made for it,
        :meth:`SlabTemplate.for_boundary`), checked against a one-boundary model's own."""
        from gbsearch.diffusion import load_checkpoint
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if precision not in ("bf16", "autocast"):
            raise ValueError(f"precision must be bf16 or autocast, not {precision!r}")
        model, scheduler, meta = load_checkpoint(path, device=device)
        if device.type == "cuda":
            # Sampling runs the same few convolution shapes thousands of times: let cuDNN time its
            # algorithms once (process-wide, as training does) instead of taking its heuristic pick.
            torch.backends.cudnn.benchmark = True
        template = _template_of(path, meta, boundary)
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        if runtime == "openvino":
            if device.type != "cpu":
                raise InputError("the openvino runtime runs on the CPU; use runtime torch on a GPU")
            from gbsearch.diffusion.cpu_runtime import OpenVINOModel, openvino_available
            if not openvino_available():
                raise InputError('runtime openvino needs the openvino package: pip install "gbsearch[openvino]"')
            model = OpenVINOModel(model, template.grid().shape, threads=torch.get_num_threads())
        elif runtime != "torch":
            raise ValueError(f"runtime must be torch or openvino, not {runtime!r}")
        if compile:
            model = torch.compile(model)
        return cls(model, scheduler, meta, template, device)

    @property
    def misorientation(self) -> float:
        return self.template.misorientation

    @property
    def trained_on(self) -> list[int]:
        """Σ of the boundaries the model was trained on."""
        return _trained_on(self.meta.get("extra") or {})

    @property
    def upper_dz(self) -> list[float]:
        """Upper-grain z offsets (Å) of the training structures ([0.0] for older model files)."""
        return list((self.meta.get("extra") or {}).get("upper_dz") or [0.0])

    @property
    def boundary(self):
        """The boundary (:class:`~gbsearch.geometry.csl.TwistCSL`) of the model's slab template."""
        from gbsearch.geometry.csl import find_twist_csl
        return find_twist_csl(self.template.misorientation)

    @property
    def distilled(self) -> dict | None:
        """A distilled student's settings (``times`` it was trained at, ``default_steps``,
        teacher), None for a diffusion model sampled by a solver."""
        return (self.meta.get("extra") or {}).get("distilled")

    def sample_voxels(self, indices: list[int], seed: int, *, steps: int | None = None,
                      solver: str | None = None, on_step=None):
        """In-paint candidates ``indices`` in one batch: (voxels [n, 1, nx, ny, nz] in data
        units, their slabs, their draws (shift, dz, noise), their slabs' voxels (data units,
        what the known region is taken from)). See :meth:`generate`; on_step is the sampler's
        (teacher trajectories for distillation)."""
        from gbsearch.diffusion import sample
        from gbsearch.diffusion.distill import Conditioned, condition, student_times
        from gbsearch.diffusion.schedule import ScheduleConfig, make_scheduler

        grid = self.template.grid()
        mask = self.template.known_mask()
        edge = grid.lengths[0] / self.template.replicate[0]
        draws = [_candidate_draws(seed, i, edge, np.asarray(self.upper_dz), grid.shape) for i in indices]
        slabs = [self.template.build(shift=shift, dz=dz) for shift, dz, _ in draws]
        known = encode_slabs(slabs, grid, device=self.device)
        noise = torch.stack([eps for _, _, eps in draws])
        model, timesteps = self.model, None
        steps, solver = sampling_settings(self.meta.get("extra") or {}, steps, solver)
        if self.distilled:
            try:
                timesteps = student_times(self.distilled["times"], steps)
            except ValueError as exc:
                raise InputError(str(exc)) from None
            model = Conditioned(self.model, condition(known, mask, self.meta["data_scale"]))
        scheduler = make_scheduler(ScheduleConfig.from_dict(self.meta["schedule_config"]), solver)
        vox = sample(model, scheduler, grid.shape, len(indices), known=known, known_mask=mask,
                     noise=noise, steps=steps, scale=self.meta["data_scale"], device=self.device,
                     clip=self.clip, timesteps=timesteps, on_step=on_step)
        return vox, slabs, draws, known

    def generate(self, indices, seed: int = 0, *, steps: int | None = None, batch_size: int = 16,
                 progress: bool = False, on_batch=None, solver: str | None = None,
                 overlap: bool | None = None) -> list[Atoms]:
        """Unrelaxed candidates ``indices`` (an int n means 0…n−1), each with its fixed grains
        in-painted as known and the GB core generated. Candidate i depends on ``(seed, i)``
        only: its upper-grain shift and height and its starting noise are drawn from its own
        generator, so the same candidate comes out whichever batch it is drawn in or whichever
        other indices are asked for (up to floating-point differences between batch sizes).
        The known upper grain gets a random in-plane shift (a search variable, uniform over
        the CSL cell) and a z offset drawn from the training structures' (the model learned
        the free region for grains at those heights; the relaxation then finds the grain's
        height itself). Voxel densities are clipped to [0, 1] during sampling.

        steps: network evaluations per candidate (None: the model's own, :func:`sampling_settings`);
        solver: a name of :data:`gbsearch.solvers.SOLVERS` (None: the model's own: DPM-Solver-3,
        or first-order steps, the only ones a distilled model takes); on_batch(list of Atoms)
        is called as each batch is decoded (a campaign writes it to disk there), in order;
        overlap: merge and assemble each batch's atoms in threads while the next batch samples
        (None: on a GPU only; the candidates are the same either way)."""
        from tqdm.auto import tqdm

        from gbsearch.voxel.decoder import decoder_points, load_decoder

        steps, solver_name = sampling_settings(self.meta.get("extra") or {}, steps, solver)
        indices = list(range(indices)) if isinstance(indices, int) else [int(i) for i in indices]
        grid = self.template.grid()
        decoder = load_decoder(device=self.device)
        merge = decoder.config.merge_distance
        cuda = self.device.type == "cuda"
        overlap = cuda if overlap is None else overlap

        def finish(i, slab, points, dz) -> Atoms:
            """Merge decoded points into atoms and assemble the candidate (CPU work only)."""
            pos = merge_positions(*points, grid, merge)
            # info["shift"] comes from the slab at full precision: template.slab_for rebuilds it exactly.
            cand = assemble_candidate(slab, pos, grid, self.template.free_z_range(dz))
            cand.info.update(upper_dz=float(dz), candidate=i, seed=int(seed), nfe=int(steps), solver=solver_name)
            return cand

        out = []
        bar = tqdm(total=len(indices), desc="generating candidates", unit="cand", disable=not progress)

        def emit(done: list) -> None:
            if on_batch is not None:
                on_batch(done)
            out.extend(done)
            bar.update(len(done))

        # On a GPU the merging and assembly of one batch (5-15 ms a candidate, CPU) run in threads
        # while the GPU samples the next; batches are still handed on in order. On a CPU the
        # network takes the cores and a campaign's relaxations the rest, so it stays inline.
        pool = ThreadPoolExecutor(max_workers=_finish_threads()) if overlap else None
        pending: deque = deque()
        try:
            for start in range(0, len(indices), batch_size):
                batch = indices[start:start + batch_size]
                vox, slabs, draws, _ = self.sample_voxels(batch, seed, steps=steps, solver=solver)
                points = decoder_points(vox[:, 0].float(), grid, decoder, batch_size=64 if cuda else 8)
                jobs = [(i, slab, pts, dz) for i, slab, pts, (_, dz, _) in zip(batch, slabs, points, draws)]
                if pool is None:
                    emit([finish(*job) for job in jobs])
                    continue
                pending.append([pool.submit(finish, *job) for job in jobs])
                while len(pending) > 1:
                    emit([f.result() for f in pending.popleft()])
            while pending:
                emit([f.result() for f in pending.popleft()])
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
            bar.close()
        return out


def sampling_settings(extra: dict, steps: int | None = None, solver: str | None = None) -> tuple[int, str]:
    """(network evaluations per candidate, solver) of a generation with the model whose file's
    ``extra`` is given: those asked for, else the model's own: a distilled student's recorded
    steps with first-order ("ddim") steps at its trained time points, or DEFAULT_NFE steps of
    DPM-Solver-3. A student sampled with another solver is refused."""
    distilled = extra.get("distilled")
    if distilled:
        if solver not in (None, "ddim"):
            raise InputError(f"a distilled model is sampled with first-order steps at the times it was "
                             f"trained at (solver ddim), not {solver}")
        return int(steps or distilled["default_steps"]), "ddim"
    return int(steps or DEFAULT_NFE), solver or "dpm3-singlestep"


def model_sampling(path: str | Path, steps: int | None = None, solver: str | None = None) -> tuple[int, str]:
    """:func:`sampling_settings` of a model file."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    return sampling_settings(read_checkpoint(path).get("extra") or {}, steps, solver)


def _finish_threads() -> int:
    """Threads that merge and assemble decoded candidates beside GPU sampling."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


def _template_of(path, meta: dict, boundary) -> SlabTemplate:
    """The slab template a loaded model in-paints: its own (one-boundary model; ``boundary``,
    when given, must be it), or one made for ``boundary`` (a model of any boundary)."""
    from gbsearch.geometry.csl import as_boundary
    extra = meta.get("extra") or {}
    if extra.get("boundaries") == "any":
        if boundary is None:
            raise InputError(f"{path} is a model for any <100> twist boundary: name the boundary "
                             "(GBGenerator.load(path, boundary=ANGLE), --misorientation)")
        b = as_boundary(boundary)
        check_model_takes(path, b, extra)
        return SlabTemplate.for_boundary(b, **extra["template_settings"])
    if "template" not in extra:
        raise CheckpointError(f"{path} is a diffusion checkpoint without a GB slab template; "
                              "use the model.pt written at the end of `gbsearch train`")
    template = SlabTemplate.from_dict(extra["template"])
    grid = template.grid()
    if list(grid.shape) != list(meta["grid"]["shape"]):
        raise CheckpointError(f"{path}: grid {meta['grid']['shape']} does not match its template {grid.shape}")
    if boundary is not None and as_boundary(boundary).sigma != as_boundary(template.misorientation).sigma:
        raise InputError(f"{path} is a model for {as_boundary(template.misorientation).label}, "
                         f"not for {as_boundary(boundary).label}")
    return template


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
