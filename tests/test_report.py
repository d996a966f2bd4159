"""The γ–[n] envelope and its minima (analysis/report.py)."""
import pandas as pd

from gbsearch.analysis.report import envelope_minima, lower_envelope


def _rows(points):
    return pd.DataFrame([{"n_frac": n, "gamma_J_m2": g, "id": i, "status": "ok"} for i, (n, g) in enumerate(points)])


def test_envelope_minima_treat_n_as_periodic():
    # [n] = 0 and [n] = 0.8 are neighbours: 0.8 is lower, so 0 is no minimum although it
    # would be one on an open axis; the minima are 0.8 (ground state) and 0.4 (metastable).
    env = lower_envelope(_rows([(0.0, 2.3), (0.2, 2.6), (0.4, 2.4), (0.6, 2.7), (0.8, 2.1),
                                (0.4, 2.9), (0.8, 2.5)]))        # higher duplicates at an [n] ignored
    minima = envelope_minima(env)
    assert [(m["n_frac"], m["gamma_J_m2"]) for m in minima] == [(0.8, 2.1), (0.4, 2.4)]
    # 0.75 is no minimum: its periodic neighbour [n] = 0 is lower
    falling = envelope_minima(lower_envelope(_rows([(0.0, 2.0), (0.25, 2.2), (0.5, 2.4), (0.75, 2.1)])))
    assert [m["n_frac"] for m in falling] == [0.0]
    assert envelope_minima(lower_envelope(pd.DataFrame(columns=["n_frac", "gamma_J_m2", "id", "status"]))) == []


def test_summary_bins_the_table_when_cells_mix():
    from gbsearch.analysis.report import summary_text
    # Σ5: [n] = 3/45 (3×3 cell) and 1/20 (2×2) fall in the same 1/20 bin (centre 0.05),
    # 0.2 from two cells in bin 0.20; one cell alone keeps the exact [n] values.
    rows = [("reference", "3x3", 3 / 45, 2.9), ("reference", "2x2", 1 / 20, 2.8), ("reference", "1x1", 0.2, 2.4),
            ("reference", "2x2", 0.2, 2.3), ("diffusion", "2x2", 0.2, 2.35)]
    df = pd.DataFrame([{"source": s, "replicate": r, "n_frac": n, "gamma_J_m2": g, "id": i, "status": "ok",
                        "misorientation": 36.87} for i, (s, r, n, g) in enumerate(rows)])
    text = summary_text(df)
    assert "per [n] bin of width 1/20" in text
    table = text.split("replications):\n")[1].splitlines()[2:]
    assert [line.split() for line in table] == [["0.05", "-", "2.8000"], ["0.20", "2.3500", "2.3000"]]
    same = summary_text(df[df.replicate == "2x2"])
    assert "per [n]:" in same and "bin of width" not in same


def test_summary_metastable_is_the_convergence_reports_when_cells_mix():
    from gbsearch.analysis.convergence import convergence_from_table
    from gbsearch.analysis.report import summary_text
    # Σ5 rows of 1×1 and 3×3 cells: 8/45, 9/45 (= 0.2) and 10/45 fall in one 1/20 bin (centre
    # 0.20). On the exact [n] grid 10/45 (2.35, between 0.2 at 2.6 and 11/45 at 2.7) is a
    # minimum next to the ground state 8/45; over the bins the only other minimum is 0.40.
    rows = [("1x1", 0.0, 2.9), ("3x3", 7 / 45, 2.6), ("3x3", 8 / 45, 2.3), ("1x1", 0.2, 2.6), ("3x3", 10 / 45, 2.35),
            ("3x3", 11 / 45, 2.7), ("3x3", 14 / 45, 2.8), ("1x1", 0.4, 2.5), ("1x1", 0.6, 3.0), ("1x1", 0.8, 3.1)]
    df = pd.DataFrame([{"source": "reference", "replicate": r, "n_frac": n, "gamma_J_m2": g, "id": i, "trial": i,
                        "status": "ok", "misorientation": 36.87} for i, (r, n, g) in enumerate(rows)])
    conv = convergence_from_table(df, 5)
    assert conv.metastable["n_frac"] == 0.4
    assert "metastable minimum: [n] = 0.4000, γ = 2.5000" in summary_text(df)
    exact = envelope_minima(lower_envelope(df))           # the finer grid's minima, for contrast
    assert round(exact[1]["n_frac"], 4) == round(10 / 45, 4)
