"""Campaign outputs: ``table.csv``, the γ–[n] plot with its lower envelope, a summary."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from gbsearch.store.database import CampaignDB

TABLE_COLUMNS = ["id", "source", "n_atoms", "n_frac", "gamma_J_m2", "status"]
SEARCH_COLUMNS = ["boundary", "potential", "element"]


def campaign_table(db: CampaignDB) -> pd.DataFrame:
    """One row per stored structure; the contract columns first, trial parameters after."""
    rows = []
    for row in db.rows():
        rec = {"id": row.id, "source": row.source, "n_atoms": row.natoms,
               "n_frac": row.get("n_frac", np.nan), "gamma_J_m2": row.get("gamma_J_m2", np.nan),
               "status": row.status, "trial": row.trial, "wall_s": row.get("wall_s", np.nan), "energy_eV": row.get("energy_eV", np.nan),
               "duplicate_of": row.get("duplicate_of", np.nan), "error": row.get("error", "")}
        rec.update({k[2:]: v for k, v in row.key_value_pairs.items() if k.startswith("p_")})
        # which boundary and potential (reference rows since issue #19; a database may hold several)
        rec.update({k: row.key_value_pairs[k] for k in SEARCH_COLUMNS if k in row.key_value_pairs})
        rows.append(rec)
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    return df[TABLE_COLUMNS + [c for c in df.columns if c not in TABLE_COLUMNS]]


def lower_envelope(df: pd.DataFrame, decimals: int = 6, bins: int | None = None) -> pd.DataFrame:
    """Lowest γ at each [n] among ok rows: columns n_frac, gamma_J_m2, id. With ``bins``, the
    lowest per [n] bin of the convergence report (gbsearch.analysis.convergence.n_bin) instead,
    each at its structure's own [n]."""
    ok = df[df.status == "ok"].copy()
    if ok.empty:
        return pd.DataFrame(columns=["n_frac", "gamma_J_m2", "id"])
    if bins:
        from gbsearch.analysis.convergence import n_bin
        ok["n_key"] = n_bin(ok.n_frac.to_numpy(), bins)
    else:
        ok["n_key"] = ok.n_frac.round(decimals)
    idx = ok.groupby("n_key").gamma_J_m2.idxmin()
    return ok.loc[idx, ["n_frac", "gamma_J_m2", "id"]].sort_values("n_frac").reset_index(drop=True)


def envelope_minima(envelope: pd.DataFrame) -> list[dict]:
    """Local minima of the lower envelope (periodic in [n]), lowest first."""
    g = envelope.gamma_J_m2.to_numpy()
    n = len(g)
    if n == 0:
        return []
    out = []
    for i in range(n):
        if n == 1 or (g[i] <= g[(i - 1) % n] and g[i] <= g[(i + 1) % n]):
            out.append(envelope.iloc[i].to_dict())
    return sorted(out, key=lambda r: r["gamma_J_m2"])


