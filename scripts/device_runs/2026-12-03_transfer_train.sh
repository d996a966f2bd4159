#!/usr/bin/env bash
# Issue 17: train the transferable <100> twist model on the GPU while the reference-library
# searches (issue 15) go on on the CPU cores. From the repository root with .devcarry/ carried
# (bash scripts/make_devcarry.sh --diffusion):
#   GBSEARCH_COMMIT=abc1234 TRAIN_S=450 RUN_S=480 bash scripts/device_runs/2026-12-03_transfer_train.sh "13:2 17:3 25:3 37:3 41:3"
# Training data: the reference folders of Σ5, 17, 25, 37 and 41 (.devcarry/refruns/ when carried,
# else reference_runs/); Σ13, the held-out boundary, is never unpacked for it. A fresh run starts
# from the Σ5 model's weights; INIT=path starts from another model file (e.g. the last call's).
# Back in $OUT: twist100_transfer.pt (model file), train_log.txt (log + validation history),
# and what 2026-12-01c_reference.sh returns (sigmaΣ.tar.xz.partNN, reports.txt).
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
TRAIN_S=${TRAIN_S:-450}
INIT=${INIT:-gbsearch/data/models/sigma5_full.pt}
mkdir -p runs/train_data runs/transfer
for s in 5 17 25 37 41; do
  src=.devcarry/refruns/sigma$s.tar.xz; [ -f $src ] || src=reference_runs/sigma$s.tar.xz
  tar xJf $src -C runs/train_data
done
refpid=
if [ -n "${1:-}" ]; then
  bash scripts/device_runs/2026-12-01c_reference.sh "$1" > runs/reference_call.log 2>&1 &
  refpid=$!
fi
OMP_NUM_THREADS=2 GB_BATCH=${GB_BATCH:-16} GB_PATIENCE=${GB_PATIENCE:-8} \
  python3 scripts/train_transfer_device.py runs/transfer $TRAIN_S $INIT \
  runs/train_data/sigma5 runs/train_data/sigma17 runs/train_data/sigma25 runs/train_data/sigma37 \
  runs/train_data/sigma41 > runs/transfer/train.log 2>&1
cp runs/transfer/model.pt $OUT/twist100_transfer.pt
{ cat runs/transfer/train.log; echo "== history"; python3 - <<'PY'
import json, torch
ck = torch.load("runs/transfer/last.pt", weights_only=True, map_location="cpu")
print(json.dumps(ck["history"]))
PY
} > $OUT/train_log.txt 2>&1
tail -c 2500 $OUT/train_log.txt | head -c 1500; echo
nvidia-smi --query-gpu=name,memory.used --format=csv
[ -n "$refpid" ] && wait $refpid
tail -c 4000 runs/reference_call.log
# at most 8 files come back: a tee of this output (call_log.txt) would be the ninth
rm -f $OUT/call_log.txt
