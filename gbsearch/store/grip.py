"""GRIP's results format (enze-chen/grip): read a ``best/`` folder into a campaign, write ours as one.

GRIP keeps each relaxed structure as a single-frame LAMMPS custom dump in ``best/``, named
``lammps_{Egb:.3f}_{n:.3f}_{dx:.2f}_{dy:.2f}_{rx}_{ry}_{T}_{steps}`` (Egb in J/m², n the atom
fraction of a plane, dx dy the in-plane shift of the upper slab in Å, rx ry its in-plane
replications, T in K, steps the MD steps, 0 = CG only, when T means nothing). The dump has
columns ``id type x y z c_eng`` (c_eng: per-atom energy, eV), box ``pp pp ss`` and one extra
last line ``Egb = <J/m²>``. ``best/best_grip_data.csv`` (columns ``n,Egb,dx,dy,rx,ry,T,steps,f``)
summarises the folder where GRIP's ``unique.py -s`` or ``plot_gco.py`` wrote it.

γ and [n] of an imported row are GRIP's own numbers: γ from the ``Egb =`` line (GRIP's energy
region and its YAML E_coh), [n] from the CSV row of the file where there is one, else from the
name (3 decimals). GRIP dumps carry no regions, so imported rows have none.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ase import Atoms

from gbsearch.errors import InputError

SOURCE = "grip"
PREFIX = "lammps_"
CSV_NAME = "best_grip_data.csv"
CSV_COLUMNS = ["n", "Egb", "dx", "dy", "rx", "ry", "T", "steps", "f"]
COLUMNS = ["id", "type", "x", "y", "z", "c_eng"]
SYMBOL = "W"           # type 1; gbsearch is a W code
NAME_EGB_TOL = 5e-4 + 1e-9    # J/m²: the name holds Egb to 3 decimals
NAME_N_TOL = 5e-3 + 1e-9      # older GRIP names hold n to 2 decimals


@dataclass(frozen=True)
class GripName:
    egb: float
    n: float
    dx: float
    dy: float
    rx: int
    ry: int
    temperature: int
    steps: int

    def format(self) -> str:
        return (f"{PREFIX}{self.egb:.3f}_{self.n:.3f}_{self.dx:.2f}_{self.dy:.2f}_"
                f"{self.rx:d}_{self.ry:d}_{self.temperature:d}_{self.steps:d}")


def parse_name(name: str) -> GripName:
    """The fields of a GRIP dump name; InputError naming the file when it does not parse."""
    tokens = name.split("_")
    try:
        if len(tokens) != 9 or tokens[0] != "lammps":
            raise ValueError
        egb, n, dx, dy = (float(t) for t in tokens[1:5])
        rx, ry, temp, steps = (int(t) for t in tokens[5:9])
        if not all(math.isfinite(v) for v in (egb, n, dx, dy)) or min(rx, ry) < 1 or min(temp, steps) < 0:
            raise ValueError
    except ValueError:
        raise InputError(f"{name}: not a GRIP dump name (want lammps_Egb_n_dx_dy_rx_ry_T_steps, "
                         f"e.g. lammps_2.297_0.200_0.59_0.60_1_1_1100_3000)") from None
    return GripName(egb, n, dx, dy, rx, ry, temp, steps)


@dataclass
class GripDump:
    atoms: Atoms           # positions relative to the box's lower corner; arrays["energy"] (eV)
    egb: float | None      # the "Egb =" line, J/m²; None when the file has none
    box_lo: tuple


def read_dump(path: str | Path) -> GripDump:
    """One GRIP dump: a single LAMMPS custom frame ``id type x y z c_eng`` plus ``Egb =``."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read GRIP dump ({exc})") from exc

    def bad(why: str) -> InputError:
        return InputError(f"{path}: not a complete GRIP dump ({why})")

    def expect(i: int, head: str) -> str:
        if i >= len(lines):
            raise bad(f"file ends before '{head}'")
        if not lines[i].startswith(head):
            raise bad(f"line {i + 1} should start with '{head}'")
        return lines[i]

    expect(0, "ITEM: TIMESTEP")
    expect(2, "ITEM: NUMBER OF ATOMS")
    try:
        n_atoms = int(lines[3])
    except (IndexError, ValueError):
        raise bad("no atom count on line 4") from None
    box = expect(4, "ITEM: BOX BOUNDS").split()[3:]
    if len(box) != 3 or any(b not in ("pp", "ps", "ss", "sp", "pf", "fp", "ff", "fs", "sf",
                                      "mm", "pm", "mp", "sm", "ms", "fm", "mf") for b in box):
        raise bad("box bounds must be orthogonal, e.g. 'pp pp ss'")
    try:
        bounds = np.array([[float(v) for v in lines[5 + k].split()[:2]] for k in range(3)])
    except (IndexError, ValueError):
        raise bad("box bounds unreadable") from None
    if bounds.shape != (3, 2):
        raise bad("box bounds unreadable")
    columns = expect(8, "ITEM: ATOMS").split()[2:]
    if columns != COLUMNS:
        raise bad(f"atom columns are {' '.join(columns)}, GRIP writes {' '.join(COLUMNS)}")
    body = lines[9:9 + n_atoms]
    if len(body) < n_atoms:
        raise bad(f"{len(body)} of {n_atoms} atom lines")
    try:
        table = np.array([[float(v) for v in line.split()] for line in body])
    except ValueError:
        raise bad("an atom line is not numbers") from None
    if table.shape != (n_atoms, 6):
        raise bad("an atom line does not have 6 columns")
    egb = None
    for line in lines[9 + n_atoms:]:
        tokens = line.split()
        if not tokens:
            continue
        if len(tokens) == 3 and tokens[:2] == ["Egb", "="] and egb is None:
            try:
                egb = float(tokens[2])
            except ValueError:
                raise bad(f"unreadable line '{line.strip()}'") from None
        else:
            raise bad(f"unexpected line after the atoms: '{line.strip()[:60]}'")
    types = set(table[:, 1].astype(int))
    if types - {1}:
        raise bad(f"atom types {sorted(types)}: gbsearch reads single-element (W, type 1) dumps")
    order = np.argsort(table[:, 0], kind="stable")
    table = table[order]
    lo = bounds[:, 0]
    atoms = Atoms(SYMBOL * n_atoms, positions=table[:, 2:5] - lo, cell=np.diag(bounds[:, 1] - lo),
                  pbc=[b == "pp" for b in box])
    atoms.arrays["energy"] = table[:, 5].copy()
    return GripDump(atoms, egb, tuple(lo))


