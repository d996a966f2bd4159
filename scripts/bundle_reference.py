"""Pack a reference search into the package library (xz-compressed ASE database + JSON).

    python scripts/bundle_reference.py RUN_DIR [--command "gbsearch reference ..."] [--where "16-core ..."]
                                       [--full-within 0.5] [--max-mb 25]
    python scripts/bundle_reference.py --refresh 36.87     # recompute a bundled dataset's JSON

Writes ``gbsearch/data/reference/sigma{Σ}_reference.db.xz`` and ``sigma{Σ}_reference.json``. The
database keeps every reference trial in trial order, so convergence can be re-checked from it:
distinct (ok) structures in full (atoms, regions, per-atom energies, fingerprint); duplicates
and failures as light rows (key-value pairs and trial parameters, no atoms; ``light=1``,
``n_atoms_full``). ``--full-within DELTA`` also stores as light rows the ok structures more than
DELTA J/m² above the lowest γ of their [n] bin, for searches too big for ``--max-mb``.

The JSON: command, seed, commit(s) and machine; settings; counts, structures, trials; ground
state, metastable minimum and the convergence report (gbsearch.analysis.convergence); sizes.
Command and commits default to what the search recorded in RUN_DIR/reference_settings.json.
"""
from __future__ import annotations

import argparse
import json
import lzma
import sys
import tempfile
from pathlib import Path

import numpy as np
from ase import Atoms
from ase.db import connect

from gbsearch.analysis.convergence import convergence_from_table, n_bin
from gbsearch.analysis.report import campaign_table
from gbsearch.geometry.csl import find_twist_csl
from gbsearch.provenance import git_commit
from gbsearch.store.database import CampaignDB
from gbsearch.store.references import DATA_DIR, bundled_reference, provenance, reference_db_path


def _compact(src_path: Path, dst_path: Path, full_within: float | None, sigma: int) -> dict:
    """Copy the reference rows of ``src_path`` into a fresh database ``dst_path`` in trial order."""
    src = CampaignDB(src_path)
    rows = sorted(src.rows(source="reference"), key=lambda r: (r.trial, r.id))
    keep_full = {r.id for r in rows if r.status == "ok"}
    if full_within is not None:
        df = campaign_table(src)
        df = df[(df.source == "reference") & (df.status == "ok")].copy()
        conv = convergence_from_table(df, sigma)
        floor = np.array([b["gamma_J_m2"] if b["gamma_J_m2"] is not None else np.inf for b in conv.bins])
        lim = floor[n_bin(df.n_frac.to_numpy(), conv.n_bins)] + full_within
        keep_full = set(df.id[df.gamma_J_m2.to_numpy() <= lim])
    dst = connect(dst_path)
    light = 0
    with dst:
        for row in rows:
            kv = dict(row.key_value_pairs)
            data = dict(row.data)
            if row.id in keep_full:
                dst.write(row.toatoms(), key_value_pairs=kv, data=data)
            else:
                # Enough to count the trial, place it in γ–[n] and trace it; the atoms can be
                # rebuilt from the trial parameters (data['spec']) by re-running the trial.
                kv.update(light=1, n_atoms_full=int(row.natoms))
                for key in ("energy", "fingerprint"):
                    data.pop(key, None)
                dst.write(Atoms(cell=row.cell, pbc=row.pbc), key_value_pairs=kv, data=data)
                light += 1
    return {"rows": len(rows), "light_rows": light, "full_rows": len(rows) - light}


def metadata(db_path: Path, base: dict, sigma: int) -> dict:
    """The JSON written beside a bundled database (``base`` holds command, seed, settings...)."""
    df = campaign_table(CampaignDB(db_path))
    df = df[df.source == "reference"]
    conv = convergence_from_table(df, sigma)
    counts = {k: int(v) for k, v in df.status.value_counts().to_dict().items()}
    settings = base.get("settings", {})
    return {
        **base,
        "format": 2,
        "sigma": sigma,
        "misorientation_deg": settings.get("misorientation"),
        "replicates": ["x".join(str(v) for v in r) for r in settings.get("replicates", [])],
        "counts": counts,
        "structures": counts.get("ok", 0),
        "structures_with_atoms": int(((df.status == "ok") & (df.n_atoms > 0)).sum()),
        "trials": int(len(df)),
        "ground_state": conv.ground_state,
        "metastable": conv.metastable,
        "converged": conv.converged,
        "convergence": {**conv.to_dict(), "summary": conv.summary()},
        "trial_wall_s_median": float(df.wall_s.median()) if "wall_s" in df and df.wall_s.notna().any() else None,
    }


