#!/usr/bin/env bash
# Issues 16 and 17 on the lent GPU machine, from the repository root with .devcarry/ and
# runs/models/ carried (run 1 of the transferable model, gbsearch/data/models/twist100_transfer.pt
# at commit 1dc9de1, as runs/models/twist100_transfer_run1.pt):
#   GO=1 bash scripts/device_runs/2026-12-03b_call3.sh
# In parallel:
#  - issue 16: bench/bench_generation.py on the GPU, old path against new, batch 64, the
#    campaign's 20 NFE and 60, two timed batches each (the batch-256 rows came from call 2);
#  - issue 17: Σ5 discovery, CG + anneal, 5 seeds x C candidates each, for the Σ5-only model
#    (sigma5_full.pt) and the transferable model's runs 1 and 2, against reference_runs/sigma5.
# Back in $OUT: gpu_generation64.json/.txt, d5_*.txt, discovery5.tar.xz.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
C=${C:-16}; W=${W:-12}
mkdir -p runs/lib runs/bench
tar xJf reference_runs/sigma5.tar.xz -C runs/lib
timeout -s INT ${BENCH_S:-280} python3 bench/bench_generation.py --device cuda --batches 64 --rounds 1 \
    --gpu-batches 2 --out $OUT/gpu_generation64.json > $OUT/gpu_generation64.txt 2>&1 &
benchpid=$!
disc() {   # name, timeout (s), model
  timeout -s INT $2 python3 bench/discovery.py --candidates $C --seeds 5 --nfe 20 --workers $W \
      --reference-trials 0 --out runs/bench/$1 --model $3 -m 36.87 --reference runs/lib/sigma5 \
      --anneal-steps 5000 > $OUT/$1.txt 2>&1
  tail -n 8 $OUT/$1.txt
}
disc d5_sigma5 110 gbsearch/data/models/sigma5_full.pt
disc d5_transfer2 110 gbsearch/data/models/twist100_transfer.pt
disc d5_transfer1 110 runs/models/twist100_transfer_run1.pt
wait $benchpid
tail -n 6 $OUT/gpu_generation64.txt
tar cJf $OUT/discovery5.tar.xz -C runs/bench --exclude='seed*' .
ls -la $OUT
