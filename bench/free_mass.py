"""Where a GB model's candidates gain or lose atoms (issue 17): the denoiser's one-step estimate
of the free region's mass against the sampled mass and the decoded atom count.

    python bench/free_mass.py -m 36.87 --reference runs/train_data/sigma5 --models A.pt B.pt \
        [--structures 12] [--candidates 16] [--seed 0] [--nfe 20 (the campaign's)]

For each model: (1) on the first ``--structures`` structures of a 10 % validation split of the
reference drawn with seed 0 (for Σ5, the first boundary, the transferable training's own), noised at several times t with one draw
each, the mean error in atoms of the data estimate's free-voxel sum (x̂0 − x0, x̂0 as the
sampler forms it); (2) for ``--candidates`` candidates (the campaign's sampler, seed and NFE,
CPU), the sampled free-voxel mass, the same sum for the perfect slab at the drawn upper-grain
height, their correlation, and the decoded free-atom counts of the first 4. Voxel sums are
in atoms (cloud-in-cell voxels of N atoms sum to N). Run it on training boundaries.
"""
from __future__ import annotations

import numpy as np

from atom_counts import model_comparison_parser   # bench/ is this script's own directory on sys.path

TIMES = (990, 900, 750, 500, 250, 50)


def main() -> None:
    ap = model_comparison_parser(__doc__, candidates=16)
    ap.add_argument("--structures", type=int, default=12)
    a = ap.parse_args()

    import torch

    from gbsearch.diffusion.sampler import data_estimate
    from gbsearch.diffusion.schedule import ScheduleConfig, VPSchedule
    from gbsearch.diffusion.train import split_item
    from gbsearch.geometry.properties import n_free
    from gbsearch.gbmodel.library_data import BoundaryLibraryDataset, split_by_boundary
    from gbsearch.gbmodel.model import GBGenerator
    from gbsearch.store.database import load_reference_structures
    torch.set_num_threads(2)
    _, val = split_by_boundary(load_reference_structures(a.reference), 0.1, 0)
    val_set = BoundaryLibraryDataset(val, augment=False)
    items = [torch.utils.data.default_collate([val_set[i]]) for i in range(min(len(val_set), a.structures))]
    for path in a.models:
        gen = GBGenerator.load(path, device="cpu", boundary=a.misorientation)
        vp = VPSchedule(ScheduleConfig.from_dict(gen.meta["schedule_config"]))
        scale = float(gen.meta["data_scale"])
        g = torch.Generator().manual_seed(a.seed)
        bias = []
        for t in TIMES:
            errs = []
            for item in items:
                vox, mask = split_item(item)
                x0 = vox / scale
                tt = torch.tensor([t])
                xt = vp.add_noise(x0, torch.randn(x0.shape, generator=g), tt)
                with torch.no_grad():
                    v = gen.model(xt, tt)
                x0_hat = data_estimate(v, xt, *vp.alpha_sigma(tt, x0.ndim), vp.cfg.prediction_type)
                errs.append(((x0_hat - x0) * (~mask).float()).sum().item() * scale)
            bias.append(float(np.mean(errs)))
        free = ~gen.template.known_mask().squeeze()
        sampled, perfect = [], []
        for start in range(0, a.candidates, 4):
            idx = list(range(start, min(start + 4, a.candidates)))
            vox, _, _, known = gen.sample_voxels(idx, a.seed, steps=a.nfe)
            for v, k in zip(vox, known):
                sampled.append(v[0][free].sum().item())
                perfect.append(k.reshape(v[0].shape)[free].sum().item())
        # Candidates 0-3 are sampled again here: generate() decodes but does not hand back voxels.
        cands = gen.generate(4, seed=a.seed, steps=a.nfe, batch_size=4)
        atoms = [n_free(c) for c in cands]
        sampled, perfect = np.array(sampled), np.array(perfect)
        print(f"{path} on {gen.boundary.label}:")
        print("  one-step free-mass error (atoms): " + "  ".join(f"t={t} {b:+.2f}" for t, b in zip(TIMES, bias)))
        print(f"  sampled free mass {sampled.min():.0f}-{sampled.max():.0f} (mean {sampled.mean():.1f}); perfect slab at the "
              f"drawn height {perfect.mean():.1f}; correlation {np.corrcoef(sampled, perfect)[0, 1]:+.2f}")
        print(f"  free atoms of the first 4 candidates {atoms} (perfect crystal {cands[0].info['n_free_bulk']})")


if __name__ == "__main__":
    main()
