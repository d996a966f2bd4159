"""How the shipped GB models were trained on the lent GPU machine (no typer there, so this
calls the same function as `gbsearch train`). Resumes from OUT/last.pt when present.

    python scripts/train_gb_model_device.py NAME REFERENCE_DB OUT MAX_TIME [LO HI]

Environment: GB_BATCH (default 4), GB_FORMAT (channels_last | contiguous), GB_STEPS (30000),
GBSEARCH_COMMIT and GB_MACHINE (recorded in the provenance).
"""
import os
import sys

from gbsearch.gbmodel.model import load_reference_structures, train_gb_model

name, reference, out, max_time = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
window = (float(sys.argv[5]), float(sys.argv[6])) if len(sys.argv) > 6 else None
batch = int(os.environ.get("GB_BATCH", "4"))
steps = int(os.environ.get("GB_STEPS", "30000"))
fmt = os.environ.get("GB_FORMAT") or None
structures = load_reference_structures(reference, window)
cmd = (f"gbsearch train --reference {reference} --out {out} --steps {steps} --channels 32 --batch-size {batch} "
       f"--max-time {max_time:g}" + (f" --n-window {window[0]} {window[1]}" if window else ""))
# train_gb_model's defaults: v-prediction, EMA 0.999, batches encoded on the GPU itself.
res = train_gb_model(structures, out, steps=steps, batch_size=batch, base_channels=32, max_time=max_time,
                     progress=False, n_window=window, memory_format=fmt,
                     provenance={"command": cmd, "seed": 0, "commit": os.environ.get("GBSEARCH_COMMIT", ""),
                                 "machine": os.environ.get("GB_MACHINE", "lent NVIDIA GPU"),
                                 "memory_format": fmt or "contiguous",
                                 "note": "trained as a series of time-limited runs, each resumed from last.pt"})
print(name, len(structures), "structures; step", res.step, "best val", res.best_val_loss)
for h in res.history[-6:]:
    print(h)
