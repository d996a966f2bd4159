#!/usr/bin/env bash
# Issue 17's Σ5 comparison on the lent GPU machine: the transferable model (twist100_transfer.pt,
# trained on Σ5/17/25/37/41) against the Σ5-only model (sigma5_full.pt) on the held-out
# discovery benchmark, against the bundled Σ5 reference (497 trials, ground state 2.2981 J/m²
# at [n] = 0.20). From the repository root with .devcarry/ carried (make_devcarry.sh --diffusion):
#   GO=1 GBSEARCH_COMMIT=abc1234 bash scripts/device_runs/2026-12-04_sigma5_compare.sh
# The two models run side by side (generation on the GPU, W Dask workers each): first CG +
# 10 ps anneal, then CG only (the paper's protocol); 5 seeds x C candidates each, 20 NFE.
# With LIB="41:2" the library search of that boundary runs beside them on the remaining cores
# (scripts/device_runs/2026-12-01c_reference.sh, RUN_S seconds).
# Back in $OUT: discovery5.tar.xz (each run's discovery.json, diffusion_candidates.csv,
# discovery.png and log) and, with LIB, the library script's files.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
C=${C:-24}; W=${W:-7}
T=gbsearch/data/models/twist100_transfer.pt; S=gbsearch/data/models/sigma5_full.pt
mkdir -p runs/bench
libpid=
if [ -n "${LIB:-}" ]; then bash scripts/device_runs/2026-12-01c_reference.sh "$LIB" > runs/bench/lib.txt 2>&1 & libpid=$!; fi
disc() {   # name, timeout (s), model, anneal steps
  timeout -s INT $2 python3 bench/discovery.py --candidates $C --seeds 5 --nfe 20 --workers $W \
      --reference-trials 0 --out runs/bench/$1 --model $3 -m 36.87 --anneal-steps $4 \
      > runs/bench/$1.log 2>&1
  echo "== $1"; tail -n 14 runs/bench/$1.log
}
disc d5_transfer_anneal ${ANNEAL_S:-330} $T 5000 & a=$!; disc d5_sigma5_anneal ${ANNEAL_S:-330} $S 5000 & b=$!
wait $a $b
disc d5_transfer_cg ${CG_S:-110} $T 0 & a=$!; disc d5_sigma5_cg ${CG_S:-110} $S 0 & b=$!
wait $a $b ${libpid}
tar cJf $OUT/discovery5.tar.xz -C runs/bench --exclude='seed*' .
ls -la $OUT
