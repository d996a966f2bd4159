"""One figure of the bundled reference library: every boundary's lower envelope over [n] and
its ground state against misorientation (read from the datasets' JSON, nothing decompressed)."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def envelope(entry: dict) -> tuple[np.ndarray, np.ndarray]:
    """[n] bin centres and the lowest γ (J/m²) in each bin, from a library entry's stored
    convergence report; empty bins are left out."""
    bins = entry["meta"].get("convergence", {}).get("bins", [])
    pts = [(b["n_center"], b["gamma_J_m2"]) for b in bins if b.get("gamma_J_m2") is not None]
    if not pts:
        return np.empty(0), np.empty(0)
    n, g = np.array(pts).T
    return n, g


def plot_library(entries: list[dict], path: str | Path) -> Path:
    """Left: lower envelope γ([n]) per boundary. Right: ground state (filled) and metastable
    minimum (open) against the twist angle, each labelled with its Σ and marked when its
    search is not converged. ``entries`` as :func:`gbsearch.store.references.library` gives."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if not entries:
        raise ValueError("the library is empty: nothing to plot")
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.4), dpi=130, gridspec_kw={"width_ratios": [3, 2]})
    cmap = plt.get_cmap("tab10")
    for i, e in enumerate(entries):
        n, g = envelope(e)
        state = "" if e["converged"] else ", not converged"
        ax.plot(n, g, "o-", ms=3, lw=1.1, color=cmap(i % 10),
                label=f"Σ{e['sigma']} {e['misorientation_deg']:.2f}° ({e['trials']} trials{state})")
    ax.set_xlabel("[n] (fraction of a bulk plane)")
    ax.set_ylabel("lowest γ$_{GB}$ in the [n] bin (J/m²)")
    ax.set_xlim(-0.03, 1.0)
    ax.legend(fontsize=7.5)
    for i, e in enumerate(entries):
        x = e["misorientation_deg"]
        for key, filled in (("ground_state", True), ("metastable", False)):
            point = e.get(key)
            if point:
                ax2.plot(x, point["gamma_J_m2"], "o", ms=7, color=cmap(i % 10),
                         mfc=cmap(i % 10) if filled else "none")
        if e.get("ground_state"):
            ax2.annotate(f"Σ{e['sigma']}", (x, e["ground_state"]["gamma_J_m2"]), (4, -10),
                         textcoords="offset points", fontsize=8)
    ax2.set_xlabel("twist angle about <100> (°)")
    ax2.set_ylabel("γ$_{GB}$ (J/m²): ground state ●, metastable ○")
    ax2.set_xlim(0, 46)
    fig.suptitle("Reference library, W (Zhou 2004) <100> twist boundaries", fontsize=10)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
