"""A campaign's structures in an ASE database (SQLite file by default, PostgreSQL by URL).

Every finished trial or candidate is one row, written as soon as it is known, so a killed
campaign loses only work in flight. Key-value pairs: ``source`` (reference | diffusion),
``trial`` (index within its source), ``status`` (ok | failed | duplicate), ``gamma_J_m2``,
``n_frac``, ``energy_eV``, ``replicate`` (the cell in CSL cells, "2x1"), ``n_plane`` (GB sites per
plane of that cell) and ``n_excess`` (free atoms beyond the bulk count); reference rows since
issue #19 also ``boundary``, ``potential`` (file name), ``element``, ``a0_A`` and ``e_coh_eV``;
``data`` holds the fingerprint, the trial parameters and errors.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError

DB_NAME = "campaign.db"   # the database file inside a campaign folder
GAMMA_TOL = 1e-4          # J/m², SPEC §2.5 de-duplication (γ is per area)
FINGERPRINT_TOL = 1e-3    # eV, largest difference of sorted per-atom energies
QUANTILES = 256           # points of the replication-invariant fingerprint (a power of 2: exact)
STORED_FLOAT = np.float32  # precision of stored positions, per-atom energies and fingerprints


def fingerprint(atoms: Atoms) -> np.ndarray:
    """Sorted per-atom energies (eV) of the free atoms: invariant to permutation and
    translation, different for structurally distinct GBs of equal energy and count."""
    from gbsearch.geometry.bicrystal import FIXED_REGIONS
    if "region" not in atoms.arrays:      # imported structures without regions (GRIP): all atoms
        return np.sort(atoms.arrays["energy"])
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    return np.sort(atoms.arrays["energy"][free])


def stored_precision(atoms: Atoms, data: dict) -> tuple[Atoms, dict]:
    """Positions (Å), per-atom energies and fingerprint (eV) rounded to float32 for storage.

    ASE's database keeps float64, but the last 29 bits of a relaxed position are CG noise
    (the relaxation stops at forces of 1e-3 eV/Å, far above float32's 3e-6 Å at 50 Å), and
    noise does not compress: rounded rows take half the space once the library is xz-packed,
    which keeps the library and the device's carried tree within their size limits. Float32
    energies (1e-6 eV at −9 eV) stay far inside the de-duplication tolerance (1e-3 eV)."""
    atoms = atoms.copy()
    atoms.positions = atoms.positions.astype(STORED_FLOAT).astype(float)
    data = dict(data)
    for key in ("energy", "fingerprint"):
        if key in data:
            data[key] = np.asarray(data[key]).astype(STORED_FLOAT)
    return atoms, data


def quantile_fingerprint(fp: np.ndarray, m: int = QUANTILES) -> np.ndarray:
    """The sorted energies ``fp`` (eV) read at the quantiles q = (i + ½)/m, i = 0..m−1
    (lower empirical quantile, value number ceil(q·N)). An (i, j) in-plane copy of a
    structure repeats each free-atom energy i·j times, and ceil(q·rN)/r rounds up to
    ceil(q·N), so the result is the same for every replication. q·N is exact in floating
    point because q is a dyadic fraction."""
    fp = np.asarray(fp, dtype=float)
    if len(fp) == 0:
        return np.zeros(m)
    q = (np.arange(m) + 0.5) / m
    return fp[np.ceil(q * len(fp)).astype(np.int64) - 1]


@dataclass
class _Entry:
    row_id: int
    n_atoms: int
    gamma: float
    fp: np.ndarray
    n_plane: int | None          # GB sites per (002) plane of the structure's cell
    excess: int | None           # free atoms beyond N_free,bulk (negative: vacancies)
    qfp: np.ndarray | None = None

    def quantiles(self) -> np.ndarray:
        if self.qfp is None:
            self.qfp = quantile_fingerprint(self.fp)
        return self.qfp


def _composition(info: dict, n_free: int) -> tuple[int | None, int | None]:
    """(N_plane, excess atoms) from a structure's GB metadata, (None, None) without it."""
    if "n_plane" in info and "n_free_bulk" in info:
        return int(info["n_plane"]), int(n_free) - int(info["n_free_bulk"])
    return None, None


class Known:
    """The ok structures of one source, for de-duplication (SPEC §2.5, issue #15).

    Two structures are the same when γ agrees within :data:`GAMMA_TOL` J/m² and
    - both carry GB metadata (N_plane, N_free,bulk): they have the same excess atoms per
      area (excess/N_plane, i.e. the same [n] and the same number of free planes) and the
      same number of free atoms per area, and their fingerprints agree within
      :data:`FINGERPRINT_TOL` eV: element by element when the free-atom counts are equal,
      else at the :func:`quantile_fingerprint` points (a 2×1 copy of a 1×1 structure
      matches the 1×1 one);
    - otherwise (structures without GB metadata): same atom count and equal fingerprints.
    """

    def __init__(self):
        self.entries: list[_Entry] = []

    @property
    def ids(self) -> list[int]:
        return [e.row_id for e in self.entries]

    def match(self, n_atoms: int, gamma: float, fp: np.ndarray, n_plane: int | None = None,
              excess: int | None = None) -> int | None:
        """Row id of a known structure equal to this one, or None."""
        fp = np.asarray(fp, dtype=float)
        probe = _Entry(-1, n_atoms, gamma, fp, n_plane, excess)
        for e in self.entries:
            if abs(e.gamma - gamma) >= GAMMA_TOL:
                continue
            if n_plane is None or e.n_plane is None:
                same = (e.n_atoms == n_atoms and len(e.fp) == len(fp)
                        and np.max(np.abs(e.fp - fp), initial=0.0) < FINGERPRINT_TOL)
            elif e.excess * n_plane != excess * e.n_plane or len(e.fp) * n_plane != len(fp) * e.n_plane:
                same = False
            elif len(e.fp) == len(fp):
                same = np.max(np.abs(e.fp - fp), initial=0.0) < FINGERPRINT_TOL
            else:
                same = np.max(np.abs(e.quantiles() - probe.quantiles())) < FINGERPRINT_TOL
            if same:
                return e.row_id
        return None

    def add(self, row_id: int, n_atoms: int, gamma: float, fp: np.ndarray,
            n_plane: int | None = None, excess: int | None = None) -> None:
        self.entries.append(_Entry(int(row_id), int(n_atoms), float(gamma),
                                   np.asarray(fp, dtype=float), n_plane, excess))


def _clean(value):
    """Plain Python scalars: ASE db cannot encode numpy scalars (extended XYZ reads give them)."""
    if isinstance(value, np.generic):
        return value.item()
    return value


class CampaignDB:
    """A campaign database. ``search`` arguments (optional) select the rows of one named
    search within a database shared by several (rows written with ``search=NAME``); without
    them every row of the source counts, as before."""

    def __init__(self, url: str | Path):
        from ase.db import connect
        url = str(url)
        if "://" not in url:
            path = Path(url)
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise InputError(f"cannot create campaign folder {path.parent}: {exc.strerror}") from exc
        postgres = url.startswith(("postgresql://", "postgres://"))
        for attempt in range(3):
            try:
                self.db = connect(url)
                self.db.count()       # opens the file: a corrupt or unwritable one fails here
                break
            except Exception as exc:
                # Two processes creating the tables of a fresh PostgreSQL database at once:
                # one of them loses the race; the tables exist when it tries again.
                if postgres and attempt < 2 and _lost_creation_race(exc):
                    time.sleep(0.2)
                    continue
                raise _open_error(url, exc) from exc
        if postgres:
            _fix_last_id(self.db)
        self.url = url

    def done_trials(self, source: str, search: str | None = None) -> set[int]:
        return {row.trial for row in self.db.select(**_sel(source, search), include_data=False)}

    def count(self, source: str, status: str = "ok", search: str | None = None) -> int:
        return self.db.count(**_sel(source, search), status=status)

    def known(self, source: str, search: str | None = None) -> Known:
        k = Known()
        for row in self.db.select(**_sel(source, search), status="ok"):
            if "fingerprint" not in row.data:      # a light row of a bundled library search
                continue
            fp = np.asarray(row.data["fingerprint"])
            n_plane, excess = _composition(row.data.get("info", {}), len(fp))
            k.add(row.id, row.natoms, row.gamma_J_m2, fp, n_plane, excess)
        return k

    def best(self, source: str | None = None, search: str | None = None):
        rows = [r for r in self.db.select(status="ok", include_data=False)
                if (source is None or r.source == source) and (search is None or r.get("search") == search)]
        return min(rows, key=lambda r: r.gamma_J_m2) if rows else None

    def record(self, source: str, trial: int, result: dict, known: Known | None = None,
               search: str | None = None, extra: dict | None = None) -> tuple[int, str]:
        """Write one trial result; returns (row id, status). Duplicates of an ok structure
        of the same source are stored with status 'duplicate' and ``duplicate_of``.
        ``extra``: key-value pairs of the whole search for every row (e.g. its boundary and
        potential); the row's own keys win over them."""
        atoms = result.get("atoms")
        if atoms is None:
            atoms = Atoms()
        kv = {**{k: _clean(v) for k, v in (extra or {}).items()},
              "source": source, "trial": int(trial), "status": result["status"]}
        if search is not None:
            kv["search"] = str(search)
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
        # The cell of this structure in CSL cells ("2x1") and its GB sites per plane; rows
        # written before issue #15 have neither (their search used 2x2 cells throughout).
        rep = result.get("spec", {}).get("replicate") or _replicate_of(atoms.info)
        if rep:
            kv["replicate"] = str(rep)
        if "n_plane" in atoms.info:
            kv["n_plane"] = int(atoms.info["n_plane"])
        if result["status"] == "ok":
            info = atoms.info
            kv.update(gamma_J_m2=float(info["gamma_J_m2"]), n_frac=float(info["n_frac"]),
                      energy_eV=float(info["energy_eV"]), merged_atoms=int(info.get("merged_atoms", 0)))
            if "iterations" in info:          # imported structures (GRIP) have no CG count
                kv["iterations"] = int(info["iterations"])
            fp = fingerprint(atoms)
            data["fingerprint"] = fp
            n_plane, excess = _composition(atoms.info, len(fp))
            if excess is not None:
                kv["n_excess"] = excess
            if known is not None:
                dup = known.match(len(atoms), kv["gamma_J_m2"], fp, n_plane, excess)
                if dup is not None:
                    kv.update(status="duplicate", duplicate_of=int(dup))
        else:
            data["error"] = result.get("error", "unknown error")
            data["traceback"] = result.get("traceback", "")
            kv["error"] = data["error"][:200]
        atoms, data = stored_precision(atoms, data)
        row_id = self.db.write(atoms, key_value_pairs=kv, data=data)
        if kv["status"] == "ok" and known is not None:
            known.add(row_id, len(atoms), kv["gamma_J_m2"], data["fingerprint"], n_plane, excess)
        return row_id, kv["status"]

    def rows(self, **selection):
        return self.db.select(**selection)

    def slim(self) -> int:
        """Rewrite every row at :data:`STORED_FLOAT` precision (rows written before it was
        applied); returns the number of rows rewritten. SQLite files are vacuumed."""
        ids = [r.id for r in self.db.select(include_data=False)]
        for row_id in ids:
            row = self.db.get(id=row_id)
            atoms, data = stored_precision(row.toatoms(), dict(row.data))
            self.db.update(row_id, atoms=atoms, data=data)
        if "://" not in self.url:
            import sqlite3
            with sqlite3.connect(self.url) as con:
                con.execute("VACUUM")
        return len(ids)

    def atoms(self, row_id: int) -> Atoms:
        """The stored structure with regions, per-atom energies and GB metadata restored."""
        return row_to_atoms(self.db.get(id=row_id))


def _sel(source: str, search: str | None) -> dict:
    return {"source": source} if search is None else {"source": source, "search": search}


def masked_url(url: str) -> str:
    """``url`` with its password replaced by ***."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    netloc, slash, tail = rest.partition("/")
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        if ":" in userinfo:
            netloc = userinfo.split(":", 1)[0] + ":***@" + host
    return f"{scheme}://{netloc}{slash}{tail}"


def _open_error(url: str, exc: Exception) -> InputError:
    """One line naming the database (password masked) and the cause."""
    shown = masked_url(url)
    if isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] in ("ase_db_backends", "psycopg2"):
        return InputError(f"cannot open campaign database {shown}: the PostgreSQL backend is not installed "
                          f"(no module {exc.name}); install gbsearch[postgresql]: pip install 'gbsearch[postgresql]'")
    cause = " ".join(str(exc).split()) or type(exc).__name__
    if shown != url:
        cause = cause.replace(url, shown)
    return InputError(f"cannot open campaign database {shown}: {cause}")


def _lost_creation_race(exc: Exception) -> bool:
    text = str(exc)
    return ("already exists" in text or "pg_type_typname_nsp_index" in text
            or "duplicate key value" in text)


def _fix_last_id(db) -> None:
    """ase-db-backends (0.11) reads a new row's id as ``last_value`` of the id sequence, the
    last id handed out to ANY connection: with two writers at once ``write`` can return the
    other writer's row. ``currval`` is this connection's own last id."""
    def get_last_id(cur):
        cur.execute("SELECT currval('systems_id_seq')")
        return int(cur.fetchone()[0])
    db.get_last_id = get_last_id


def _replicate_of(info: dict) -> str | None:
    """"2x1" from a slab's ``info["replicate"]`` ("2 1"), None without it."""
    rep = info.get("replicate")
    if rep is None:
        return None
    parts = str(rep).replace("x", " ").split()
    return "x".join(parts) if len(parts) == 2 else None


def row_replicate(row) -> str:
    """A stored structure's replication ("2x1"); rows without one are the pre-#15 2x2 search."""
    return row.get("replicate") or _replicate_of(row.data.get("info", {})) or "2x2"


def row_to_atoms(row) -> Atoms:
    atoms = row.toatoms()
    if "tags" in row:                     # rows without regions (GRIP imports) store no tags
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
    if "://" in str(reference):              # a database URL (PostgreSQL)
        db_path = str(reference)
    else:
        db_path = path / DB_NAME if path.is_dir() else path
    if "://" not in str(db_path) and not db_path.exists():
        raise InputError(f"no reference database at {db_path} (run `gbsearch reference --out {path}` first)")
    rows = CampaignDB(db_path).rows(source="reference", status="ok")
    out = []
    for row in rows:
        # light rows (bundled without atoms, see scripts/bundle_reference.py) are not structures
        if not row.get("light") and (n_window is None or in_window(row.n_frac, n_window)):
            out.append(row_to_atoms(row))
    if not out:
        raise InputError(f"no ok reference structures in {db_path}"
                         + (f" with {n_window[0]} <= [n] < {n_window[1]}" if n_window else ""))
    return out
