"""Record the training structures' upper-grain heights in a GB model file made before
`gbsearch train` recorded them (the shipped sigma5 models); the weights are not touched.

    python scripts/annotate_upper_dz.py gbsearch/data/models/sigma5_full.pt [...]

The structures are the bundled reference structures inside the model's training window
(its provenance's n_window), i.e. exactly the ones it was trained on.
"""
import sys

import torch

from gbsearch.diffusion.checkpoint import read_checkpoint
from gbsearch.gbmodel.model import GBGenerator
from gbsearch.io_utils import atomic_path
from gbsearch.store.references import load_reference_dataset

for path in sys.argv[1:]:
    gen = GBGenerator.load(path, device="cpu")
    window = (gen.meta.get("extra") or {}).get("provenance", {}).get("n_window")
    structures = load_reference_dataset(gen.misorientation, tuple(window) if window else None)
    dz = [round(gen.template.upper_offset(a), 5) for a in structures]
    ckpt = read_checkpoint(path)
    ckpt["extra"]["upper_dz"] = dz
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    print(f"{path}: {len(dz)} structures, upper-grain dz {min(dz):+.3f} … {max(dz):+.3f} Å")
