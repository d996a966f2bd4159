"""Bundled reference datasets (grand-canonical searches shipped with the package), no torch.

Each is an ASE SQLite database compressed with xz, ``gbsearch/data/reference/sigma{Σ}_reference.db.xz``,
with ``sigma{Σ}_reference.json`` beside it saying how it was produced (command, seed, commit,
settings) and what it holds (counts, ground state, metastable minimum, convergence), written by
``scripts/bundle_reference.py``. :func:`library` lists them from the JSON files alone.
"""
from __future__ import annotations

import json
import lzma
import re
import shutil
from pathlib import Path

from ase import Atoms

from gbsearch.errors import InputError
from gbsearch.geometry.csl import DEFAULT_MISORIENTATION
from gbsearch.io_utils import atomic_path, atomic_write, cache_dir

DATA_DIR = Path(__file__).resolve().parents[1] / "data" / "reference"
_PACKED = re.compile(r"^sigma(\d+)_reference\.db\.xz$")


def _name(boundary) -> str:
    from gbsearch.geometry.csl import as_boundary
    return f"sigma{as_boundary(boundary).sigma}"


def bundled_reference(misorientation: float = DEFAULT_MISORIENTATION) -> Path | None:
    """Compressed database shipped for this boundary, or None."""
    path = DATA_DIR / f"{_name(misorientation)}_reference.db.xz"
    return path if path.exists() else None


def reference_db_path(misorientation: float = DEFAULT_MISORIENTATION) -> Path:
    """Uncompressed copy of the bundled database (made once in the user cache)."""
    packed = bundled_reference(misorientation)
    if packed is None:
        listed = ", ".join(f"Σ{e['sigma']} {e['misorientation_deg']:.2f}°" for e in library()) or "none"
        raise InputError(f"no bundled reference dataset for {misorientation}° (bundled: {listed}); run "
                         f"`gbsearch reference --misorientation {misorientation} --out DIR`")
    target = cache_dir() / packed.name[:-3]
    stamp = target.with_suffix(".stamp")
    key = f"{packed.stat().st_size}:{packed.stat().st_mtime_ns}"
    if not target.exists() or not stamp.exists() or stamp.read_text() != key:
        with atomic_path(target) as tmp, lzma.open(packed) as src, open(tmp, "wb") as dst:
            shutil.copyfileobj(src, dst)
        atomic_write(stamp, key)
    return target


def load_reference_dataset(misorientation: float = DEFAULT_MISORIENTATION, n_window=None) -> list[Atoms]:
    """The bundled reference structures (relaxed ``Atoms`` with ``info["gamma_J_m2"]``,
    ``info["n_frac"]``, regions and per-atom energies), optionally lo <= [n] < hi only."""
    # store.database, not gbmodel.model: reading references must not import torch.
    from gbsearch.store.database import load_reference_structures
    return load_reference_structures(reference_db_path(misorientation), n_window)


def provenance(misorientation: float = DEFAULT_MISORIENTATION) -> dict:
    packed = bundled_reference(misorientation)
    if packed is None:
        return {}
    meta = packed.with_name(packed.name.replace(".db.xz", ".json"))
    return json.loads(meta.read_text()) if meta.exists() else {}


