#!/usr/bin/env bash
# Issue 16 on the lent H200: the GPU generation benchmark (old path against new, batch 64 and
# 256, the campaign's NFE and 60) and the held-out discovery benchmark on the new path (CG +
# anneal, seeds 0-4 as today's path's first five), side by side in one call: discovery relaxes
# on 14 of the 16 cores while the benchmark holds the GPU (discovery's own generation is a few
# seconds per seed on it).
# Usage, from the repository root with .devcarry/ (built with --diffusion) carried:
#   GBSEARCH_COMMIT=abc1234 bash scripts/device_runs/2026-12-02b_generation.sh SOLVER NFE CANDIDATES
set -u
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
solver=$1 nfe=$2 cands=$3
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
mkdir -p $OUT/disc
( python3 bench/discovery.py --candidates $cands --seeds 5 --first-seed 0 --anneal-steps 5000 --workers 14 \
    --nfe $nfe --solver $solver --reference-trials 2 --out runs/disc > $OUT/disc/discovery.log 2>&1
  cp runs/disc/discovery.json runs/disc/diffusion_candidates.csv runs/disc/*.png $OUT/disc/ 2>/dev/null ) &
disc=$!
python3 bench/bench_generation.py --device cuda --batches 64 256 --rounds 1 --solver $solver --new-nfe $nfe \
    --out $OUT/gpu_generation.json \
    > $OUT/gpu_generation.log 2>&1
cat $OUT/gpu_generation.log | grep -v Warning
wait $disc
tail -40 $OUT/disc/discovery.log
ls -la $OUT $OUT/disc
