"""Store a GB model file's weights as float16 (gbsearch.gbmodel.model.half_weights), in place.

    python scripts/halve_model.py gbsearch/data/models/sigma5_full.pt [more.pt ...]

Used once on the shipped Σ5 models (2026-12-02, issue 16); `gbsearch train` exports float16 since.
"""
import sys

import torch

from gbsearch.diffusion.checkpoint import read_checkpoint
from gbsearch.gbmodel.model import half_weights
from gbsearch.io_utils import atomic_path

for path in sys.argv[1:]:
    ckpt = read_checkpoint(path)
    if all(v.dtype != torch.float32 for v in ckpt["model_state"].values() if torch.is_tensor(v)):
        print(f"{path}: already float16")
        continue
    ckpt["model_state"] = half_weights(ckpt["model_state"])
    extra = ckpt.setdefault("extra", {})
    extra["provenance"] = {**(extra.get("provenance") or {}), "stored_dtype": "float16 (scripts/halve_model.py)"}
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    print(f"{path}: weights stored as float16")
