"""Few-step students of the GB models (issue 16).

A student is distilled from a shipped GB model (its teacher) on the teacher's own candidates:
the teacher in-paints candidates of its boundaries exactly as a campaign does (random shifts and
upper-grain heights, DPM-Solver-3 at DEFAULT_NFE steps), every trajectory is kept, and the
student learns to go from any state of a trajectory to its end
(:mod:`gbsearch.diffusion.distill`). No reference structure is read: a model trained with a
held-out window or boundary passes it on to its student unchanged, since the student only ever
sees what the teacher generates for the boundaries the teacher was trained on.

    gbsearch distill --model gbsearch/data/models/sigma5_full.pt --out runs/student5

The student's file is a GB model file like its teacher's (same template or transfer settings,
upper-grain heights), with ``extra["distilled"]``: the time points it was trained at, its
default number of steps and its teacher; :class:`~gbsearch.gbmodel.model.GBGenerator` samples it
with first-order steps at those time points.
"""
from __future__ import annotations

import time
from pathlib import Path

import torch

from gbsearch.errors import InputError

# The student's default evaluations per candidate; any of 1 … teacher steps works
# (gbsearch.diffusion.distill.student_times). Chosen on the full Σ5 model's student
# (bench/bench_solvers.py, seed 100, 32 candidates, anneal + CG, --blind-to 0.1 0.5 so that the
# held-out window model's [n] plays no part): 4 steps left 1.7 free atoms within 2.2 Å of a fixed
# one against 3.1 at 2 steps and put 12 % against 9 % of the candidates near the reference envelope
# (γ median 3.58 / 3.59 J/m²); at 1 step the core came out over-filled (344 free atoms against 304).
STUDENT_STEPS = 4
# Candidates of the teacher per trajectory seed: trajectory seeds start here, far from campaign
# seeds (0, 1, …), so that no campaign candidate is a training trajectory.
TRAJECTORY_SEED = 1_000_000


def teacher_record(gen, count: int, seed: int, *, steps: int, batch_size: int) -> dict:
    """Trajectories of the teacher ``gen`` (a :class:`GBGenerator`) for candidates 0 … count−1
    of ``seed``, as :class:`~gbsearch.diffusion.distill.TrajectorySet` takes them (with the
    known mask under "mask")."""
    from tqdm.auto import tqdm

    from gbsearch.diffusion.distill import TrajectoryRecorder, concat_records

    records = []
    for start in tqdm(range(0, count, batch_size), desc=f"teacher trajectories {gen.boundary.label}",
                      unit="batch", leave=False):
        indices = list(range(start, min(count, start + batch_size)))
        rec = TrajectoryRecorder()
        _, _, draws, known = gen.sample_voxels(indices, seed, steps=steps, solver="dpm3-singlestep", on_step=rec)
        records.append(rec.record(torch.stack([eps for _, _, eps in draws]), known, gen.meta["data_scale"]))
    out = concat_records(records)
    out["mask"] = gen.template.known_mask()
    return out


