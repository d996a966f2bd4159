#!/usr/bin/env bash
# Issue 17, session 2026-12-05e: the 12-05c/d run carried on toward the validation plateau, from
# the 12-05d best-validation weights (docs/transfer_2026-12-05d/model_step2750.pt, placed as
# .devcarry/transfer_init.pt), with the same library, validation split, batch, lr (1e-4, fresh
# optimizer), EMA, plateau test, snapshots every 500 steps and ship rule. The rule's baseline is
# now the shipped model, the 12-05d step-1,500 snapshot. Step N here is 12-05d step 2,750 + N
# (7,766 + N since the first run's start).
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=train TRAIN_S=500 bash scripts/device_runs/2026-12-05e_transfer.sh
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=choose bash scripts/device_runs/2026-12-05e_transfer.sh
exec bash "$(dirname "$0")/2026-12-05c_transfer.sh" "$@"