def library(data_dir: str | Path | None = None) -> list[dict]:
    """Every bundled dataset, smallest Σ first, from its JSON metadata alone (nothing is
    decompressed). Each entry: sigma, misorientation_deg, csl_edge_A (Å), replicates (list of
    "IxJ"), n_plane (list, GB sites per plane of each replication), structures (distinct ok),
    trials (all rows), structures_with_atoms (ok rows stored with their atoms), ground_state / metastable ({n_frac, gamma_J_m2 in J/m²} or None),
    converged (True / False / None when not recorded), path, packed_MB, meta (the whole JSON)."""
    from gbsearch.geometry.csl import csl_twist_angles
    from gbsearch.geometry.bicrystal import A0_W
    folder = Path(data_dir) if data_dir is not None else DATA_DIR
    by_sigma = {}
    for c in csl_twist_angles(101):
        by_sigma.setdefault(c.sigma, c)
    out = []
    for packed in sorted(folder.glob("sigma*_reference.db.xz"), key=lambda p: int(_PACKED.match(p.name).group(1))
                         if _PACKED.match(p.name) else 10**9):
        m = _PACKED.match(packed.name)
        if m is None:
            continue
        sigma = int(m.group(1))
        meta_path = packed.with_name(f"sigma{sigma}_reference.json")
        meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
        settings = meta.get("settings", {})
        angle = settings.get("misorientation", meta.get("misorientation_deg"))
        if angle is None and sigma in by_sigma:
            angle = by_sigma[sigma].angle_deg
        reps = [f"{int(a)}x{int(b)}" for a, b in settings.get("replicates", [])] or meta.get("replicates", [])
        counts = meta.get("counts", {})
        conv = meta.get("convergence") or {}
        out.append({
            "sigma": sigma,
            "misorientation_deg": float(angle) if angle is not None else float("nan"),
            "csl_edge_A": sigma ** 0.5 * A0_W,
            "replicates": reps,
            "n_plane": [sigma * int(a) * int(b) for a, b in (r.split("x") for r in reps)],
            "structures": int(meta.get("structures", counts.get("ok", 0))),
            "structures_with_atoms": int(meta.get("structures_with_atoms", meta.get("structures", counts.get("ok", 0)))),
            "trials": int(meta.get("trials", sum(int(v) for v in counts.values()))),
            "ground_state": meta.get("ground_state"),
            "metastable": meta.get("metastable"),
            "converged": meta.get("converged", conv.get("converged")),
            "path": str(packed),
            "packed_MB": packed.stat().st_size / 1e6,
            "meta": meta,
        })
    return out


def _replicates_text(reps: list[str]) -> str:
    """["1x1", "1x2", "2x1", "2x2"] → "1..2x1..2"; other sets listed."""
    pairs = sorted(tuple(int(v) for v in r.split("x")) for r in reps)
    if not pairs:
        return "?"
    a, b = max(p[0] for p in pairs), max(p[1] for p in pairs)
    full = sorted((i, j) for i in range(1, a + 1) for j in range(1, b + 1))
    if pairs == full and len(pairs) >= 4:     # a grid; shorter sets read better listed
        return f"1..{a}x1..{b}"
    return ",".join(f"{i}x{j}" for i, j in pairs)


def library_table(entries: list[dict] | None = None) -> str:
    """The bundled library as a text table (``gbsearch reference --list``)."""
    entries = library() if entries is None else entries
    if not entries:
        return f"no bundled reference datasets in {DATA_DIR}"
    head = ["Σ", "angle (°)", "cell: edge (Å), replications", "N_plane", "structures", "trials",
            "ground state [n], γ (J/m²)", "metastable [n], γ (J/m²)", "converged"]
    rows = []
    for e in entries:
        n_plane = e["n_plane"]
        gs, ms = e["ground_state"], e["metastable"]
        conv = {True: "yes", False: "no", None: "not recorded"}[e["converged"]]
        rows.append([str(e["sigma"]), f"{e['misorientation_deg']:.2f}",
                     f"{e['csl_edge_A']:.3f}, {_replicates_text(e['replicates'])}",
                     (f"{min(n_plane)}" if len(set(n_plane)) == 1 else f"{min(n_plane)}–{max(n_plane)}") if n_plane else "?",
                     str(e["structures"]) + (f" ({e['structures_with_atoms']} with atoms)"
                                             if e["structures_with_atoms"] != e["structures"] else ""),
                     str(e["trials"]),
                     f"{gs['n_frac']:.4f}, {gs['gamma_J_m2']:.4f}" if gs else "-",
                     f"{ms['n_frac']:.4f}, {ms['gamma_J_m2']:.4f}" if ms else "-", conv])
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(head)]
    fmt = lambda r: "  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt(head), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])
