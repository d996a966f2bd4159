#!/usr/bin/env bash
# Issue 17, session 2026-12-05f: the transferable model trained on to a validation plateau under
# a decaying learning rate, from the shipped weights (12-05e step 2,250, placed as
# .devcarry/transfer_init.pt), same library, validation split, batch, EMA, plateau test
# (8 validations, every 250 steps, without a 1 % gain on any boundary) and snapshots every 500
# steps as the 12-05c/d/e runs. New: the LR falls linearly from 1e-4 to 1e-5 over the run's
# first 750 steps and stays at 1e-5 (the constant 1e-4 of 12-05c/d/e kept finding ~1 % per 500
# steps and never halved, so no plateau came in their 6,260 steps). Step N here is 10,016 + N since
# the first run.
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=train TRAIN_S=520 bash scripts/device_runs/2026-12-05f_transfer.sh
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE="train counts" TRAIN_S=400 bash scripts/device_runs/2026-12-05f_transfer.sh
# counts: bench/atom_counts.py on the five training boundaries (16 candidates each, seed 0, 20 NFE,
#   GPU batch 16) for the three models of the rule below. Back: counts.tar.xz.
#
# The rule, fixed before this run (held-out means held out: no Σ13 number is read for it; Σ5, a
# benchmark boundary, enters only through its atom counts, as in the 12-05c/d/e rule). Three models: A, the shipped weights (12-05e step
# 2,250); B, the 12-05d step-1,500 weights (shipped before A, gbsearch/data/models/
# twist100_transfer.pt at commit 4a23266, placed as .devcarry/transfer_05d.pt); C, this run's
# best-validation weights. The 12-05e session found that lower validation loss came with worse
# zero-shot discovery, so validation no longer chooses:
#  1. counts (as 12-05c/d/e, baseline A): B or C is eligible when on each training boundary no
#     more than A's + 1 of its 16 candidates fall outside the reference atom-count range, and no
#     more than A's + 2 over the five. A is eligible.
#  2. discovery on Σ17, a training boundary, measured on the 2-core machine afterwards:
#       python bench/discovery.py --model M -m 28.07 --reference runs/lib/sigma17 --candidates 24 \
#         --seeds 3 --first-seed 0 --nfe 20 --workers 2 --reference-trials 0 --anneal-steps 5000
#     The eligible model with the largest fraction of candidates within 0.05 J/m² of Σ17's
#     reference envelope ships; a tie goes to the lower median candidate γ, then to A.
set -u
export GB_LR_DECAY=750 GB_MIN_LR=1e-5
for phase in ${PHASE:?PHASE=train, counts or both}; do case $phase in
train) PHASE=train bash "$(dirname "$0")/2026-12-05c_transfer.sh" || exit $? ;;
counts)
  [ -n "${GO:-}" ] || { echo "set GO=1 to run"; exit 3; }
  source scripts/device_env.sh
  mkdir -p runs/counts
  cp runs/transfer/model.pt runs/counts/C_best_val.pt
  cp gbsearch/data/models/twist100_transfer.pt runs/counts/A_shipped.pt
  cp .devcarry/transfer_05d.pt runs/counts/B_05d.pt
  for pair in 5:36.87 17:28.07 25:16.26 37:18.92 41:12.68; do
    s=${pair%%:*}
    python3 bench/atom_counts.py -m ${pair#*:} --reference runs/train_data/sigma$s \
      --models runs/counts/A_shipped.pt runs/counts/B_05d.pt runs/counts/C_best_val.pt \
      --candidates 16 --seed 0 --device cuda --batch-size 16 --out runs/counts/sigma$s.json > runs/counts/sigma$s.log 2>&1 \
      || tail -20 runs/counts/sigma$s.log
  done
  tar cJf $OUT/counts.tar.xz runs/counts/*.json runs/counts/*.log
  cp runs/transfer/model.pt $OUT/best_model.pt
  ls -la $OUT ;;
esac; done
