"""Benchmark the voxel codec: encoder throughput, decode time, round-trip accuracy.

    python bench/bench_codec.py [--n-per-kind 100] [--checkpoint PATH] [--device cpu|cuda]

Prints encoder throughput (atoms/s) on CPU and, when present, CUDA; decode time per
structure (Σ5 2×2 GB window, 28×28×64 voxels); and, with the shipped decoder, the round trip on
held-out structures (seed distinct from training) each randomly translated: fraction with the
exact atom count and position RMSE (Å), clean and with Gaussian noise 0.05·s on the voxels.
With ``--reference N`` the same round trip also runs on N relaxed structures of the bundled Σ5
reference dataset, each in its model window (28×28×64) and randomly translated in-plane.
With ``--library DIR ... --per-boundary N`` it runs on N structures of each reference search
folder, each on its boundary's own grid (issue 17: voxel edges 0.495-0.519 Å), reported per
boundary and replication.
"""
from __future__ import annotations

import argparse
import itertools
import json
import time

import numpy as np
import torch

from gbsearch.voxel.decoder import decode, load_decoder
from gbsearch.voxel.encoder import encode, pad_positions, random_translation
from gbsearch.voxel.grid import VoxelGrid
from gbsearch.voxel.metrics import compare, summarize
from gbsearch.voxel.samples import sample

KINDS = ("cubic", "rotated", "window", "surface", "gb")


def _sync(dev):
    if dev.type == "cuda":
        torch.cuda.synchronize()


def encoder_throughput(dev: torch.device, batch=64, n_atoms=1000, repeats=20) -> float:
    """Atoms per second for encoding a batch of random atoms on a 28×28×64 GB-window grid."""
    g = VoxelGrid.for_box((14.15, 14.15, 32.0), periodic=(True, True, False))
    gen = torch.Generator().manual_seed(0)
    pos = (torch.rand(batch, n_atoms, 3, generator=gen) * torch.tensor(g.lengths)).to(dev)
    encode(pos, g)
    _sync(dev)
    t = time.perf_counter()
    for _ in range(repeats):
        encode(pos, g)
    _sync(dev)
    return batch * n_atoms * repeats / (time.perf_counter() - t)


def decode_time(model, dev: torch.device, repeats=5) -> float:
    """Seconds per structure to decode one Σ5 2×2 GB window (28×28×64), merging included."""
    rng = np.random.default_rng(5)
    s = sample("gb", rng, sigma=5, replicate=(2, 2))
    pos, m = pad_positions([s.positions], device=dev)
    v = encode(pos, s.grid, m)
    decode(v, s.grid, model=model)
    _sync(dev)
    t = time.perf_counter()
    for _ in range(repeats):
        decode(v, s.grid, model=model)
    _sync(dev)
    return (time.perf_counter() - t) / repeats


def held_out(n_per_kind: int, seed: int = 777):
    """(kind, positions translated by t ~ U(cell), grid) for n_per_kind of each kind."""
    rng = np.random.default_rng(seed)
    out = []
    for kind in KINDS:
        for _ in range(n_per_kind):
            s = sample(kind, rng)
            pos = s.positions.copy()
            per = np.array(s.grid.periodic)
            pos[:, per] += rng.random(per.sum()) * np.array(s.grid.lengths)[per]
            out.append((kind, pos, s.grid))
    return out


def reference_windows(n: int, seed: int = 778):
    """("reference", positions shifted in-plane by t ~ U(cell), GB-model window grid) for n
    structures drawn without replacement from the bundled Σ5 reference dataset."""
    if n <= 0:
        return []
    from gbsearch.gbmodel.slab_voxels import SlabTemplate
    from gbsearch.store.references import load_reference_dataset

    structures = load_reference_dataset()
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for i in rng.choice(len(structures), size=min(n, len(structures)), replace=False):
        grid = SlabTemplate.from_atoms(structures[i]).grid()
        pos, _ = random_translation(torch.as_tensor(structures[i].positions)[None], grid, gen)
        out.append(("reference", pos[0].numpy(), grid))
    return out


