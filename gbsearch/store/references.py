"""Bundled reference datasets (grand-canonical searches shipped with the package).

Each is an ASE SQLite database compressed with xz under ``gbsearch/data/reference/``, with a
JSON file beside it saying how it was produced (command, seed, commit).
"""
from __future__ import annotations

import json
import lzma
import shutil
from pathlib import Path

from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.io_utils import atomic_path, atomic_write, cache_dir

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"


def _name(boundary) -> str:
    from gbsearch.geometry.csl import as_boundary
    return f"sigma{as_boundary(boundary).sigma}"


def bundled_reference(misorientation: float = 36.87) -> Path | None:
    """Compressed database shipped for this boundary, or None."""
    path = DATA_DIR / f"{_name(misorientation)}_reference.db.xz"
    return path if path.exists() else None


def reference_db_path(misorientation: float = 36.87) -> Path:
    """Uncompressed copy of the bundled database (made once in the user cache)."""
    packed = bundled_reference(misorientation)
    if packed is None:
        raise InputError(f"no bundled reference dataset for {misorientation}°; run "
                         f"`gbsearch reference --misorientation {misorientation} --out DIR`")
    target = cache_dir() / packed.name[:-3]
    stamp = target.with_suffix(".stamp")
    key = f"{packed.stat().st_size}:{packed.stat().st_mtime_ns}"
    if not target.exists() or not stamp.exists() or stamp.read_text() != key:
        with atomic_path(target) as tmp, lzma.open(packed) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        atomic_write(stamp, key)
    return target


def load_reference_dataset(misorientation: float = 36.87, n_window=None) -> list[Atoms]:
    """The bundled reference structures (relaxed ``Atoms`` with ``info["gamma_J_m2"]``,
    ``info["n_frac"]``, regions and per-atom energies), optionally lo <= [n] < hi only."""
    # store.database, not gbmodel.model: reading references must not import torch.
    from gbsearch.store.database import load_reference_structures
    return load_reference_structures(reference_db_path(misorientation), n_window)


def provenance(misorientation: float = 36.87) -> dict:
    packed = bundled_reference(misorientation)
    if packed is None:
        return {}
    meta = packed.with_name(packed.name.replace(".db.xz", ".json"))
    return json.loads(meta.read_text()) if meta.exists() else {}