def _pack(db_path: Path, target: Path) -> None:
    tmp = target.with_suffix(".tmp")
    with open(db_path, "rb") as src, lzma.open(tmp, "wb", preset=9 | lzma.PRESET_EXTREME) as dst:
        dst.write(src.read())
    tmp.replace(target)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("run_dir", type=Path, nargs="?")
    ap.add_argument("--command", help="the command that produced the search (default: as recorded)")
    ap.add_argument("--where", default="", help="machine it ran on")
    ap.add_argument("--full-within", type=float, default=None,
                    help="J/m²: keep atoms only of ok structures within this of their bin's lowest γ")
    ap.add_argument("--max-mb", type=float, default=25.0, help="refuse a packed file larger than this (MB)")
    ap.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where to write (default: the package data)")
    ap.add_argument("--refresh", type=float, metavar="ANGLE",
                    help="recompute the JSON of the bundled dataset for this angle (keeps command, seed, commit)")
    args = ap.parse_args()

    if args.refresh is not None:
        sigma = find_twist_csl(args.refresh).sigma
        packed = bundled_reference(args.refresh)
        if packed is None:
            raise SystemExit(f"no bundled dataset for {args.refresh}°")
        old = provenance(args.refresh)
        keep = {k: old[k] for k in ("command", "seed", "settings", "commit", "machine") if k in old}
        meta = metadata(reference_db_path(args.refresh), keep, sigma)
        meta.update(packed_bytes=packed.stat().st_size, refreshed_by=git_commit(short=True, mark_dirty=True))
        packed.with_name(f"sigma{sigma}_reference.json").write_text(json.dumps(meta, indent=2) + "\n")
        print(meta["convergence"]["summary"])
        return
    if args.run_dir is None:
        ap.error("RUN_DIR or --refresh ANGLE is required")

    settings_path = args.run_dir / "reference_settings.json"
    db_path = args.run_dir / "campaign.db"
    if not settings_path.exists() or not db_path.exists():
        raise SystemExit(f"{args.run_dir} holds no reference search (reference_settings.json + campaign.db)")
    recorded = json.loads(settings_path.read_text())
    runs = recorded.get("runs", [])
    command = args.command or (runs[-1]["argv"] if runs else None)
    if not command:
        raise SystemExit("the search recorded no command line: give --command")
    commits = sorted({r["commit"] for r in runs if r.get("commit")}) or [git_commit(short=True, mark_dirty=True)]
    if recorded["settings"].get("plane") is not None:
        # The library (and the model it trains) is keyed by the Σ of the <100> twist.
        raise SystemExit(f"{args.run_dir} is a search of another boundary (plane "
                         f"{recorded['settings']['plane']}): the library bundles <100> twist searches only")
    sigma = find_twist_csl(recorded["settings"]["misorientation"]).sigma
    args.data_dir.mkdir(parents=True, exist_ok=True)
    target = args.data_dir / f"sigma{sigma}_reference.db.xz"
    with tempfile.TemporaryDirectory() as tmp:
        compact = Path(tmp) / "reference.db"
        sizes = _compact(db_path, compact, args.full_within, sigma)
        base = {"command": command, "seed": recorded["seed"], "settings": recorded["settings"],
                "commit": ", ".join(c for c in commits if c), "machine": args.where, "runs": runs,
                "full_within_J_m2": args.full_within, **sizes}
        meta = metadata(compact, base, sigma)
        _pack(compact, target)
        meta.update(db_bytes=compact.stat().st_size, packed_bytes=target.stat().st_size)
    if target.stat().st_size > args.max_mb * 1e6:
        target.unlink()
        raise SystemExit(f"packed database {meta['packed_bytes'] / 1e6:.1f} MB > {args.max_mb} MB: "
                         "re-run with --full-within DELTA (e.g. 0.5 J/m²) to keep fewer full structures")
    target.with_name(f"sigma{sigma}_reference.json").write_text(json.dumps(meta, indent=2) + "\n")
    print(f"wrote {target} ({target.stat().st_size / 1e6:.1f} MB; {sizes['full_rows']} full rows, "
          f"{sizes['light_rows']} light) and its JSON")
    print(meta["convergence"]["summary"])
    if not meta["converged"]:
        print("warning: this search is not converged; the library's --list will say so", file=sys.stderr)


if __name__ == "__main__":
    main()
