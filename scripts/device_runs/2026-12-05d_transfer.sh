#!/usr/bin/env bash
# Issue 17, session 2026-12-05d: the 12-05c run (scripts/device_runs/2026-12-05c_transfer.sh,
# whose header says what each phase does) carried on toward the validation plateau, from the
# 12-05c step-1,000 weights (docs/transfer_2026-12-05c/model_step1000.pt, placed as
# .devcarry/transfer_init.pt), with the same library, validation split, batch, lr (1e-4, fresh
# optimizer), EMA, plateau test, snapshots every 500 steps and ship rule. Step numbers restart
# at 0 (step N here is 12-05b 1,500 + 12-05c 1,000 + N on the run's own count).
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=train TRAIN_S=540 bash scripts/device_runs/2026-12-05d_transfer.sh
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE="train choose" TRAIN_S=380 bash scripts/device_runs/2026-12-05d_transfer.sh
# The choose phase samples with the campaign's sampler of the commit it runs at.
# The calls of 35a34ec ran a full copy of the 12-05c script's body; this file now hands over to
# that script, which does the same (only the weights in .devcarry/transfer_init.pt differ).
exec bash "$(dirname "$0")/2026-12-05c_transfer.sh" "$@"
