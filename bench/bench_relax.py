"""Relaxation benchmark: gbsearch.relaxation.relax vs the same minimisation as a bare LAMMPS script.

Both run in one process on one core, alternating, on the default Σ5(100) twist slab
(`gbsearch build` default, 1x1 CSL cell) and on the 2x2 cell of the reference dataset.
Prints seconds per relaxation and the ratio ours / bare (medians over repeats).

    python bench/bench_relax.py [--repeats 15]
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from ase.io import write

from gbsearch.geometry.bicrystal import FIXED_LOWER, FIXED_REGIONS, FIXED_UPPER, twist_bicrystal
from gbsearch.relaxation.engine import _new_lammps
from gbsearch.relaxation.potential import potential_path
from gbsearch.relaxation.relax import bulk_reference, relax

BARE_SCRIPT = """
units metal
atom_style atomic
atom_modify map array sort 0 0
boundary p p f
read_data {data}
mass 1 183.84
pair_style eam/alloy
pair_coeff * * {pot} W
group fixlo id {lo}
group fixhi id {hi}
fix hold fixlo setforce 0.0 0.0 0.0
fix rigidz fixhi aveforce NULL NULL 0.0
fix holdxy fixhi setforce 0.0 0.0 NULL
compute pe all pe/atom
thermo 0
min_style cg
minimize 1e-15 1e-10 10000 100000
"""


def perturbed(replicate, seed):
    atoms = twist_bicrystal(36.87, replicate=replicate)
    rng = np.random.default_rng(seed)
    free = ~np.isin(atoms.arrays["region"], FIXED_REGIONS)
    atoms.positions[free] += rng.normal(0, 0.05, (free.sum(), 3))
    return atoms


def bare_run(lmp, atoms, workdir: Path) -> float:
    data = workdir / "slab.data"
    write(data, atoms, format="lammps-data")
    region = atoms.arrays["region"]
    ids = lambda code: " ".join(str(i + 1) for i in np.flatnonzero(region == code))  # noqa: E731
    t0 = time.perf_counter()
    lmp.command("clear")
    lmp.commands_string(BARE_SCRIPT.format(data=data, pot=potential_path(), lo=ids(FIXED_LOWER), hi=ids(FIXED_UPPER)))
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args()
    bulk_reference()                       # warm the shared engine and E_coh cache
    lmp = _new_lammps()
    with tempfile.TemporaryDirectory() as tmp:
        for rep in ((1, 1), (2, 2)):
            ours, bare, energies = [], [], []
            for k in range(args.repeats):
                atoms = perturbed(rep, k)
                t0 = time.perf_counter()
                out = relax(atoms)
                ours.append(time.perf_counter() - t0)
                bare.append(bare_run(lmp, atoms, Path(tmp)))
                energies.append(out.info["energy_eV"] - lmp.get_thermo("pe"))
            mo, mb = statistics.median(ours), statistics.median(bare)
            print(f"Σ5 {rep[0]}x{rep[1]} ({len(atoms)} atoms): gbsearch.relaxation.relax {mo:.4f} s/relaxation, "
                  f"bare LAMMPS script {mb:.4f} s, ratio {mo / mb:.3f} "
                  f"(max |ΔE| {max(abs(e) for e in energies):.1e} eV, {args.repeats} repeats)")


if __name__ == "__main__":
    main()
