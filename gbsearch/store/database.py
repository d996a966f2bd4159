"""A campaign's structures in an ASE database (SQLite file by default, PostgreSQL by URL).

Every finished trial or candidate is one row, written as soon as it is known, so a killed
campaign loses only work in flight. Key-value pairs: ``source`` (reference | diffusion),
``trial`` (index within its source), ``status`` (ok | failed | duplicate), ``gamma_J_m2``,
``n_frac``, ``energy_eV``; ``data`` holds the fingerprint, the trial parameters and errors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError

DB_NAME = "campaign.db"   # the database file inside a campaign folder
GAMMA_TOL = 1e-4          # J/m², SPEC §2.5 de-duplication
FINGERPRINT_TOL = 1e-3    # eV, largest difference of sorted per-atom energies


def fingerprint(atoms: Atoms) -> np.ndarray:
    """Sorted per-atom energies (eV) of the free atoms: invariant to permutation and
    translation, different for structurally distinct GBs of equal energy and count."""
    from gbsearch.geometry.bicrystal import FIXED_REGIONS
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    return np.sort(atoms.arrays["energy"][free])


@dataclass
class Known:
    """The ok structures of one source, for de-duplication."""
    n_atoms: list
    gammas: list
    prints: list
    ids: list

    def match(self, n_atoms: int, gamma: float, fp: np.ndarray) -> int | None:
        for i in range(len(self.ids)):
            if (self.n_atoms[i] == n_atoms and abs(self.gammas[i] - gamma) < GAMMA_TOL
                    and len(self.prints[i]) == len(fp)
                    and np.max(np.abs(self.prints[i] - fp)) < FINGERPRINT_TOL):
                return self.ids[i]
        return None

    def add(self, row_id: int, n_atoms: int, gamma: float, fp: np.ndarray) -> None:
        self.ids.append(row_id)
        self.n_atoms.append(n_atoms)
        self.gammas.append(gamma)
        self.prints.append(fp)


def _clean(value):
    """Plain Python scalars: ASE db cannot encode numpy scalars (extended XYZ reads give them)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class CampaignDB:
    def __init__(self, url: str | Path):
        from ase.db import connect
        url = str(url)
        if "://" not in url:
            path = Path(url)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create campaign folder {path.parent}: {exc.strerror}") from exc
        try:
            self.db = connect(url)
            self.db.count()       # opens the file: a corrupt or unwritable one fails here
        except Exception as exc:
            raise InputError(f"cannot open campaign database {url}: {exc}") from exc
        self.url = url

    def done_trials(self, source: str) -> set[int]:
        return {row.trial for row in self.db.select(source=source, include_data=False)}

    def count(self, source: str, status: str = "ok") -> int:
        return self.db.count(source=source, status=status)

    def known(self, source: str) -> Known:
        k = Known([], [], [], [])
        for row in self.db.select(source=source, status="ok"):
            k.add(row.id, row.natoms, row.gamma_J_m2, np.asarray(row.data["fingerprint"]))
        return k

    def best(self, source: str | None = None):
        rows = [r for r in self.db.select(status="ok", include_data=False)
                if source is None or r.source == source]
        return min(rows, key=lambda r: r.gamma_J_m2) if rows else None

    def record(self, source: str, trial: int, result: dict, known: Known | None = None) -> tuple[int, str]:
        """Write one trial result; returns (row id, status). Duplicates of an ok structure
        of the same source are stored with status 'duplicate' and ``duplicate_of``."""
        atoms = result.get("atoms")
        if atoms is None:
            atoms = Atoms()
        kv = {"source": source, "trial": int(trial), "status": result["status"]}
        if "wall_s" in result:
            kv["wall_s"] = float(result["wall_s"])
        data = {"spec": {k: _clean(v) for k, v in result.get("spec", {}).items()},
                "info": {k: _clean(v) for k, v in atoms.info.items()}}
        # ASE db keeps no custom per-atom arrays: regions go to tags, energies to data.
        atoms = atoms.copy()
        if "region" in atoms.arrays:
            atoms.set_tags(atoms.arrays["region"])
        if "energy" in atoms.arrays:
            data["energy"] = np.asarray(atoms.arrays["energy"])
        for key, value in result.get("spec", {}).items():
            if isinstance(value, (int, float, str, np.integer, np.floating)) and key not in kv:
                kv[f"p_{key}"] = _clean(value)
        if result["status"] == "ok":
            info = atoms.info
            kv.update(gamma_J_m2=float(info["gamma_J_m2"]), n_frac=float(info["n_frac"]),
                      energy_eV=float(info["energy_eV"]), iterations=int(info["iterations"]),
                      merged_atoms=int(info.get("merged_atoms", 0)))
            fp = fingerprint(atoms)
            data["fingerprint"] = fp
            if known is not None:
                dup = known.match(len(atoms), kv["gamma_J_m2"], fp)
                if dup is not None:
                    kv.update(status="duplicate", duplicate_of=int(dup))
        else:
            data["error"] = result.get("error", "unknown error")
            data["traceback"] = result.get("traceback", "")
            kv["error"] = data["error"][:200]
        row_id = self.db.write(atoms, key_value_pairs=kv, data=data)
        if kv["status"] == "ok" and known is not None:
            known.add(row_id, len(atoms), kv["gamma_J_m2"], data["fingerprint"])
        return row_id, kv["status"]

    def rows(self, **selection):
        return self.db.select(**selection)

    def atoms(self, row_id: int) -> Atoms:
        """The stored structure with regions, per-atom energies and GB metadata restored."""
        return row_to_atoms(self.db.get(id=row_id))


def row_to_atoms(row) -> Atoms:
    atoms = row.toatoms()
    atoms.arrays["region"] = atoms.get_tags().astype(np.int32)
    data = row.data
    if "energy" in data:
        atoms.arrays["energy"] = np.asarray(data["energy"])
    atoms.info.update(data.get("info", {}))
    for key in ("source", "status", "gamma_J_m2", "n_frac", "trial"):
        if key in row:
            atoms.info[key] = row[key]
    atoms.info["db_id"] = row.id
    return atoms


def in_window(n_frac: float, window: tuple[float, float]) -> bool:
    """Whether [n] = ``n_frac`` lies in ``window`` = (lo, hi): lo <= [n] < hi. [n] is periodic
    (paper Eq. 8), so lo > hi means the window wraps through 0: [lo, 1) plus [0, hi)."""
    lo, hi = window
    return lo <= n_frac < hi if lo <= hi else (n_frac >= lo or n_frac < hi)


def load_reference_structures(reference: str | Path, n_window: tuple[float, float] | None = None) -> list[Atoms]:
    """Distinct relaxed reference structures of a campaign (folder or database path),
    optionally only those with lo <= [n] < hi ([n] is periodic: lo > hi means the window
    wraps through 0, i.e. [lo, 1) plus [0, hi))."""
    path = Path(reference)
    db_path = path / DB_NAME if path.is_dir() else path
    if not db_path.exists():
        raise InputError(f"no reference database at {db_path} (run `gbsearch reference --out {path}` first)")
    rows = CampaignDB(db_path).rows(source="reference", status="ok")
    out = []
    for row in rows:
        if n_window is None or in_window(row.n_frac, n_window):
            out.append(row_to_atoms(row))
    if not out:
        raise InputError(f"no ok reference structures in {db_path}"
                         + (f" with {n_window[0]} <= [n] < {n_window[1]}" if n_window else ""))
    return out