def best_folder(folder: str | Path) -> Path:
    """``folder``/best when GRIP's run folder is given, else ``folder`` itself."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"{folder}: no such folder")
    return folder / "best" if (folder / "best").is_dir() else folder


def _read_csv(best: Path) -> dict[str, dict]:
    """best_grip_data.csv rows by file name; {} when the CSV is absent or has no ``f`` column
    (GRIP's older n,Egb form)."""
    import pandas as pd
    path = best / CSV_NAME
    if not path.exists():
        return {}
    try:
        df = pd.read_csv(path)
    except Exception as exc:
        raise InputError(f"{path}: unreadable CSV ({exc})") from exc
    if "f" not in df.columns or "n" not in df.columns:
        return {}
    return {str(r["f"]): r for r in df.to_dict("records")}


def read_folder(folder: str | Path) -> list[tuple[str, dict]]:
    """(file name, record for CampaignDB.record) for every dump in a GRIP results folder."""
    best = best_folder(folder)
    files = sorted(p for p in best.iterdir() if p.is_file() and p.name.startswith(PREFIX))
    if not files:
        raise InputError(f"{best}: not GRIP output (no {PREFIX}<Egb>_<n>_... dump files)")
    csv = _read_csv(best)
    out = []
    for path in files:
        name = parse_name(path.name)
        dump = read_dump(path)
        egb = dump.egb if dump.egb is not None else name.egb
        if abs(egb - name.egb) > NAME_EGB_TOL:
            raise InputError(f"{path}: 'Egb = {egb}' line disagrees with the name's {name.egb:.3f}")
        n, n_from = name.n, "name"
        row = csv.get(path.name)
        if row is not None and np.isfinite(row["n"]):
            if abs(row["n"] - name.n) > NAME_N_TOL:
                raise InputError(f"{best / CSV_NAME}: n = {row['n']} for {path.name} disagrees with its name")
            n, n_from = float(row["n"]), CSV_NAME
        atoms = dump.atoms
        atoms.info.update(gamma_J_m2=float(egb), n_frac=float(n),
                          energy_eV=float(atoms.arrays["energy"].sum()))
        spec = {"file": path.name, "dx": name.dx, "dy": name.dy, "rx": name.rx, "ry": name.ry,
                "T": name.temperature, "steps": name.steps,
                "gamma_from": "GRIP Egb line" if dump.egb is not None else "GRIP file name",
                "n_from": f"GRIP {n_from}",
                "box_lo": [float(v) for v in dump.box_lo]}
        out.append((path.name, {"spec": spec, "status": "ok", "atoms": atoms}))
    return out


def import_folder(db, folder: str | Path) -> tuple[int, int]:
    """Add a GRIP folder's dumps to ``db`` (a CampaignDB) with source ``grip``; dumps already
    imported (same file name and total energy) are skipped. Returns (added, skipped). Every file is read and
    checked before any row is written, so a bad file leaves the database unchanged."""
    records = read_folder(folder)
    def key(name, energy):      # a file name and its total energy: the same dump read twice
        return name, round(float(energy), 6)
    have = {key(row.get("p_file"), row.energy_eV) for row in db.rows(source=SOURCE, include_data=False)}
    trials = db.done_trials(SOURCE)
    trial = max(trials) + 1 if trials else 0
    added = 0
    for name, record in records:
        k = key(name, record["atoms"].info["energy_eV"])
        if k in have:
            continue
        db.record(SOURCE, trial, record)
        have.add(k)
        trial += 1
        added += 1
    return added, len(records) - added


def _export_name(row) -> GripName:
    from gbsearch.store.database import row_replicate
    spec = row.data.get("spec", {})
    if row.source == SOURCE:
        return GripName(row.gamma_J_m2, row.n_frac, float(spec["dx"]), float(spec["dy"]), int(spec["rx"]),
                        int(spec["ry"]), int(spec["T"]), int(spec["steps"]))
    # rx ry: our replication of the CSL cell (GRIP's own 1x1 cell can be another one, e.g. its
    # W(310) twist cell is 10.01 Å, the Σ5 CSL cell 7.08 Å); dx dy: our shift of the upper grain
    rx, ry = (int(v) for v in row_replicate(row).split("x"))
    if "shift_x" in spec:                              # a reference trial (TrialSpec.as_dict)
        shift = (spec["shift_x"], spec["shift_y"])
    else:                                              # a diffusion candidate: its slab's shift
        shift = str(row.data.get("info", {}).get("shift", "0 0")).split()
    steps = int(spec.get("md_steps") or 0)
    temp = int(round(float(spec.get("md_temperature") or 0))) if steps else 0
    return GripName(row.gamma_J_m2, row.n_frac, float(shift[0]), float(shift[1]), rx, ry, temp, steps)


def write_dump(path: Path, atoms: Atoms, egb: float) -> None:
    """A GRIP-style dump: single frame, ``pp pp ss`` box, ``id type x y z c_eng``, ``Egb =``."""
    cell = np.asarray(atoms.cell)
    if np.abs(cell - np.diag(np.diag(cell))).max() > 1e-8:
        raise InputError(f"{path.name}: the cell is not orthogonal; GRIP dumps are 'pp pp ss' boxes")
    lx, ly = cell[0, 0], cell[1, 1]
    pos = atoms.positions.copy()
    pos[:, 0] %= lx
    pos[:, 1] %= ly
    zlo, zhi = pos[:, 2].min(), pos[:, 2].max()
    lines = ["ITEM: TIMESTEP", "0", "ITEM: NUMBER OF ATOMS", str(len(atoms)), "ITEM: BOX BOUNDS pp pp ss",
             f"0 {lx:.16e}", f"0 {ly:.16e}", f"{zlo:.16e} {zhi:.16e}", "ITEM: ATOMS " + " ".join(COLUMNS)]
    energy = atoms.arrays["energy"]
    lines += [f"{i + 1} 1 {p[0]:.17g} {p[1]:.17g} {p[2]:.17g} {e:.17g}" for i, (p, e) in enumerate(zip(pos, energy))]
    lines.append(f"Egb = {float(egb)!r}")     # full precision: the round trip keeps γ exactly
    path.write_text("\n".join(lines) + "\n")


def export_campaign(db, out: str | Path, sources: tuple[str, ...] | None) -> tuple[Path, int, list[str]]:
    """Write the ok structures of ``sources`` (None: all) as GRIP dumps plus best_grip_data.csv
    into ``out``/best (``out`` itself if it is named best). Returns (folder, written, notes)."""
    import pandas as pd
    from gbsearch.store.database import row_to_atoms

    out = Path(out)
    best = out if out.name == "best" else out / "best"
    rows = sorted((r for r in db.rows(status="ok") if sources is None or r.source in sources),
                  key=lambda r: r.gamma_J_m2)
    if not rows:
        raise InputError(f"no ok structures{' of ' + '/'.join(sources) if sources else ''} in {db.url}")
    best.mkdir(parents=True, exist_ok=True)
    written, notes, table = set(), [], []
    for row in rows:
        atoms = row_to_atoms(row)
        if "energy" not in atoms.arrays:
            notes.append(f"id {row.id}: no per-atom energies, not written")
            continue
        name = _export_name(row)
        fname = name.format()
        if fname in written:
            notes.append(f"id {row.id}: same GRIP name as a written structure ({fname}), not written")
            continue
        write_dump(best / fname, atoms, row.gamma_J_m2)
        written.add(fname)
        # full-precision n and Egb: GRIP's readers parse them as floats; the name keeps 3 decimals
        table.append({"n": row.n_frac, "Egb": row.gamma_J_m2, "dx": round(name.dx, 2), "dy": round(name.dy, 2),
                      "rx": name.rx, "ry": name.ry, "T": name.temperature, "steps": name.steps, "f": fname})
    pd.DataFrame(table, columns=CSV_COLUMNS).sort_values("Egb").to_csv(best / CSV_NAME, index=False)
    return best, len(table), notes
