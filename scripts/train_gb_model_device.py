"""How the shipped GB models were trained on the lent GPU machine (no typer there, so this
calls the same function as `gbsearch train`). Resumes from OUT/last.pt when present.

    python scripts/train_gb_model_device.py NAME REFERENCE_DB OUT MAX_TIME [LO HI]

Environment: GB_BATCH, GB_STEPS (defaults: gb_train_config()'s), GB_FORMAT (channels_last |
contiguous), GBSEARCH_COMMIT and GB_MACHINE (recorded in the provenance).
"""
import os
import sys

from gbsearch.gbmodel.model import gb_train_config, load_reference_structures, train_gb_model

name, reference, out, max_time = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
window = (float(sys.argv[5]), float(sys.argv[6])) if len(sys.argv) > 6 else None
overrides = {k: int(os.environ[v]) for k, v in (("batch_size", "GB_BATCH"), ("steps", "GB_STEPS")) if os.environ.get(v)}
fmt = os.environ.get("GB_FORMAT") or None
# gb_train_config's defaults: EMA 0.999; train_gb_model's: v-prediction, 32 channels, batches
# encoded on the GPU itself.
config = gb_train_config(max_time=max_time, memory_format=fmt, **overrides)
structures = load_reference_structures(reference, window)
cmd = (f"gbsearch train --reference {reference} --out {out} --steps {config.steps} "
       f"--batch-size {config.batch_size} --max-time {max_time:g}"
       + (f" --n-window {window[0]} {window[1]}" if window else ""))
res = train_gb_model(structures, out, config, progress=False, n_window=window,
                     provenance={"command": cmd, "seed": config.seed, "commit": os.environ.get("GBSEARCH_COMMIT", ""),
                                 "machine": os.environ.get("GB_MACHINE", "lent NVIDIA GPU"),
                                 "memory_format": fmt or "contiguous",
                                 "note": "trained as a series of time-limited runs, each resumed from last.pt"})
print(name, len(structures), "structures; step", res.step, "best val", res.best_val_loss)
for h in res.history[-6:]:
    print(h)
