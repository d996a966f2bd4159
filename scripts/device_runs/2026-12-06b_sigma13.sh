#!/usr/bin/env bash
# Issue 17, second session of 2026-12-06: the plateau run's weights (step 3,000,
# docs/transfer_2026-12-06/plateau_run/model_step3000.pt, carried as runs/D.pt) zero-shot on
# Σ13, measured AFTER the 12-06 rule had decided without them (its atom counts failed; nothing
# of Σ13 was read for the decision). The 12-05e Σ13 command at the rule's 60 NFE, seeds 0-4 x
# 24, CG + the 10 ps anneal, 15 Dask workers; generation on the GPU (bf16), as the 12-05e
# seeds 0-5. From the repository root with .devcarry/ (ref wheels and LAMMPS) carried:
#   GO=1 GBSEARCH_COMMIT=abc1234 D13_S=230 bash scripts/device_runs/2026-12-06b_sigma13.sh
# Back: discovery.tar.xz (the bench's records without the campaign folders) and the log.
# As run (commit b149745) the tarball held the campaign folders too: 21 MB, over the 16 MiB a
# returned file may have, so it stayed behind; a second call on the still-warm machine packed it
# without them (the line below since), 162 s and 0.3 s.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
mkdir -p runs/lib runs/bench
for f in sigma13 sigma13_seed1 sigma13_seed2; do tar xJf reference_runs/$f.tar.xz -C runs/lib; done
timeout -s INT ${D13_S:-230} python3 bench/discovery.py --model runs/D.pt -m 22.62 --reference runs/lib/sigma13 \
  --candidates 24 --seeds 5 --first-seed 0 --nfe 60 --workers 15 --reference-trials 0 --anneal-steps 5000 \
  --independent-references runs/lib/s13seed1 runs/lib/s13seed2 --out runs/bench/s13_D60 > $OUT/s13_D60.txt 2>&1
echo "exit $?"
tail -n 30 $OUT/s13_D60.txt
tar cJf $OUT/discovery.tar.xz -C runs/bench --exclude='seed*' .
ls -la $OUT
