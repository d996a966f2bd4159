"""Few-step students (issue 16): the student starts as its teacher, teacher trajectories are
recorded as sampled, a real tiny student is distilled from a tiny GB model and in-paints
candidates in 1 and 2 steps with the fixed grains exact, and bad steps/solvers are clear errors."""
import numpy as np
import pytest
import torch

from gbsearch.diffusion import ScheduleConfig, UNet3D, UNetConfig, make_scheduler, sample
from gbsearch.diffusion.distill import Conditioned, TrajectoryRecorder, student_from_teacher, student_times
from gbsearch.errors import InputError
from gbsearch.geometry.bicrystal import FIXED_REGIONS
from gbsearch.gbmodel.slab_voxels import SlabTemplate

TINY_TEMPLATE = SlabTemplate(misorientation=36.87, replicate=(1, 1), n_fixed=6, n_free=4, nz=32)


def test_student_times_spread_over_the_teacher_steps():
    times = list(range(950, -1, -50))           # 20 time points
    assert student_times(times, 1) == [950]
    assert student_times(times, 2) == [950, 450]
    assert student_times(times, 4) == [950, 700, 450, 200]
    assert student_times(times, 20) == times
    with pytest.raises(ValueError, match="1 to 20 steps"):
        student_times(times, 21)


def test_student_starts_as_its_teacher():
    torch.manual_seed(0)
    teacher = UNet3D(UNetConfig(base_channels=8)).eval()
    for p in teacher.parameters():          # zero-initialised output layers would hide a difference
        p.data.normal_(0, 0.1)
    student = student_from_teacher(teacher).eval()
    assert student.cfg.in_channels == 3
    x, t = torch.randn(2, 1, 8, 8, 8), torch.tensor([10, 900])
    cond = torch.rand(2, 2, 8, 8, 8)
    with torch.no_grad():
        assert torch.allclose(Conditioned(student, cond)(x, t), teacher(x, t), atol=1e-6)


def test_recorded_trajectory_is_the_sampled_one():
    torch.manual_seed(1)
    net = UNet3D(UNetConfig(base_channels=8)).eval()
    sched = make_scheduler(ScheduleConfig(prediction_type="v_prediction"))
    noise = torch.randn(2, 1, 8, 8, 8)
    known = torch.rand(2, 1, 8, 8, 8)
    mask = torch.zeros(8, 8, 8, dtype=torch.bool)
    mask[:, :, :2] = True
    rec = TrajectoryRecorder()
    out = sample(net, sched, (8, 8, 8), 2, known=known, known_mask=mask, noise=noise, steps=6, scale=0.5,
                 clip=(0.0, 1.0), autocast=False, on_step=rec)
    r = rec.record(noise, known, 0.5)
    assert r["times"] == [int(t) for t in sched.timesteps] and r["states"].shape == (2, 6, 8, 8, 8)
    assert torch.equal(r["states"][:, :1], noise.half())
    free = ~mask
    assert torch.allclose(r["x0"].float()[:, 0][:, free] * 0.5, out[:, 0][:, free], atol=2e-3)
    assert torch.allclose(r["known"].float() * 0.5, known, atol=1e-3)


@pytest.fixture(scope="module")
def tiny_teacher(tmp_path_factory):
    """A tiny GB model file (random 8-channel U-Net, v-prediction) on a 14x14x32 Σ5 window."""
    from gbsearch.diffusion.checkpoint import save_checkpoint
    from gbsearch.gbmodel.model import export_model
    base = tmp_path_factory.mktemp("teacher")
    torch.manual_seed(2)
    net = UNet3D(UNetConfig(base_channels=8))
    for p in net.parameters():
        p.data.normal_(0, 0.05)
    grid = TINY_TEMPLATE.grid()
    save_checkpoint(base / "ckpt.pt", model=net, model_cfg=net.cfg,
                    schedule_cfg=ScheduleConfig(prediction_type="v_prediction"), data_scale=0.3, step=0, grid=grid)
    return export_model(base / "ckpt.pt", base / "teacher.pt", TINY_TEMPLATE, {"n_window": [0.5, 0.1]},
                        upper_dz=[0.0, 0.1])


