"""The 12-05f ship rule (scripts/device_runs/2026-12-05f_transfer.sh header) applied to this
folder's records; prints choice.txt. The atom-count step is the 12-05c rule's
(scripts/choose_transfer_checkpoint.py). Run from the repository root:
    python docs/transfer_2026-12-05f/apply_rule.py > docs/transfer_2026-12-05f/choice.txt"""
import json
import sys
import tarfile

sys.path.insert(0, "scripts")
from choose_transfer_checkpoint import count_reasons, outside_range  # noqa: E402

D = "docs/transfer_2026-12-05f/"
names = {"A": "A_shipped.pt", "B": "B_05d.pt", "C": "C_best_val.pt"}
sigma17 = {"A": "sigma17_A_shipped", "B": "sigma17_B_05d"}   # measured for the eligible ones
with tarfile.open(D + "counts.tar.xz") as t:
    counts = [json.load(t.extractfile(f"runs/counts/sigma{s}.json")) for s in (5, 17, 25, 37, 41)]
out = {k: outside_range(counts, "runs/counts/" + n) for k, n in names.items()}
print("1. candidates (of 16) outside the reference atom-count range, Σ5 Σ17 Σ25 Σ37 Σ41 -> total")
eligible = []
for k in names:
    why = [] if k == "A" else count_reasons(out[k], out["A"])
    eligible += [k] * (not why)
    per = list(out[k].values())
    print(f"   {k} ({names[k]}): {per} -> {sum(per)}  {'eligible' if not why else 'not eligible'}")
print("2. Σ17, seeds 0-2 x 24, CG + anneal: fraction within 0.05 J/m2 of the reference envelope; median candidate γ")
score = {}
for k in eligible:
    r = json.load(open(D + sigma17[k] + "/discovery.json"))   # KeyError: an eligible model never measured
    score[k] = (r["fraction_near_envelope"]["diffusion"], -r["diffusion_median_gamma"])
    print(f"   {k}: {r['fraction_near_envelope']['diffusion']:.3f}; {r['diffusion_median_gamma']:.4f} J/m2")
best = max(eligible, key=lambda k: (score[k], k == "A"))
print("ships:", best, "(A is the shipped model: nothing changes)" if best == "A" else "")