def distill_gb_model(teacher: str | Path, out_dir: str | Path, *, trajectories: int = 2048,
                     val_trajectories: int = 64, boundaries=None, teacher_steps: int | None = None,
                     default_steps: int = STUDENT_STEPS, teacher_batch: int = 128, config=None, device=None,
                     progress: bool = True, provenance: dict | None = None, init: str | Path | None = None,
                     **settings):
    """Distil the GB model file ``teacher`` into a few-step student; writes OUT/model.pt (and
    the training checkpoints OUT/last.pt, OUT/best.pt; a killed run resumes from last.pt, its
    trajectories drawn again identically).

    trajectories / val_trajectories: teacher candidates per boundary to learn from / to
    validate on (different seeds). boundaries: the boundaries (angles or TwistCSL) a model for
    any boundary is distilled on (default: those it was trained on; never others unless named).
    teacher_steps: the teacher's solver steps (default DEFAULT_NFE). teacher_batch: teacher
    candidates sampled at once. config / settings: the student's training (a TrainConfig;
    default: lr 1e-4, batch 16, EMA 0.998, 4,000 steps, validation every 250); its max_time
    counts the teacher's trajectories too. init: a student of the same teacher whose weights a
    fresh run starts from (default: the teacher's own, :func:`student_from_teacher`)."""
    from gbsearch.diffusion import train
    from gbsearch.diffusion.checkpoint import save_checkpoint
    from gbsearch.diffusion.distill import Distillation, TrajectorySet, student_from_teacher
    from gbsearch.diffusion.schedule import ScheduleConfig
    from gbsearch.diffusion.train import TrainConfig
    from gbsearch.geometry.csl import as_boundary
    from gbsearch.gbmodel.model import DEFAULT_NFE, GBGenerator, _trained_on, export_model

    t_start = time.monotonic()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    teacher = Path(teacher)
    teacher_steps = teacher_steps or DEFAULT_NFE
    config = (config or TrainConfig(lr=1e-4, batch_size=16, ema_decay=0.998, steps=4000, val_every=250)
              ).updated(**settings)
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    probe = GBGenerator.load(teacher, device, boundary=_first_boundary(teacher, boundaries))
    extra = probe.meta.get("extra") or {}
    if extra.get("distilled"):
        raise InputError(f"{teacher} is a distilled model already; distil its teacher instead")
    many = extra.get("boundaries") == "any"
    bset = ([as_boundary(b) for b in boundaries] if boundaries is not None else
            [_boundary_of_sigma(s) for s in _trained_on(extra)] if many else [probe.boundary])
    if not many and any(b.sigma != probe.boundary.sigma for b in bset):
        raise InputError(f"{teacher} is a model for {probe.boundary.label} only")

    train_groups, val_groups = {}, {}
    for b in bset:
        gen = probe if b.sigma == probe.boundary.sigma else GBGenerator.load(teacher, device, boundary=b)
        label = f"Σ{b.sigma}"
        train_groups[label] = (label, teacher_record(gen, trajectories, TRAJECTORY_SEED + config.seed,
                                                     steps=teacher_steps, batch_size=teacher_batch))
        val_groups[label] = (label, teacher_record(gen, val_trajectories, TRAJECTORY_SEED + config.seed + 1,
                                                   steps=teacher_steps, batch_size=teacher_batch))
    train_set, val_set = TrajectorySet(train_groups), TrajectorySet(val_groups)

    student = student_from_teacher(probe.model)
    schedule_cfg = ScheduleConfig.from_dict(probe.meta["schedule_config"])
    if init is None:
        init = out_dir / "init.pt"
        save_checkpoint(init, model=student, model_cfg=student.cfg, schedule_cfg=schedule_cfg,
                        data_scale=probe.meta["data_scale"], step=0, grid=None if many else probe.meta.get("grid"),
                        extra={"teacher": str(teacher)})
    if config.max_time is not None:
        config = config.updated(max_time=max(0.0, config.max_time - (time.monotonic() - t_start)))
    res = train(student.cfg, train_set, val_set, out_dir, config, schedule_cfg=schedule_cfg,
                data_scale=probe.meta["data_scale"], grid=None if many else probe.meta.get("grid"),
                device=device, progress=progress, init_from=init, objective=Distillation())
    best = out_dir / "best.pt"
    teacher_prov = extra.get("provenance") or {}
    distilled = {"times": [int(t) for t in train_set.times], "default_steps": int(default_steps),
                 "teacher": teacher.name, "teacher_solver": "dpm3-singlestep", "teacher_steps": int(teacher_steps),
                 "boundaries": [b.sigma for b in bset]}
    transfer = ({k: extra[k] for k in ("trained_on", "template_settings", "max_edge_A")} if many else None)
    export_model(best if best.exists() else out_dir / "last.pt", out_dir / "model.pt",
                 None if many else probe.template, {
                     **(provenance or {}), "distilled_from": teacher.name, "init": str(init),
                     # what the teacher was never trained on, its student never saw either
                     "n_window": teacher_prov.get("n_window"),
                     "teacher_provenance": teacher_prov, "trajectories_per_boundary": trajectories,
                     "val_trajectories_per_boundary": val_trajectories, "steps": res.step,
                     "best_val_loss": res.best_val_loss},
                 upper_dz=probe.upper_dz, transfer=transfer, distilled=distilled)
    return res


def _first_boundary(teacher: Path, boundaries):
    """The boundary to load ``teacher`` for first: the first asked for, else (a model of any
    boundary) the first it was trained on; None for a one-boundary model."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    from gbsearch.gbmodel.model import _trained_on
    if boundaries:
        return boundaries[0]
    extra = read_checkpoint(teacher).get("extra") or {}
    if extra.get("boundaries") == "any":
        return _boundary_of_sigma(_trained_on(extra)[0])
    return None


def _boundary_of_sigma(sigma: int):
    """The <100> twist boundary (TwistCSL) of a Σ."""
    from gbsearch.geometry.csl import csl_twist_angles
    return next(c for c in csl_twist_angles(101) if c.sigma == int(sigma))
