"""How the shipped particle-baseline models were trained on the lent GPU machine (no typer
there, so this calls train_particle directly).

    python scripts/train_particle_device.py PHASE OUT_DIR MAX_TIME

Writes OUT_DIR/particle_PHASE.pt (EMA weights, fp16) and OUT_DIR/particle_PHASE.json
(command, seed, commit, history, DSM loss at fixed sigma). Environment: P_HIDDEN (128),
P_LAYERS (4), P_BATCH (64), P_LR (1e-3), P_CUTOFF (graph cutoff in nearest-neighbour
distances, 1.35), P_EMA (0.999), P_SEED (0), P_INIT (checkpoint to continue from),
GBSEARCH_COMMIT, GB_MACHINE.
"""
import json
import os
import sys
import time
from pathlib import Path

import torch

from gbsearch.crystal.particle import loss_at, save_particle, train_particle

phase, out, max_time = sys.argv[1], Path(sys.argv[2]), float(sys.argv[3])
env = os.environ.get
kw = dict(hidden=int(env("P_HIDDEN", "128")), layers=int(env("P_LAYERS", "4")),
          batch_size=int(env("P_BATCH", "64")), lr=float(env("P_LR", "1e-3")),
          cutoff_nn=float(env("P_CUTOFF", "1.35")), ema=float(env("P_EMA", "0.999")),
          seed=int(env("P_SEED", "0")), focus=0.5, focus_range=(0.01, 0.14),
          free_head=True, dir_fourier=True)
init = env("P_INIT") or None
device = "cuda" if torch.cuda.is_available() else "cpu"
t0 = time.time()
model, hist = train_particle(phase, steps=10 ** 7, max_time=max_time, log_every=500, init=init,
                             device=device, **kw)
seconds = round(time.time() - t0, 1)
val = loss_at(model, phase, device=device)
args = ", ".join(f"{k}={v!r}" for k, v in kw.items())
prov = {"command": f"python scripts/train_particle_device.py {phase} OUT {max_time:g}  "
                   f"(= train_particle({phase!r}, steps=10**7, max_time={max_time:g}, {args}"
                   + (f", init={init!r}" if init else "") + f", device={device!r}))",
        "seed": kw["seed"], "commit": env("GBSEARCH_COMMIT", ""),
        "device": env("GB_MACHINE", torch.cuda.get_device_name() if device == "cuda" else "CPU"),
        "batch_size": kw["batch_size"], "config": model.cfg.to_dict(), "steps": hist[-1]["step"],
        "seconds": seconds, "loss_at_sigma": val, "history": hist}
model.to("cpu")
save_particle(model, out / f"particle_{phase}.pt", prov)
(out / f"particle_{phase}.json").write_text(json.dumps(prov, indent=1))
print(phase, "steps", hist[-1]["step"], "s", seconds, "loss at sigma", val, flush=True)