@pytest.fixture(scope="module")
def tiny_student(tiny_teacher, tmp_path_factory):
    from gbsearch.gbmodel.distill import distill_gb_model
    out = tmp_path_factory.mktemp("student")
    res = distill_gb_model(tiny_teacher, out, trajectories=6, val_trajectories=3, teacher_steps=4,
                           teacher_batch=3, device="cpu", progress=False, steps=40, batch_size=4, lr=1e-3,
                           val_every=20, ema_decay=None)
    return out / "model.pt", res


def test_distillation_lowers_the_students_error(tiny_student):
    _, res = tiny_student
    vals = [h["val_loss"] for h in res.history if h.get("val_loss") is not None]
    assert len(vals) == 3 and all(np.isfinite(vals))
    assert vals[-1] < vals[0]                       # the trajectories' ends are learned
    assert set(res.history[-1]["val_groups"]) == {"Σ5"}


def test_student_inpaints_in_one_and_two_steps(tiny_student, tiny_teacher):
    from gbsearch.gbmodel.model import GBGenerator, model_sampling
    path, _ = tiny_student
    gen = GBGenerator.load(path, device="cpu")
    assert gen.distilled["default_steps"] == 4 and len(gen.distilled["times"]) == 4
    assert gen.distilled["teacher"] == tiny_teacher.name
    assert gen.meta["extra"]["provenance"]["n_window"] == [0.5, 0.1]     # the teacher's held-out window
    assert gen.upper_dz == [0.0, 0.1]
    assert model_sampling(path) == (4, "ddim") and model_sampling(tiny_teacher) == (20, "dpm3-singlestep")
    for steps in (1, 2):
        cands = gen.generate(2, seed=3, steps=steps, batch_size=2)
        for cand in cands:
            assert cand.info["nfe"] == steps and cand.info["solver"] == "ddim"
            fixed = np.isin(cand.arrays["region"], FIXED_REGIONS)
            slab = gen.template.slab_for(cand)
            assert np.array_equal(cand.positions[fixed], slab.positions[np.isin(slab.arrays["region"], FIXED_REGIONS)])
    # candidate i depends on (seed, i) alone, as for the teacher
    a, b = gen.generate([1], seed=3, steps=2, batch_size=1)[0], cands[1]
    assert len(a) == len(b) and np.allclose(a.positions, b.positions, atol=0.01)   # bf16: batch-size rounding


def test_student_refuses_other_solvers_and_too_many_steps(tiny_student):
    from gbsearch.gbmodel.model import GBGenerator
    gen = GBGenerator.load(tiny_student[0], device="cpu")
    with pytest.raises(InputError, match="solver ddim"):
        gen.generate(1, steps=2, solver="unipc")
    with pytest.raises(InputError, match="1 to 4 steps"):
        gen.generate(1, steps=5)
    from gbsearch.gbmodel.distill import distill_gb_model
    with pytest.raises(InputError, match="distilled model already"):
        distill_gb_model(tiny_student[0], tiny_student[0].parent / "again", device="cpu")


def test_distill_command(tiny_teacher, tmp_path):
    """`gbsearch distill` as the README gives it, on a tiny teacher: a student file that records
    its command (sys.argv: pytest's here) and teacher and samples with its default steps."""
    from typer.testing import CliRunner

    from gbsearch.cli import app
    from gbsearch.gbmodel.model import GBGenerator
    out = tmp_path / "st"
    res = CliRunner().invoke(app, ["distill", "--model", str(tiny_teacher), "--out", str(out), "--trajectories", "3",
                                   "--val-trajectories", "2", "--steps", "3", "--batch-size", "2"])
    assert res.exit_code == 0, res.output
    assert "3 steps, best validation loss" in res.output
    gen = GBGenerator.load(out / "model.pt", device="cpu")
    prov = gen.meta["extra"]["provenance"]
    assert prov["command"].startswith("gbsearch ") and prov["distilled_from"] == tiny_teacher.name and prov["commit"]
    assert len(gen.distilled["times"]) == 20 and gen.distilled["default_steps"] == 4
    (cand,) = gen.generate(1, seed=0, batch_size=1)
    assert cand.info["nfe"] == 4 and cand.info["solver"] == "ddim"
