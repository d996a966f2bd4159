"""The 12-06 ship rule (scripts/device_runs/2026-12-06_transfer.sh header) applied to the
records; prints choice.txt. It chooses a configuration, weights and solver steps. The atom-count
step is the 12-05c rule's (scripts/choose_transfer_checkpoint.py), with A20 as the baseline.
Run from the repository root:
    python docs/transfer_2026-12-06/apply_rule.py > docs/transfer_2026-12-06/choice.txt"""
import glob
import json
import os
import sys
import tarfile

sys.path.insert(0, "scripts")
from choose_transfer_checkpoint import count_reasons, outside_range  # noqa: E402

D = "docs/transfer_2026-12-06/"
# configuration: (weights as the counts phase named them, NFE, Σ17 discovery record)
configs = {"A20": ("A_shipped.pt", 20, "docs/transfer_2026-12-05f/sigma17_A_shipped"),
           "A60": ("A_shipped.pt", 60, D + "sigma17_A_nfe60"),
           "C60": ("C_05f.pt", 60, "docs/transfer_2026-12-05f/sigma17_C_step4250_nfe60"),
           "D60": ("D_best_val.pt", 60, D + "sigma17_D_nfe60")}
# Counts: the GPU's (the counts phase's counts.tar.xz, models named runs/counts/W) or, where no
# device came, the CPU's (cpu_counts/, one model per file, named runs/cpucounts/W): every
# configuration from one device.
if os.path.exists(D + "counts.tar.xz"):
    device, folder = "GPU", "runs/counts/"
    with tarfile.open(D + "counts.tar.xz") as t:
        records = [json.load(t.extractfile(m)) for m in t.getmembers() if m.name.endswith(".json")]
else:
    device, folder = "CPU", "runs/cpucounts/"
    records = [json.load(open(f)) for f in glob.glob(D + "cpu_counts/*.json")]
records.sort(key=lambda r: int(r["boundary"].split()[0][1:]))   # "Σ5 36.87°": Σ5, Σ17, ... in order
print(f"1. candidates (of 16) outside the reference atom-count range, Σ5 Σ17 Σ25 Σ37 Σ41 -> total ({device})")
out = {}
for k, (w, nfe, _) in list(configs.items()):
    counted = [r for r in records if r["nfe"] == nfe and folder + w in r["models"]]
    if len(counted) != 5:
        assert k != "A20", "A20, the baseline, must be counted"
        print(f"   {k}: {w} not counted on the five boundaries at {nfe} NFE (not trained this session): not a candidate")
        del configs[k]
        continue
    out[k] = outside_range(counted, folder + w)
eligible = []
for k, (w, nfe, _) in configs.items():
    why = [] if k == "A20" else count_reasons(out[k], out["A20"])
    eligible += [k] * (not why)
    per = list(out[k].values())
    print(f"   {k} ({w}, {nfe} NFE): {per} -> {sum(per)}  {'eligible' if not why else 'not eligible: ' + '; '.join(why)}")
print("2. Σ17, seeds 0-2 x 24, CG + anneal, CPU: candidates within 0.05 J/m2 of the reference envelope; median γ")
score = {}
for k in eligible:
    r = json.load(open(configs[k][2] + "/discovery.json"))   # KeyError: an eligible configuration never measured
    assert r["nfe"] == configs[k][1] and r["seeds"] == 3 and r["candidates_per_seed"] == 24, k
    near = round(r["fraction_near_envelope"]["diffusion"] * r["relaxed"])
    score[k] = (near, -configs[k][1], -r["diffusion_median_gamma"])
    print(f"   {k}: {near} of {r['relaxed']}; median {r['diffusion_median_gamma']:.4f} J/m2")
best = max(eligible, key=lambda k: score[k])
print("chosen:", best, "(A20 is today's default: nothing changes)" if best == "A20" else "")
