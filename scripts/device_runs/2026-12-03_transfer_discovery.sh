#!/usr/bin/env bash
# Issue 17's benchmarks on the lent GPU machine (generation on the GPU, relaxations on 15 Dask
# workers), from the repository root with .devcarry/ carried (scripts/make_devcarry.sh --diffusion):
#   bash scripts/device_runs/2026-12-03_transfer_discovery.sh
# 1. Σ13 zero-shot with the bundled transferable model (never trained on Σ13), CG + anneal;
# 2. Σ5: the transferable model against the Σ5-only model (sigma5_full.pt), CG + anneal;
# 3. Σ13 zero-shot, CG only (the paper's protocol).
# Reference trial times: as the reference searches recorded them (no trials re-timed here).
# Each: 5 seeds x C candidates at the campaign's defaults (20 NFE, DPM-Solver-3), against the
# reference folders of reference_runs/. Back in $OUT: one log per benchmark and discovery.tar.xz
# (each benchmark's discovery.json, diffusion_candidates.csv and discovery.png).
set -u
source scripts/device_env.sh
C=${C:-24}
mkdir -p runs/lib
for s in 5 13; do tar xJf reference_runs/sigma$s.tar.xz -C runs/lib; done
T=gbsearch/data/models/twist100_transfer.pt
bench() {   # name, timeout (s), then discovery.py's arguments
  local name=$1 limit=$2; shift 2
  timeout -s INT $limit python3 bench/discovery.py --candidates $C --seeds 5 --nfe 20 --workers 15 \
      --reference-trials 0 --out runs/bench/$name "$@" > $OUT/$name.txt 2>&1
  tail -n 12 $OUT/$name.txt
}
bench d13_anneal 140 --model $T -m 22.62 --reference runs/lib/sigma13 --anneal-steps 5000
bench d5_transfer 105 --model $T -m 36.87 --reference runs/lib/sigma5 --anneal-steps 5000
bench d5_sigma5 105 --model gbsearch/data/models/sigma5_full.pt -m 36.87 --reference runs/lib/sigma5 --anneal-steps 5000
bench d13_cg 45 --model $T -m 22.62 --reference runs/lib/sigma13 --anneal-steps 0
tar cJf $OUT/discovery.tar.xz -C runs/bench --exclude='seed*' .
ls -la $OUT
