"""Pack a reference search into the package data (xz-compressed ASE database + provenance).

    python scripts/bundle_reference.py RUN_DIR --command "gbsearch reference ..." [--where "device: ..."]

Keeps only the reference rows (ok, duplicate and failed, so the trial record stays complete).
"""
from __future__ import annotations

import argparse
import json
import lzma
from pathlib import Path

from gbsearch.provenance import git_commit
from gbsearch.store.database import DB_NAME, CampaignDB
from gbsearch.store.references import DATA_DIR
from gbsearch.analysis.report import campaign_table, envelope_minima, lower_envelope


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--command", required=True, help="the command that produced the search")
    ap.add_argument("--where", default="", help="machine it ran on")
    args = ap.parse_args()
    db_path = args.run_dir / DB_NAME
    settings = json.loads((args.run_dir / "reference_settings.json").read_text())
    df = campaign_table(CampaignDB(db_path))
    ref = df[df.source == "reference"]
    sigma = "sigma5" if abs(settings["settings"]["misorientation"] - 36.87) < 0.01 else None
    if sigma is None:
        raise SystemExit("only the Σ5 dataset is bundled by this script")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    target = DATA_DIR / f"{sigma}_reference.db.xz"
    with open(db_path, "rb") as src, lzma.open(target, "wb", preset=9) as dst:
        dst.write(src.read())
    minima = envelope_minima(lower_envelope(ref))
    commit = git_commit(short=True)
    meta = {
        "command": args.command, "seed": settings["seed"], "settings": settings["settings"],
        "commit": commit, "machine": args.where,
        "counts": ref.status.value_counts().to_dict(),
        "ground_state": minima[0] if minima else None,
        "metastable": minima[1] if len(minima) > 1 else None,
        "trial_wall_s_median": float(ref.wall_s.median()),
    }
    target.with_name(f"{sigma}_reference.json").write_text(json.dumps(meta, indent=2, default=float))
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB) and its provenance")


if __name__ == "__main__":
    main()
