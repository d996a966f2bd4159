"""Round the rows of campaign databases to the stored precision (float32 positions, per-atom
energies and fingerprints; `gbsearch.store.database.stored_precision`) and vacuum them.

    python scripts/slim_db.py runs/lib/sigma5/campaign.db [more.db ...]

For databases written before that rounding was applied at write time (2026-12-02): it halves
their xz-packed size. γ, [n] and every key-value pair are untouched.
"""
import sys
from pathlib import Path

from gbsearch.store.database import CampaignDB

for path in sys.argv[1:]:
    before = Path(path).stat().st_size
    n = CampaignDB(path).slim()
    print(f"{path}: {n} rows, {before / 1e6:.2f} -> {Path(path).stat().st_size / 1e6:.2f} MB")
