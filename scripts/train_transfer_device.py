"""How the transferable <100> twist model (issue 17) is trained on the lent GPU machine (no
typer there: this calls the function `gbsearch train --reference A B ...` calls). Resumes from
OUT/last.pt when present, else starts from INIT's weights when given.

    python scripts/train_transfer_device.py OUT MAX_TIME INIT REFERENCE_DIR...

Environment: GB_BATCH, GB_STEPS, GB_LR, GB_PATIENCE (validations without a 1 % gain on every
boundary before it stops), GB_KEEP (keep every N-th step's weights as OUT/model_step_N.pt, to
choose among), GB_LR_DECAY and GB_MIN_LR (linear decay of the LR to GB_MIN_LR over N steps), GBSEARCH_COMMIT (recorded in the provenance).
Σ13 is the held-out boundary: a reference folder of it is refused.
"""
import os
import sys

import torch

from gbsearch.gbmodel.model import gb_train_config, train_transfer_model
from gbsearch.store.database import load_reference_structures

HELD_OUT = {13}

out, max_time, init = sys.argv[1], float(sys.argv[2]), sys.argv[3]
refs = sys.argv[4:]
structures = []
for ref in refs:
    got = load_reference_structures(ref)
    sig = {int(a.info["sigma"]) for a in got}
    if sig & HELD_OUT:
        raise SystemExit(f"{ref} holds Σ13, the held-out boundary: it is never trained on")
    structures += got
    print(ref, len(got), "structures, Σ", sorted(sig), flush=True)
overrides = {k: int(os.environ[v]) for k, v in (("batch_size", "GB_BATCH"), ("steps", "GB_STEPS"),
                                                ("stop_patience", "GB_PATIENCE"), ("keep_every", "GB_KEEP"),
                                                ("lr_decay_steps", "GB_LR_DECAY"))
             if os.environ.get(v)}
for key, var in (("lr", "GB_LR"), ("min_lr", "GB_MIN_LR")):
    if os.environ.get(var):
        overrides[key] = float(os.environ[var])
config = gb_train_config(max_time=max_time, val_every=250, **overrides)
cmd = (f"gbsearch train {' '.join('-r ' + r for r in refs)} --out {out} --steps {config.steps} "
       f"--batch-size {config.batch_size} --max-time {max_time:g} --init {init} --val-every {config.val_every} --lr {config.lr:g}"
       + (f" --until-plateau {config.stop_patience}" if config.stop_patience else "")
       + (f" --keep-every {config.keep_every}" if config.keep_every else "")
       + (f" --lr-decay-steps {config.lr_decay_steps} (min_lr {config.min_lr:g})" if config.lr_decay_steps else ""))
res = train_transfer_model(structures, out, config, progress=False, init_from=init if init != "none" else None,
                           provenance={"command": cmd, "seed": config.seed,
                                       "commit": os.environ.get("GBSEARCH_COMMIT", ""),
                                       # The card it ran on, not an assumed kind: H100 and H200 both come for one call.
                                       "machine": os.environ.get("GB_MACHINE", "lent " + (
                                           torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU")),
                                       "note": ("time-limited run: resumed from OUT/last.pt when present, else a warm start from "
                                                "INIT's weights with a fresh optimizer")})
print("transfer model:", len(structures), "structures; step", res.step, "best val", res.best_val_loss,
      "plateaued", res.plateaued)
for h in res.history[-8:]:
    print(h)
