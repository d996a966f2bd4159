"""Which weights of a transferable-model run ship (issue 17): the rule fixed in
scripts/device_runs/2026-12-05c_transfer.sh before the run, applied mechanically, on training
boundaries only (the held-out Σ13 is never read).

    python scripts/choose_transfer_checkpoint.py --history H.json --shipped-val V.json \
        --shipped SHIPPED.pt --counts C5.json C17.json ... --candidates A.pt B.pt ... --out choice.json

H.json: the run's training history (list of records with step, val_loss, val_groups);
V.json: the shipped model's validation record on the same split (a run's step-0 record);
C*.json: bench/atom_counts.py outputs, one per training boundary, each over the shipped model
and every candidate. A candidate's step is its file's provenance "steps" (a kept snapshot) or,
for the run's best-validation model.pt, the step of the lowest validation loss.

A candidate is eligible when (1) its validation loss is below the shipped model's on every
boundary and (2) its candidates outside the reference atom-count range number no more than the
shipped model's plus one on each boundary and plus two over all of them. Of the eligible, the
lowest mean validation loss ships; none eligible: the shipped model stays.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def count_reasons(out: dict, base: dict) -> list[str]:
    """Why a candidate fails the atom-count part of the rule (empty when it passes): ``out`` and
    ``base`` map each boundary to the candidate's and the shipped model's candidates outside the
    reference atom-count range; allowed are the shipped model's + 1 per boundary, + 2 in all."""
    why = []
    worse = sorted(k for k in base if out[k] > base[k] + 1)
    if worse:
        why.append("more than one more candidate outside the atom-count range on " + ", ".join(worse))
    if sum(out.values()) > sum(base.values()) + 2:
        why.append(f"{sum(out.values())} outside in all against the shipped model's {sum(base.values())} + 2")
    return why


def outside_range(counts: list, model: str) -> dict:
    """Boundary → candidates of ``model`` outside the reference atom-count range, from
    bench/atom_counts.py outputs."""
    return {c["boundary"]: c["models"][model]["outside_reference_range"] for c in counts}


def candidate_step(path: str, history: list) -> int:
    from gbsearch.diffusion.checkpoint import read_checkpoint
    prov = read_checkpoint(path)["extra"]["provenance"]
    if prov.get("snapshot"):
        return int(prov["steps"])
    vals = [r for r in history if r.get("val_loss") is not None]
    return min(vals, key=lambda r: r["val_loss"])["step"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history", required=True)
    ap.add_argument("--shipped-val", required=True)
    ap.add_argument("--shipped", required=True)
    ap.add_argument("--counts", nargs="+", required=True)
    ap.add_argument("--candidates", nargs="+", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    history = json.loads(Path(a.history).read_text())
    shipped_val = json.loads(Path(a.shipped_val).read_text())["val_groups"]
    counts = [json.loads(Path(c).read_text()) for c in a.counts]
    by_step = {r["step"]: r for r in history if r.get("val_groups")}

    base = outside_range(counts, a.shipped)
    rows, seen = [], set()
    for path in a.candidates:
        step = candidate_step(path, history)
        if step in seen:        # the best-validation model.pt is also the snapshot of its step
            continue
        seen.add(step)
        rec = by_step.get(step)
        if rec is None:
            rows.append({"model": path, "step": step, "eligible": False, "why": "no validation at its step"})
            continue
        val = rec["val_groups"]
        out = outside_range(counts, path)
        worse_val = sorted(k for k in shipped_val if not val[k] < shipped_val[k])
        why = ["validation loss not below the shipped model's on " + ", ".join(worse_val)] if worse_val else []
        why += count_reasons(out, base)
        rows.append({"model": path, "step": step, "val_loss": rec["val_loss"], "val_groups": val, "outside": out,
                     "outside_total": sum(out.values()), "eligible": not why, "why": "; ".join(why)})
    eligible = [r for r in rows if r["eligible"]]
    choice = min(eligible, key=lambda r: r["val_loss"]) if eligible else None
    result = {"shipped": a.shipped, "shipped_val_groups": shipped_val, "shipped_outside": base,
              "shipped_outside_total": sum(base.values()), "candidates": rows,
              "choice": choice["model"] if choice else None}
    Path(a.out).write_text(json.dumps(result, indent=2, ensure_ascii=False))
    print(f"shipped model: {sum(base.values())} outside the range ({base})")
    for r in rows:
        print(f"  step {r['step']:>5}  val {r.get('val_loss', float('nan')):.4f}  outside "
              f"{r.get('outside_total', '-')}  {'ELIGIBLE' if r['eligible'] else r['why']}  {r['model']}")
    print("ships:", result["choice"] or "nothing (the shipped model stays)")


if __name__ == "__main__":
    main()
