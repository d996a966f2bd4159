#!/usr/bin/env bash
# Issue 17, session 2026-12-06: the transferable model trained on from the 12-05f run's best
# validation weights (step 4,250 of that run, docs/transfer_2026-12-05f/model_step4250.pt, placed
# as .devcarry/transfer_init.pt; that run's optimizer state did not come back, so Adam starts
# fresh) with the LR falling linearly from 1e-5 to 1e-6 over the first 1,500 steps and held at
# 1e-6, until the plateau test stops it (8 validations, every 250 steps, without a 1 % gain on
# any boundary: the test of the 12-05c/d/e/f runs). Same library, validation split, batch, EMA and
# snapshots as those runs (the train phase is 2026-12-05c_transfer.sh's). The 12-05f run, at a
# constant 1e-5, still found 0.4-1.9 % per boundary over its last 8 validations.
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=train TRAIN_S=520 bash scripts/device_runs/2026-12-06_transfer.sh
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE="train counts" TRAIN_S=300 bash scripts/device_runs/2026-12-06_transfer.sh
# counts: bench/atom_counts.py on the five training boundaries (16 candidates each, seed 0, GPU
#   batch 16) at 20 NFE for A and at 60 NFE for A, C and D below (the rule's configurations;
#   C and D at 20 as well with COUNT_ALL=1; D only when this session trained it). Back:
#   counts.tar.xz, D's weights.
#
# The rule, fixed before this run. The 12-05f session found that the more trained weights lose
# atoms at 20 NFE and that at 60 NFE they were level with the shipped weights on Σ17, so this
# rule chooses a configuration, weights AND solver steps. Held-out means held out: no Σ13 number
# is read for it; Σ5, a benchmark boundary, enters only through its atom counts, as before.
#   A20: the shipped weights (12-05e step 2,250) at 20 NFE, today's default;
#   A60: the same weights at 60 NFE;
#   C60: the 12-05f step-4,250 weights at 60 NFE;
#   D60: this run's best-validation weights at 60 NFE.
#  1. counts (GPU, the counts phase): a configuration is eligible when on each training boundary
#     no more than A20's + 1 of its 16 candidates fall outside the reference atom-count range, and
#     no more than A20's + 2 over the five (count_reasons of scripts/choose_transfer_checkpoint.py).
#  2. discovery on Σ17, a training boundary, on the 2-core machine (CPU samples: the GPU samples
#     in bf16, so every configuration is compared on the CPU), the 12-05f command at the
#     configuration's NFE:
#       python bench/discovery.py --model M -m 28.07 --reference runs/lib/sigma17 --candidates 24 \
#         --seeds 3 --first-seed 0 --nfe N --workers 2 --reference-trials 0 --anneal-steps 5000
#     On record already: A20 (docs/transfer_2026-12-05f/sigma17_A_shipped: 16 of 72 near the
#     envelope, median 3.303) and C60 (sigma17_C_step4250_nfe60: 16 of 72, median 3.080). Run
#     here: A60 and, when eligible, D60. The eligible configuration with the most candidates
#     within 0.05 J/m² of Σ17's reference envelope is chosen; a tie goes to fewer NFE (generation
#     costs about 2.3x per candidate on the CPU at 60), then to the lower median candidate γ.
#     A 60-NFE choice ships its weights with 60 recorded as the model's own steps, so that
#     `gbsearch run` samples it as chosen (not built: the rule kept A20).
# What happened (12-06): no machine came, so nothing was trained and step 1's counts ran on the
# 2-core machine's CPU for every configuration (scripts/device_runs/README.md; the decision:
# docs/transfer_2026-12-06/choice.txt).
# Second session of 12-06: the plateau run. After four refused calls an H100 came; two calls,
# the second on the still-warm machine, with .devcarry/ref/lmp.tar.xz left out (training needs
# no LAMMPS) and runs/shipped_val.json carried (docs/transfer_2026-12-05f/shipped_val.json, the
# same weights, split and batch), so the baseline step was skipped:
#   GO=1 GBSEARCH_COMMIT=300d68f PHASE=train TRAIN_S=540 bash scripts/device_runs/2026-12-06_transfer.sh
#   GO=1 GBSEARCH_COMMIT=300d68f PHASE=train TRAIN_S=470 bash scripts/device_runs/2026-12-06_transfer.sh   # resumed
# The plateau test stopped it at step 3,000 (docs/transfer_2026-12-06/plateau_run/). Commit
# 300d68f also sent the run's state without its optimizer back, for a call on a fresh machine;
# at 25 MB it was over the 16 MiB a returned file may have, so it never came back, and it is gone.
# The counts ran on the 2-core machine's CPU, as the other configurations' did on 12-06.
set -u
export GB_LR=1e-5 GB_LR_DECAY=1500 GB_MIN_LR=1e-6
for phase in ${PHASE:?PHASE=train, counts or both}; do case $phase in
train) PHASE=train bash "$(dirname "$0")/2026-12-05c_transfer.sh" || exit $? ;;
counts)
  [ -n "${GO:-}" ] || { echo "set GO=1 to run"; exit 3; }
  source scripts/device_env.sh
  mkdir -p runs/counts
  [ -f runs/transfer/model.pt ] && cp runs/transfer/model.pt runs/counts/D_best_val.pt
  cp gbsearch/data/models/twist100_transfer.pt runs/counts/A_shipped.pt
  cp .devcarry/transfer_init.pt runs/counts/C_05f.pt
  for nfe in 20 60; do
    models="runs/counts/A_shipped.pt runs/counts/C_05f.pt $(ls runs/counts/D_best_val.pt 2>/dev/null)"
    [ $nfe = 20 ] && [ -z "${COUNT_ALL:-}" ] && models=runs/counts/A_shipped.pt
    for pair in 5:36.87 17:28.07 25:16.26 37:18.92 41:12.68; do
      s=${pair%%:*}
      python3 bench/atom_counts.py -m ${pair#*:} --reference runs/train_data/sigma$s --models $models \
        --candidates 16 --seed 0 --nfe $nfe --device cuda --batch-size 16 \
        --out runs/counts/sigma${s}_nfe$nfe.json > runs/counts/sigma${s}_nfe$nfe.log 2>&1 \
        || tail -20 runs/counts/sigma${s}_nfe$nfe.log
    done
  done
  tar cJf $OUT/counts.tar.xz runs/counts/*.json runs/counts/*.log
  [ -f runs/transfer/model.pt ] && cp runs/transfer/model.pt $OUT/best_model.pt
  ls -la $OUT ;;
esac; done