def library_windows(folders, n: int, seed: int = 779):
    """("Σ13 1x1 (0.519 Å)", translated positions, that group's grid) for n structures of each
    reference search folder, drawn without replacement."""
    from gbsearch.gbmodel.slab_voxels import SlabTemplate
    from gbsearch.store.database import load_reference_structures

    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    out = []
    for folder in folders:
        structures = load_reference_structures(folder)
        for i in rng.choice(len(structures), size=min(n, len(structures)), replace=False):
            a = structures[i]
            grid = SlabTemplate.from_atoms(a).grid()
            pos, _ = random_translation(torch.as_tensor(a.positions)[None], grid, gen)
            label = f"Σ{a.info['sigma']} ({grid.spacing[0]:.3f} Å)"
            out.append((label, pos[0].numpy(), grid))
    return out


def round_trip(model, dev, structures, noise: float = 0.0, seed: int = 0, precision: str = "auto") -> dict:
    """Encode, optionally add N(0, (noise·s)²) to every voxel, decode, compare; per kind + all."""
    gen = torch.Generator().manual_seed(seed)
    per_kind: dict[str, list] = {}
    for kind, pos, g in structures:
        p, m = pad_positions([pos], device=dev, dtype=torch.float64)
        v = encode(p, g, m).float()
        if noise > 0:
            v = v + (noise * model.config.scale * torch.randn(v.shape, generator=gen)).to(dev)
        pred = decode(v, g, model=model, precision=precision)[0]
        per_kind.setdefault(kind, []).append(compare(pos, pred, g))
    res = {k: summarize(r) for k, r in per_kind.items()}
    res["all"] = summarize([x for r in per_kind.values() for x in r])
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-per-kind", type=int, default=100, help="held-out structures per kind")
    ap.add_argument("--checkpoint", default=None, help="decoder checkpoint (default: shipped W decoder)")
    ap.add_argument("--device", default=None, help="device for decoding (default: cuda if present)")
    ap.add_argument("--reference", type=int, default=0, metavar="N",
                    help="also round-trip N structures of the bundled Σ5 reference dataset")
    ap.add_argument("--library", nargs="+", default=[], metavar="DIR", help="reference search folders")
    ap.add_argument("--per-boundary", type=int, default=20, help="structures per --library folder")
    ap.add_argument("--skip-speed", action="store_true", help="round trips only")
    ap.add_argument("--skip-roundtrip", action="store_true")
    ap.add_argument("--precision", nargs="+", default=["auto"], choices=["auto", "bf16", "fp32"],
                    help="decoder precision(s), round-tripped side by side on the same structures")
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    results = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    devs = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    for d in devs if not args.skip_speed else []:
        results[f"encoder_atoms_per_s_{d.type}"] = encoder_throughput(d)
        print(f"encoder throughput {d.type}: {results[f'encoder_atoms_per_s_{d.type}']:.3e} atoms/s", flush=True)
    for d in devs if not args.skip_speed else []:
        model = load_decoder(args.checkpoint, device=d)
        results[f"decode_s_per_structure_{d.type}"] = decode_time(model, d)
        print(f"decode time {d.type}: {results[f'decode_s_per_structure_{d.type}']:.3f} s per 28x28x64 window",
              flush=True)
    if not args.skip_roundtrip:
        dev = torch.device(args.device) if args.device else devs[-1]
        model = load_decoder(args.checkpoint, device=dev)
        structures = (held_out(args.n_per_kind) + reference_windows(args.reference)
                      + (library_windows(args.library, args.per_boundary) if args.library else []))
        for noise, prec in itertools.product((0.0, 0.05), args.precision):
            t = time.perf_counter()
            r = round_trip(model, dev, structures, noise=noise, precision=prec)
            results[f"round_trip_noise_{noise}" + ("" if args.precision == ["auto"] else f"_{prec}")] = r
            print(f"round trip, voxel noise {noise}·s, decoder {prec}, {len(structures)} structures on {dev.type} "
                  f"({time.perf_counter() - t:.0f} s):")
            for k, v in r.items():
                print(f"  {k:18s} exact {v['exact_frac']:.4f}  RMSE {v['rmse']:.4f} Å  "
                      f"missing {v['missing']}  extra {v['extra']}  (n={v['n_structures']})", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
