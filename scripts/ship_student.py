"""Bundle a distilled student (the model.pt `gbsearch distill` writes) under gbsearch/data/models/,
with its default number of steps set and where it was made recorded in the file and beside it.

    python scripts/ship_student.py SRC DST --default-steps 4 --run "device command" --why "measurement"

Writes DST (the student, float16 as exported) and DST with .json (provenance: the distillation's
command and commit, the device call that ran it, the teacher's provenance, the validation
history in the file, why this many default steps).
"""
import argparse
import json
from pathlib import Path

import torch

from gbsearch.diffusion.checkpoint import read_checkpoint
from gbsearch.io_utils import atomic_path

ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--default-steps", type=int, required=True)
ap.add_argument("--run", required=True, help="the device call (command) that distilled it")
ap.add_argument("--why", required=True, help="why this default number of steps (the measurement)")
ap.add_argument("--note", default="")
a = ap.parse_args()

ckpt = read_checkpoint(a.src)
extra = ckpt["extra"]
times = extra["distilled"]["times"]
if not 1 <= a.default_steps <= len(times):
    raise SystemExit(f"--default-steps must be in 1..{len(times)}")
extra["distilled"]["default_steps"] = a.default_steps
prov = extra["provenance"]
prov.update({"device_run": a.run, "default_steps_why": a.why, "weights_at_step": ckpt["step"]})
if a.note:
    prov["note"] = a.note
with atomic_path(a.dst) as tmp:
    torch.save(ckpt, tmp)
card = {"file": a.dst, "what": "few-step student of " + extra["distilled"]["teacher"] + " (gbsearch distill, "
        "gbsearch.gbmodel.distill): the teacher's U-Net with the known voxels and mask as two more inputs, trained "
        "to reach the end of the teacher's DPM-Solver-3 trajectories from any of their time points",
        "distilled": extra["distilled"], "provenance": prov,
        "validation_history": ckpt.get("history") or "in the training folder's last.pt (not shipped)"}
Path(a.dst).with_suffix(".json").write_text(json.dumps(card, indent=2, ensure_ascii=False) + "\n")
print(f"wrote {a.dst} and {Path(a.dst).with_suffix('.json')} (default {a.default_steps} steps)")
