#!/usr/bin/env bash
# Issues 16 and 17 on the lent GPU machine, from the repository root with .devcarry/ carried
# (scripts/make_devcarry.sh --diffusion):
#   GO=1 bash scripts/device_runs/2026-12-03b_call2.sh
# In parallel:
#  - issue 16: bench/bench_generation.py on the GPU, old path against new, batches 256 and 64,
#    the campaign's 20 NFE and 60, two timed batches each (up to BENCH_S seconds);
#  - issue 17: Σ13 zero-shot discovery with the bundled transferable model (never trained on
#    Σ13), 5 seeds x C candidates, CG + anneal and then CG only, relaxations on W Dask workers
#    (the GPU generates each seed's candidates in a few seconds; the bench's old and new rows
#    see the same interference).
# Back in $OUT: gpu_generation.json/.txt, d13_anneal.txt, d13_cg.txt, discovery.tar.xz.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
C=${C:-48}; W=${W:-11}; BENCH_S=${BENCH_S:-420}
mkdir -p runs/lib runs/bench
tar xJf reference_runs/sigma13.tar.xz -C runs/lib
T=gbsearch/data/models/twist100_transfer.pt
timeout -s INT $BENCH_S python3 bench/bench_generation.py --device cuda --batches 256 64 --rounds 1 \
    --gpu-batches 2 --out $OUT/gpu_generation.json > $OUT/gpu_generation.txt 2>&1 &
benchpid=$!
disc() {   # name, timeout (s), then discovery.py's arguments
  local name=$1 limit=$2; shift 2
  timeout -s INT $limit python3 bench/discovery.py --candidates $C --seeds 5 --nfe 20 --workers $W \
      --reference-trials 0 --out runs/bench/$name "$@" > $OUT/$name.txt 2>&1
  tail -n 9 $OUT/$name.txt
}
disc d13_anneal 330 --model $T -m 22.62 --reference runs/lib/sigma13 --anneal-steps 5000
disc d13_cg 90 --model $T -m 22.62 --reference runs/lib/sigma13 --anneal-steps 0
wait $benchpid
tail -n 12 $OUT/gpu_generation.txt
tar cJf $OUT/discovery.tar.xz -C runs/bench --exclude='seed*' .
nvidia-smi --query-gpu=name,memory.used --format=csv
ls -la $OUT
