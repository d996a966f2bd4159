"""Convergence of a grand-canonical reference search (issue #15). NumPy, pandas, matplotlib.

A search is read in trial order (the trial index, not the order results arrived in). Its
structures are grouped into [n] bins, and for each bin the lowest γ seen so far is tracked
against the number of trials: the lower envelope per bin as a function of effort.

Bins: B bins of width 1/B centred on k/B, bin k holding (k − ½)/B ≤ [n] < (k + ½)/B
periodically (bin 0 also takes [n] just below 1; a value exactly on an edge goes up), with
B = N₁·m, N₁ the atoms per plane of the boundary's 1×1 cell (Σ for the <100> twist; 1 for
W Σ27(552), 2 for Σ5(210) tilts) and m = min(⌈20/N₁⌉, largest i·j among the search's
replications) (:func:`bin_count`). B is a multiple of N₁, so the [n] values k/N₁ of the 1×1
cell sit at bin centres; B ≤ the largest cell's N_plane, so that cell (spacing 1/N_plane ≤ 1/B)
reaches every bin; and at least ~20 bins where the cells allow it: 1/Σ bins alone would merge
Σ5's ground state ([n] = 0.2) with its neighbours and its metastable minimum ([n] = 0.4) with
0.3–0.45. The six library boundaries with their default replications: Σ5 20 bins, Σ13 26,
Σ17 34, Σ25 25, Σ37 37, Σ41 41; the W Σ27(552) tilt 12, the Cu Σ5(210) tilt 20.

Converged (issue #15) means both:
- the ground state (lowest γ of all ok structures) was hit at least :data:`MIN_HITS` times:
  trials (ok or duplicate rows) in the ground state's bin within :data:`HIT_TOL` J/m² of its γ;
- no bin's lowest γ improved by more than :data:`IMPROVE_TOL` J/m² over the last third of the
  trials, and every bin was reached before that last third.

The metastable minimum is the lowest local minimum, other than the ground state, of the
envelope over the bins (:func:`gbsearch.analysis.report.envelope_minima`).
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gbsearch.analysis.report import envelope_minima, lower_envelope

HIT_TOL = 0.005          # J/m²: a trial within this of the ground state's γ hits it
IMPROVE_TOL = 0.005      # J/m²: largest improvement of a bin over the last third
MIN_HITS = 3             # independent hits of the ground state needed


MIN_BINS = 20            # aim for at least this many [n] bins (see bin_count)


def bin_count(n_plane: int, max_cells: int, min_bins: int = MIN_BINS) -> int:
    """Number of [n] bins for a boundary of ``n_plane`` atoms per plane of its 1×1 cell (Σ for
    the <100> twist) searched in cells of up to ``max_cells`` = i·j 1×1 cells (see the module
    docstring)."""
    return int(n_plane) * max(1, min(math.ceil(min_bins / n_plane), int(max_cells)))


def table_bin_count(df: pd.DataFrame, n_plane: int) -> int:
    """:func:`bin_count` for the replications found in a campaign table (``p_replicate``
    or ``replicate`` columns like "2x1"; rows without one count as the pre-#15 2x2 cell)."""
    col = next((c for c in ("replicate", "p_replicate") if c in df.columns), None)
    reps = df[col].dropna() if col else pd.Series([], dtype=object)
    cells = [int(a) * int(b) for a, b in (str(r).split("x") for r in reps)] or [4]
    return bin_count(n_plane, max(cells))


def n_bin(n_frac, bins: int) -> np.ndarray:
    """Bin index 0..bins−1 of [n] values (see the module docstring)."""
    x = np.asarray(n_frac, dtype=float) * bins + 0.5 + 1e-9   # 1e-9: edge values go up
    return np.mod(np.floor(x).astype(np.int64), bins)


@dataclass
class Convergence:
    """The convergence of one search. γ in J/m², [n] as a fraction of a plane; ``n_plane``:
    atoms per plane of the boundary's 1×1 cell (Σ for the <100> twist)."""
    n_plane: int
    n_bins: int                          # [n] bins of width 1/n_bins
    trials: int                          # rows of the search (ok, duplicate and failed)
    ok: int
    duplicates: int
    failed: int
    converged: bool
    reasons: list = field(default_factory=list)     # why not converged (empty when it is)
    ground_state: dict | None = None     # n_frac, gamma_J_m2, id, trial, bin
    metastable: dict | None = None
    hits: int = 0                        # trials within HIT_TOL of the ground state in its bin
    hit_trials: list = field(default_factory=list)
    split_trial: int = 0                 # trials before the last third
    bins: list = field(default_factory=list)        # per bin: see convergence_from_table
    criteria: dict = field(default_factory=lambda: {"hit_tol_J_m2": HIT_TOL, "min_hits": MIN_HITS,
                                                    "improve_tol_J_m2": IMPROVE_TOL})

    def status_line(self) -> str:
        """"converged" or "not converged (reasons)"."""
        return "converged" if self.converged else f"not converged ({'; '.join(self.reasons)})"

    def summary(self) -> str:
        lines = [f"convergence: {self.status_line()}",
                 f"  {self.trials} trials ({self.ok} distinct ok, {self.duplicates} duplicates, "
                 f"{self.failed} failed), [n] in {self.n_bins} bins of width 1/{self.n_bins}"]
        if self.ground_state:
            g = self.ground_state
            lines.append(f"  ground state: [n] = {g['n_frac']:.4f}, γ = {g['gamma_J_m2']:.4f} J/m², "
                         f"hit {self.hits} times within {1000 * HIT_TOL:g} mJ/m² (need {MIN_HITS})")
        if self.metastable:
            m = self.metastable
            lines.append(f"  metastable minimum (envelope over the bins): [n] = {m['n_frac']:.4f}, "
                         f"γ = {m['gamma_J_m2']:.4f} J/m²")
        worst = max((b for b in self.bins if b["improvement_J_m2"] is not None),
                    key=lambda b: b["improvement_J_m2"], default=None)
        if worst is not None and self.split_trial < self.trials:
            lines.append(f"  largest improvement over the last third (trials {self.split_trial + 1}–{self.trials}): "
                         f"{1000 * worst['improvement_J_m2']:.1f} mJ/m² in the bin at [n] = {worst['n_center']:.4f}")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return json.loads(json.dumps(asdict(self), default=_plain))


def _plain(v):
    if isinstance(v, np.generic):
        return v.item()
    raise TypeError(f"not JSON: {type(v)}")


def _ordered(df: pd.DataFrame) -> pd.DataFrame:
    """The reference rows of a campaign table in trial order."""
    if "source" in df.columns:
        df = df[df.source == "reference"]
    return df.sort_values(["trial", "id"], kind="stable").reset_index(drop=True)


def envelope_history(df: pd.DataFrame, n_bins: int) -> np.ndarray:
    """Lowest γ (J/m²) per bin after each trial: array (trials, n_bins), inf where not reached."""
    rows = _ordered(df)
    out = np.full((len(rows), n_bins), np.inf)
    current = np.full(n_bins, np.inf)
    ok = (rows.status == "ok").to_numpy()
    bins = n_bin(rows.n_frac.fillna(0.0).to_numpy(), n_bins)
    gamma = rows.gamma_J_m2.to_numpy(dtype=float)
    for t in range(len(rows)):
        if ok[t] and math.isfinite(gamma[t]):
            current[bins[t]] = min(current[bins[t]], gamma[t])
        out[t] = current
    return out


def convergence_from_table(df: pd.DataFrame, n_plane: int, n_bins: int | None = None) -> Convergence:
    """Convergence of the search in ``df`` (a :func:`gbsearch.analysis.report.campaign_table`,
    needs columns id, trial, status, n_frac, gamma_J_m2) for a boundary of ``n_plane`` atoms
    per plane of its 1×1 cell (Σ for the <100> twist); ``n_bins`` defaults to
    :func:`table_bin_count`.

    ``bins`` lists per bin: bin, n_center, gamma_J_m2 (final lowest γ), gamma_before_J_m2
    (lowest γ in the trials before the last third), improvement_J_m2 (the difference; None
    when the bin was first reached in the last third or never), first_trial (position in
    trial order, 1-based, of the first ok structure in the bin) and id of its best structure.
    """
    rows = _ordered(df)
    nb = int(n_bins or table_bin_count(rows, n_plane))
    counts = rows.status.value_counts().to_dict()
    res = Convergence(n_plane=int(n_plane), n_bins=nb, trials=len(rows), ok=int(counts.get("ok", 0)),
                      duplicates=int(counts.get("duplicate", 0)), failed=int(counts.get("failed", 0)),
                      converged=False)
    ok = rows[rows.status == "ok"]
    if ok.empty:
        res.reasons = ["no relaxed structures yet"]
        return res
    hist = envelope_history(rows, nb)
    res.split_trial = len(rows) - len(rows) // 3
    before = hist[res.split_trial - 1] if res.split_trial > 0 else np.full(nb, np.inf)
    final = hist[-1]
    bins_all = n_bin(rows.n_frac.fillna(0.0).to_numpy(), nb)
    for b in range(nb):
        sel = ok[bins_all[ok.index] == b]
        entry = {"bin": b, "n_center": b / nb, "gamma_J_m2": None, "gamma_before_J_m2": None,
                 "improvement_J_m2": None, "first_trial": None, "id": None}
        if len(sel):
            best = sel.loc[sel.gamma_J_m2.idxmin()]
            entry.update(gamma_J_m2=float(final[b]), id=int(best.id), n_frac=float(best.n_frac),
                         first_trial=int(sel.index[0]) + 1)
            if math.isfinite(before[b]):
                entry.update(gamma_before_J_m2=float(before[b]), improvement_J_m2=float(before[b] - final[b]))
        res.bins.append(entry)

    gs = ok.loc[ok.gamma_J_m2.idxmin()]
    gs_bin = int(n_bin([gs.n_frac], nb)[0])
    res.ground_state = {"n_frac": float(gs.n_frac), "gamma_J_m2": float(gs.gamma_J_m2), "id": int(gs.id),
                        "trial": int(gs.trial), "bin": gs_bin}
    cand = rows[rows.status.isin(["ok", "duplicate"])]
    hit = (n_bin(cand.n_frac.fillna(-1.0).to_numpy(), nb) == gs_bin) & \
          (cand.gamma_J_m2.to_numpy(dtype=float) <= gs.gamma_J_m2 + HIT_TOL)
    res.hit_trials = [int(t) for t in cand.trial[hit]]
    res.hits = len(res.hit_trials)

    minima = envelope_minima(lower_envelope(ok, bins=nb))
    others = [m for m in minima if int(n_bin([m["n_frac"]], nb)[0]) != gs_bin]
    if others:
        m = others[0]
        res.metastable = {"n_frac": float(m["n_frac"]), "gamma_J_m2": float(m["gamma_J_m2"]),
                          "id": int(m["id"]), "bin": int(n_bin([m["n_frac"]], nb)[0])}

    if res.hits < MIN_HITS:
        res.reasons.append(f"ground state hit {res.hits} time{'s' if res.hits != 1 else ''}, need {MIN_HITS}")
    missing = [b for b in res.bins if b["gamma_J_m2"] is None]
    if missing:
        res.reasons.append(f"{len(missing)} of {nb} [n] bins never reached")
    late = [b for b in res.bins if b["gamma_J_m2"] is not None and b["improvement_J_m2"] is None]
    if late:
        where = ", ".join(f"{b['n_center']:.3f}" for b in late[:4]) + (", ..." if len(late) > 4 else "")
        res.reasons.append(f"{len(late)} [n] bin{'s' if len(late) > 1 else ''} first reached in the "
                           f"last third (at [n] = {where})")
    improved = sorted((b for b in res.bins if b["improvement_J_m2"] is not None
                       and b["improvement_J_m2"] > IMPROVE_TOL), key=lambda b: -b["improvement_J_m2"])
    if improved:
        res.reasons.append(f"{len(improved)} [n] bin{'s' if len(improved) > 1 else ''} improved by more than "
                           f"{1000 * IMPROVE_TOL:g} mJ/m² over the last third (most: "
                           f"{1000 * improved[0]['improvement_J_m2']:.1f} mJ/m² at [n] = {improved[0]['n_center']:.3f})")
    res.converged = not res.reasons
    return res


def plot_convergence(df: pd.DataFrame, n_plane: int, path: str | Path, title: str = "",
                     n_bins: int | None = None) -> Path:
    """Left: lowest γ per [n] bin against the number of trials (ground-state bin in black,
    the last third shaded). Right: the envelope over the bins at the end and before the
    last third."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    res = convergence_from_table(df, n_plane, n_bins)
    nb = res.n_bins
    hist = envelope_history(df, nb)
    hist = np.where(np.isfinite(hist), hist, np.nan)
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=130, gridspec_kw={"width_ratios": [3, 2]})
    t = np.arange(1, len(hist) + 1)
    cmap = plt.get_cmap("viridis")
    gs_bin = res.ground_state["bin"] if res.ground_state else -1
    for b in range(nb):
        if b == gs_bin:
            continue
        ax.step(t, hist[:, b], where="post", color=cmap(b / max(nb - 1, 1)), lw=0.9, alpha=0.8)
    if gs_bin >= 0:
        ax.step(t, hist[:, gs_bin], where="post", color="k", lw=2.0,
                label=f"ground-state bin [n] ≈ {gs_bin / nb:.3f}")
        for tr in res.hit_trials:
            pos = int(np.flatnonzero(_ordered(df).trial.to_numpy() == tr)[0]) + 1
            ax.plot(pos, res.ground_state["gamma_J_m2"], "v", color="tab:red", ms=5)
    if len(t):
        ax.axvspan(res.split_trial + 0.5, len(t) + 0.5, color="0.92", zorder=0, label="last third")
    ax.set_xlabel("trials")
    ax.set_ylabel("lowest γ$_{GB}$ in the [n] bin (J/m²)")
    finite = hist[np.isfinite(hist)]
    if finite.size:
        lo = finite.min()
        ax.set_ylim(lo - 0.03, min(np.nanmax(hist[-1]), lo + 1.0) + 0.05)
    ax.legend(fontsize=8, loc="upper right")
    centers = np.arange(nb) / nb
    final = np.array([b["gamma_J_m2"] if b["gamma_J_m2"] is not None else np.nan for b in res.bins])
    before = np.array([b["gamma_before_J_m2"] if b["gamma_before_J_m2"] is not None else np.nan for b in res.bins])
    ax2.plot(centers, final, "o-", color="navy", ms=4, label=f"after {res.trials} trials")
    ax2.plot(centers, before, "x--", color="tab:orange", ms=4, label=f"after {res.split_trial} trials")
    if res.metastable:
        ax2.plot(res.metastable["bin"] / nb, res.metastable["gamma_J_m2"], "s", mfc="none", color="tab:green",
                 ms=9, label="metastable minimum")
    ax2.set_xlabel("[n] bin centre")
    ax2.set_ylabel("lowest γ$_{GB}$ (J/m²)")
    ax2.set_xlim(-0.03, 1.0)
    ax2.legend(fontsize=8)
    fig.suptitle((title + "\n" if title else "") + res.status_line(), fontsize=9)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def search_n_plane(db) -> int:
    """Atoms per plane of the 1×1 cell of a campaign database's boundary, from a stored
    structure's metadata (its N_plane over its replication)."""
    from gbsearch.store.database import row_replicate
    for row in db.rows(source="reference"):
        info = row.data.get("info", {})
        if "n_plane" in info:
            i, j = (int(v) for v in row_replicate(row).split("x"))
            return int(info["n_plane"]) // (i * j)
    from gbsearch.errors import InputError
    raise InputError(f"no reference structure with GB metadata (n_plane) in {db.url}")


def write_convergence(db, out_dir: str | Path, n_plane: int | None = None, title: str = "",
                      n_bins: int | None = None) -> Convergence:
    """Write ``convergence.json`` and ``convergence.png`` for the reference rows of ``db``
    (a :class:`gbsearch.store.database.CampaignDB`) into ``out_dir``; return the result.
    ``n_plane``: atoms per plane of the boundary's 1×1 cell (default: from the rows)."""
    from gbsearch.analysis.report import campaign_table
    out = Path(out_dir)
    df = campaign_table(db)
    n_plane = n_plane or search_n_plane(db)
    res = convergence_from_table(df, n_plane, n_bins)
    (out / "convergence.json").write_text(json.dumps(res.to_dict(), indent=2) + "\n")
    plot_convergence(df, n_plane, out / "convergence.png", title=title, n_bins=res.n_bins)
    return res