def plot_gamma_n(df: pd.DataFrame, path: str | Path, title: str = "",
                 window: tuple[float, float] | None = None) -> Path:
    """γ–[n] scatter (reference blue, diffusion red, GRIP green) with the reference lower envelope."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=130)
    if window is not None:
        ax.axvspan(*window, color="0.9", label="training window")
    styles = {"reference": dict(color="tab:blue", s=14, alpha=0.55, label="reference search"),
              "diffusion": dict(color="tab:red", s=14, alpha=0.7, marker="^", label="diffusion candidates"),
              "grip": dict(color="tab:green", s=16, alpha=0.7, marker="s", label="GRIP (imported)")}
    ok = df[df.status == "ok"]
    for source, style in styles.items():
        sel = ok[ok.source == source]
        if len(sel):
            ax.scatter(sel.n_frac, sel.gamma_J_m2, **style)
    env = lower_envelope(df[df.source == "reference"])
    if len(env):
        ax.plot(env.n_frac, env.gamma_J_m2, "-", color="navy", lw=1.2, label="reference lower envelope")
    ax.set_xlabel("[n] (fraction of a bulk plane)")
    ax.set_ylabel("γ$_{GB}$ (J/m²)")
    ax.set_xlim(-0.02, 1.0)
    if len(ok):
        lo = ok.gamma_J_m2.min()
        ax.set_ylim(lo - 0.05, min(ok.gamma_J_m2.max(), lo + 1.5) + 0.05)
    if title:
        ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path


def best_per_n(df: pd.DataFrame, bins: int | None = None) -> pd.DataFrame:
    """Lowest γ (J/m²) per [n] value and source: rows [n], columns reference / diffusion / grip.
    With ``bins``, per [n] bin of the convergence report instead (rows: bin centres)."""
    ok = df[df.status == "ok"].copy()
    if ok.empty:
        return pd.DataFrame()
    if bins:
        from gbsearch.analysis.convergence import n_bin
        ok["[n]"] = (n_bin(ok.n_frac.to_numpy(), bins) / bins).round(4)
    else:
        ok["[n]"] = ok.n_frac.round(4)
    return ok.pivot_table(index="[n]", columns="source", values="gamma_J_m2", aggfunc="min")


def summary_bins(df: pd.DataFrame) -> int | None:
    """[n] bins for the summary's table when its <100> twist rows mix cell replications (each
    cell has its own [n] spacing, and a 1..3×1..3 search has ~70 distinct values), else None."""
    ok = df[df.status == "ok"]
    if "replicate" not in ok or ok.replicate.dropna().nunique() < 2 or "misorientation" not in ok:
        return None
    angles = ok.misorientation.dropna().unique()
    if len(angles) != 1:
        return None
    from gbsearch.analysis.convergence import table_bin_count
    from gbsearch.geometry.csl import as_boundary
    return table_bin_count(ok, as_boundary(float(angles[0])).sigma)


def summary_text(df: pd.DataFrame) -> str:
    lines = []
    # Rows of mixed replications: minima of the binned envelope, so that the metastable minimum
    # is the convergence report's (a finer [n] grid would make neighbours of the ground state minima).
    bins = summary_bins(df)
    for source in ("reference", "diffusion", "grip"):
        sel = df[df.source == source]
        if sel.empty:
            continue
        counts = sel.status.value_counts().to_dict()
        lines.append(f"{source}: {counts.get('ok', 0)} distinct ok, {counts.get('duplicate', 0)} duplicates, "
                     f"{counts.get('failed', 0)} failed")
        minima = envelope_minima(lower_envelope(sel, bins=bins))
        if minima:
            g = minima[0]
            lines.append(f"  ground state: [n] = {g['n_frac']:.4f}, γ = {g['gamma_J_m2']:.4f} J/m² (id {int(g['id'])})")
        if len(minima) > 1:
            m = minima[1]
            lines.append(f"  metastable minimum: [n] = {m['n_frac']:.4f}, γ = {m['gamma_J_m2']:.4f} J/m² (id {int(m['id'])})")
    if {"diffusion", "grip"} & set(df.source):
        table = best_per_n(df, bins)
        lines.append(f"lowest γ (J/m²) per [n] bin of width 1/{bins} (the rows mix cell replications):"
                     if bins else "lowest γ (J/m²) per [n]:")
        lines.append(table.to_string(float_format=lambda v: f"{v:.4f}", na_rep="-"))
    return "\n".join(lines)


def write_report(db: CampaignDB, out_dir: str | Path, title: str = "",
                 window: tuple[float, float] | None = None) -> str:
    """Write table.csv, gamma_n.png and summary.txt into ``out_dir``; return the summary."""
    out = Path(out_dir)
    df = campaign_table(db)
    df.to_csv(out / "table.csv", index=False)
    plot_gamma_n(df, out / "gamma_n.png", title=title, window=window)
    text = summary_text(df)
    (out / "summary.txt").write_text(text + "\n")
    return text
