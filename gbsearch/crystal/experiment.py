"""Crystal-phase experiment (SPEC §6): train, generate, evaluate, figures.

Weights: gbsearch/data/crystal/voxel_{phase}.pt (U-Net checkpoint without optimizer state),
particle_{phase}.pt; provenance in gbsearch/data/crystal/provenance.json.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from gbsearch.provenance import git_commit  # noqa: F401  (old import path: crystal_commands used E.git_commit)

from . import metrics as M
from .phases import phase_spec

DATA = Path(__file__).resolve().parents[1] / "data" / "crystal"


def slim_checkpoint(src, dst, half: bool = True) -> Path:
    """Copy a diffusion checkpoint without optimizer/scheduler state (weights fp16 by default;
    `load_checkpoint` loads them into the fp32 model)."""
    from gbsearch.diffusion.checkpoint import read_checkpoint
    ck = read_checkpoint(src)
    if half:
        ck["model_state"] = {k: v.half() if v.is_floating_point() else v for k, v in ck["model_state"].items()}
    ck["optimizer_state"] = None
    ck["lr_scheduler_state"] = None
    dst = Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    torch.save(ck, dst)
    return dst


def weights_path(model: str, phase: str, weights_dir=None) -> Path:
    return Path(weights_dir or DATA) / f"{model}_{phase}.pt"


def evaluate(positions: list[np.ndarray], phase: str) -> tuple[list[dict], dict]:
    spec = phase_spec(phase)
    rows = [M.structure_metrics(p, spec) for p in positions]
    return rows, M.summarize(rows)


def generate(model: str, phase: str, n: int, seed: int = 0, weights_dir=None, start: str | float = "uniform",
             method: str = "sde", steps: int | None = None, device: str | None = None) -> list[np.ndarray]:
    """Cartesian positions of n generated structures. Particle model: start 'uniform' or a
    displacement fraction in [0, 1] of sigma_max; device: where the particle network runs."""
    spec = phase_spec(phase)
    path = weights_path(model, phase, weights_dir)
    if model == "voxel":
        from .voxel_model import generate_voxel, load_voxel
        net, sch, meta = load_voxel(path)
        pos, _ = generate_voxel(net, sch, meta["data_scale"], spec, n, seed=seed, steps=steps or 60)
        return pos
    if model == "particle":
        from .particle import displaced_starts, load_particle, sample_particle
        net = load_particle(path)
        if start == "uniform":
            x = sample_particle(net, n, spec.n_atoms, steps=steps or 1000, method=method, seed=seed, device=device)
        else:
            f = float(start)
            s0 = displaced_starts(spec, n, f, seed=seed + 1)
            x = sample_particle(net, n, spec.n_atoms, steps=max(1, int(round((steps or 1000) * f))) if f > 0 else 1,
                                method=method, start=s0, t_start=max(f, 2.6e-3), seed=seed, device=device)
        return [p * spec.L for p in x.numpy().astype(np.float64)]
    raise ValueError(f"model must be voxel or particle, got {model!r}")


# ------------------------------------------------------------------ figures

def _rdf_mean(positions, spec, bins=60):
    r = g = None
    gs = []
    for p in positions:
        r, g = M.rdf(p, spec.L, bins=bins)
        gs.append(g)
    return r, np.mean(gs, 0)


def fig4(samples: dict, out) -> None:
    """samples[phase][label] = list of positions; labels reference / voxel / particle."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    phases = list(samples)
    fig, ax = plt.subplots(2, len(phases), figsize=(4.2 * len(phases), 7.5), squeeze=False)
    colors = {"reference": "k", "voxel": "tab:blue", "particle": "tab:red"}
    for j, ph in enumerate(phases):
        spec = phase_spec(ph)
        for lab, pos in samples[ph].items():
            q4 = np.concatenate([M.steinhardt(p, spec.L, ph)[0] for p in pos])
            q6 = np.concatenate([M.steinhardt(p, spec.L, ph)[1] for p in pos])
            ax[0, j].scatter(q4, q6, s=4 if lab != "reference" else 40, alpha=0.3 if lab != "reference" else 1,
                             c=colors.get(lab, None), label=lab, marker="o" if lab != "reference" else "*")
            r, g = _rdf_mean(pos, spec)
            ax[1, j].plot(r, g, c=colors.get(lab, None), label=lab, lw=2 if lab == "reference" else 1.2,
                          ls="--" if lab == "reference" else "-")
        ax[0, j].set(title=ph.upper(), xlabel="$q_4$", ylabel="$q_6$", xlim=(0, 0.8), ylim=(0, 0.8))
        ax[1, j].set(xlabel="r (Å)", ylabel="g(r)")
        ax[0, j].legend(fontsize=8)
        ax[1, j].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def fig2(sweep: dict, out, unit: str = "d_nn") -> None:
    """sweep[phase][fraction] = {"starts": positions, "<sampler>": outputs, ...}; one row of panels
    per key (starts first), one curve per fraction; unit: what the fraction is a fraction of (d_nn:
    the nearest-neighbour distance; sigma_max). g(r) is drawn from half the nearest-neighbour
    distance on: below it, the few collapsed pairs of the outputs (and chance close pairs of
    random starts) give spikes of hundreds in tiny shells; their share of atoms is written in the
    legend instead."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from .phases import NN
    phases = list(sweep)
    rows = list(next(iter(sweep[phases[0]].values())))
    fig, ax = plt.subplots(len(rows), len(phases), figsize=(4.2 * len(phases), 3.75 * len(rows)), squeeze=False)
    cmap = plt.get_cmap("viridis")
    for j, ph in enumerate(phases):
        spec = phase_spec(ph)
        fr = sorted(sweep[ph])
        for k, f in enumerate(fr):
            c = cmap(k / max(len(fr) - 1, 1))
            for i, row in enumerate(rows):
                pos = sweep[ph][f][row]
                r, g = _rdf_mean(pos, spec)
                keep = r >= 0.5 * NN
                pairs = np.mean([M.close_pair_fraction(p, spec.L) for p in pos])
                ax[i, j].plot(r[keep], g[keep], color=c,
                              label=f"{int(round(f * 100))} %" + (f" ({100 * pairs:.0f} % in pairs)" if pairs else ""))
        start_legend = "displacement\n(std, × d_NN)" if unit == "d_nn" else "displacement\n(× sigma_max)"
        for i, row in enumerate(rows):
            title = f"{ph.upper()}: starts" if i == 0 else f"{ph.upper()}: particle model, {row}"
            ax[i, j].set(title=title, xlabel="r (Å)", ylabel="g(r)", xlim=(0, None))
            ax[i, j].legend(fontsize=6.5, title=start_legend if i == 0 else f"atoms closer than {0.5 * NN:.2f} Å")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
