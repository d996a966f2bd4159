"""Voxel diffusion model (SPEC §4): 3D U-Net, VP schedule + DPM-Solver, in-painting sampler,
training loop and checkpoints.

Typical use:
    res = train(UNetConfig(...), dataset, val_dataset, "runs/gb", TrainConfig(steps=30000))
    model, scheduler, meta = load_checkpoint("runs/gb/best.pt")
    vox = sample(model, scheduler, meta["grid"]["shape"], n=64, known=v, known_mask=m,
                 scale=meta["data_scale"])
"""

from .checkpoint import load_checkpoint, save_checkpoint
from .sampler import sample
from .schedule import ScheduleConfig, VPSchedule, make_scheduler
from .train import TrainConfig, TrainResult, train
from .unet import UNet3D, UNetConfig

__all__ = [
    "UNet3D", "UNetConfig", "ScheduleConfig", "VPSchedule", "make_scheduler", "sample",
    "train", "TrainConfig", "TrainResult", "load_checkpoint", "save_checkpoint",
]
