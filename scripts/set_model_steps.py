"""Record a diffusion model's own solver steps in its file (``extra["sampling_steps"]``, with
why), the steps `gbsearch run`/`generate` and the benchmarks use when none are asked for; the
weights are not touched.

    python scripts/set_model_steps.py gbsearch/data/models/twist100_transfer.pt 60 \
        --because "the 12-06 ship rule chose these weights at 60 NFE (docs/transfer_2026-12-06/choice.txt)"
"""
import argparse

import torch

from gbsearch.diffusion.checkpoint import read_checkpoint
from gbsearch.gbmodel.model import model_sampling
from gbsearch.io_utils import atomic_path

p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
p.add_argument("model")
p.add_argument("steps", type=int)
p.add_argument("--because", required=True, help="why these steps (recorded beside them)")
a = p.parse_args()
if a.steps < 1:
    p.error("steps must be at least 1")
ckpt = read_checkpoint(a.model)
extra = ckpt.setdefault("extra", {})
if extra.get("distilled"):
    p.error(f"{a.model} is a distilled model: its steps are the ones it was trained for")
extra["sampling_steps"], extra["sampling_steps_why"] = a.steps, a.because
with atomic_path(a.model) as tmp:
    torch.save(ckpt, tmp)
print(f"{a.model}: sampled with {model_sampling(a.model)} when no steps are asked for")
