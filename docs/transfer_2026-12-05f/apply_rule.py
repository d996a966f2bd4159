"""The 12-05f ship rule (scripts/device_runs/2026-12-05f_transfer.sh header) applied to this
folder's records; prints choice.txt. Run from the repository root:
    python docs/transfer_2026-12-05f/apply_rule.py > docs/transfer_2026-12-05f/choice.txt"""
import json
import tarfile

D = "docs/transfer_2026-12-05f/"
SIGMAS = (5, 17, 25, 37, 41)
names = {"A": "A_shipped.pt", "B": "B_05d.pt", "C": "C_best_val.pt"}
out = {k: {} for k in names}
with tarfile.open(D + "counts.tar.xz") as t:
    for s in SIGMAS:
        d = json.load(t.extractfile(f"runs/counts/sigma{s}.json"))
        for k, n in names.items():
            out[k][s] = d["models"]["runs/counts/" + n]["outside_reference_range"]
print("1. candidates (of 16) outside the reference atom-count range, Σ5 Σ17 Σ25 Σ37 Σ41 -> total")
eligible = []
for k in names:
    per = [out[k][s] for s in SIGMAS]
    ok = k == "A" or (all(out[k][s] <= out["A"][s] + 1 for s in SIGMAS) and sum(per) <= sum(out["A"].values()) + 2)
    eligible += [k] * ok
    print(f"   {k} ({names[k]}): {per} -> {sum(per)}  {'eligible' if ok else 'not eligible'}")
print("2. Σ17, seeds 0-2 x 24, CG + anneal: fraction within 0.05 J/m2 of the reference envelope; median candidate γ")
score = {}
for k, sub in (("A", "sigma17_A_shipped"), ("B", "sigma17_B_05d")):
    r = json.load(open(D + sub + "/discovery.json"))
    score[k] = (r["fraction_near_envelope"]["diffusion"], -r["diffusion_median_gamma"])
    print(f"   {k}: {r['fraction_near_envelope']['diffusion']:.3f}; {r['diffusion_median_gamma']:.4f} J/m2")
best = max((k for k in eligible if k in score), key=lambda k: (score[k], k == "A"))
print("ships:", best, "(A is the shipped model: nothing changes)" if best == "A" else "")
