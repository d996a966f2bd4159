"""Per-structure metrics: atom count, Steinhardt q4/q6 (freud), RDF (freud), fraction of
atoms identified as the target phase (OVITO polyhedral template matching)."""
from __future__ import annotations

import numpy as np

from .phases import NN, PhaseSpec, phase_spec

# cutoffs for the Steinhardt neighbourhood: first shell (SC 6, BCC 8+6, FCC 12)
Q_RMAX = {"sc": 1.2 * NN, "bcc": 1.25 * NN, "fcc": 1.2 * NN}


def _box(L: float):
    import freud
    return freud.box.Box.cube(L)


def _centered(pos: np.ndarray, L: float) -> np.ndarray:
    # freud boxes are centred on the origin
    return (np.mod(pos, L) - L / 2).astype(np.float32)


def steinhardt(pos: np.ndarray, L: float, phase: str) -> tuple[np.ndarray, np.ndarray]:
    """Per-atom (q4, q6) with neighbours within the phase's first-shell cutoff."""
    import freud
    if len(pos) == 0:
        return np.zeros(0), np.zeros(0)
    box = _box(L)
    p = _centered(pos, L)
    out = []
    for l in (4, 6):
        st = freud.order.Steinhardt(l)
        st.compute((box, p), neighbors={"r_max": Q_RMAX[phase]})
        out.append(np.nan_to_num(np.asarray(st.particle_order, dtype=float)))
    return out[0], out[1]


def rdf(pos: np.ndarray, L: float, r_max: float | None = None, bins: int = 80) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, g(r)) up to r_max (default just under L/2)."""
    import freud
    r_max = min(r_max or L / 2 * 0.999, L / 2 * 0.999)
    r = freud.density.RDF(bins=bins, r_max=r_max)
    if len(pos) < 2:
        return np.asarray(r.bin_centers), np.zeros(bins)
    r.compute((_box(L), _centered(pos, L)))
    return np.asarray(r.bin_centers), np.asarray(r.rdf)


_PTM_TYPE = {"sc": "SC", "bcc": "BCC", "fcc": "FCC"}


def ptm_fraction(pos: np.ndarray, L: float, phase: str, rmsd_cutoff: float = 0.1) -> float:
    """Fraction of atoms (Cartesian positions in Å, periodic cube of edge L Å) that OVITO's PTM,
    choosing among SC, BCC, FCC and HCP, assigns to the target ``phase``."""
    from ase import Atoms

    from gbsearch.analysis.ptm import CRYSTAL_STRUCTURES, structure_types, type_id

    if len(pos) == 0:
        return 0.0
    # PTM looks at positions and the cell only; the element is a placeholder.
    atoms = Atoms(numbers=np.zeros(len(pos), int), positions=np.mod(pos, L), cell=[L, L, L], pbc=True)
    st, _ = structure_types(atoms, CRYSTAL_STRUCTURES, rmsd_cutoff)
    return float(np.mean(st == type_id(_PTM_TYPE[phase])))


def close_pair_fraction(pos: np.ndarray, L: float, r_min: float = 0.5 * NN) -> float:
    """Fraction of atoms with another atom closer than r_min (Å; default half the nearest-neighbour
    distance): collapsed pairs, which a fixed-N particle model leaves behind as a doubly occupied
    site plus a vacancy elsewhere."""
    import freud
    if len(pos) < 2:
        return 0.0
    box = _box(L)
    p = _centered(pos, L)
    nl = freud.locality.AABBQuery(box, p).query(p, {"r_max": r_min, "exclude_ii": True}).toNeighborList()
    return float(len(np.unique(nl.query_point_indices)) / len(pos))


def structure_metrics(pos: np.ndarray, spec: PhaseSpec | str) -> dict:
    """Metrics of one structure (Cartesian positions in the periodic cube of spec)."""
    spec = phase_spec(spec) if isinstance(spec, str) else spec
    q4, q6 = steinhardt(pos, spec.L, spec.name)
    return {
        "n_atoms": int(len(pos)),
        "count_exact": bool(len(pos) == spec.n_atoms),
        "ptm_fraction": ptm_fraction(pos, spec.L, spec.name),
        "close_pair_fraction": close_pair_fraction(pos, spec.L),
        "q4_mean": float(q4.mean()) if len(q4) else float("nan"),
        "q6_mean": float(q6.mean()) if len(q6) else float("nan"),
    }


def summarize(rows: list[dict], ptm_ok: float = 0.95) -> dict:
    """Fractions over samples: exact count, mean PTM fraction, samples with PTM >= ptm_ok, and
    (the README criterion) atoms identified as the target over all atoms."""
    n = len(rows)
    if n == 0:
        return {"n_samples": 0}
    tot_atoms = sum(r["n_atoms"] for r in rows)
    ident = sum(r["ptm_fraction"] * r["n_atoms"] for r in rows)
    return {
        "n_samples": n,
        "count_exact_frac": sum(r["count_exact"] for r in rows) / n,
        "ptm_atom_frac": ident / max(tot_atoms, 1),
        "ptm_mean_per_sample": float(np.mean([r["ptm_fraction"] for r in rows])),
        f"samples_ptm_ge_{int(ptm_ok * 100)}": sum(r["ptm_fraction"] >= ptm_ok for r in rows) / n,
        "close_pair_atom_frac": sum(r.get("close_pair_fraction", 0.0) * r["n_atoms"] for r in rows) / max(tot_atoms, 1),
    }
