#!/usr/bin/env bash
# Issue 17, session 2026-12-05b: continue the transferable <100> twist model toward its validation
# plateau on the whole current library, then benchmark it. From the repository root with
# .devcarry/ carried (bash scripts/make_devcarry.sh --diffusion):
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=train TRAIN_S=500 LIB="37:6 41:6" bash scripts/device_runs/2026-12-05b_transfer.sh
#   GO=1 GBSEARCH_COMMIT=abc1234 PHASE=eval bash scripts/device_runs/2026-12-05b_transfer.sh
# train: scripts/train_transfer_device.py on Σ5/17/25/37/41 of reference_runs/ (Σ13, the held-out
#   boundary, is never unpacked here), batch 32. It resumes from runs/transfer/last.pt when the
#   machine is still warm from the last call, else warm-starts (fresh optimizer) from
#   .devcarry/transfer_init.pt (the last call's model, when carried) or the shipped model. With LIB
#   the library searches of those boundaries run on the spare cores (2026-12-01c_reference.sh, KEEP=1).
#   Back: twist100_transfer.pt (this run's best-validation model), train_log.txt, and LIB's files.
# eval: the model of the last train call, 10 campaign seeds (0-9) x 24 candidates, 20 NFE,
#   15 Dask workers, against the bundled references: Σ13 zero-shot with the 10 ps anneal, Σ5 with
#   the anneal, Σ13 CG only (BENCHES="d13_anneal ..." runs fewer). Back: discovery.tar.xz and one
#   log per benchmark. PHASE=eval right after PHASE=train in one command runs both in one call.
#
# Which model ships is decided before any of its Σ13 numbers are read, and on training boundaries
# only (held-out means held out): the new model replaces gbsearch/data/models/twist100_transfer.pt
# when (1) its best validation loss is below the shipped weights' (this run's step-0 validation)
# on every training boundary, and (2) over 8 candidates on each training boundary
# (bench/atom_counts.py, seed 0, run on the CPU machine) no more of its candidates fall outside
# the reference structures' atom-count range than the shipped model's, plus one.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
SHIPPED=gbsearch/data/models/twist100_transfer.pt
mkdir -p runs/train_data runs/transfer runs/bench
case ${PHASE:?PHASE=train or eval} in
train)
  for s in 5 17 25 37 41; do
    [ -d runs/train_data/sigma$s ] || tar xJf reference_runs/sigma$s.tar.xz -C runs/train_data
  done
  TRAIN_S=${TRAIN_S:-500}
  init=$SHIPPED; [ -f .devcarry/transfer_init.pt ] && init=.devcarry/transfer_init.pt
  [ -f runs/transfer/last.pt ] && echo "resuming runs/transfer/last.pt (machine still warm)" || echo "warm start from $init"
  libpid=
  if [ -n "${LIB:-}" ]; then
    KEEP=1 RUN_S=$((TRAIN_S - 30)) bash scripts/device_runs/2026-12-01c_reference.sh "$LIB" > runs/lib_call.log 2>&1 &
    libpid=$!
  fi
  log=runs/transfer/train_$(date +%H%M%S).log
  OMP_NUM_THREADS=2 GB_BATCH=${GB_BATCH:-32} GB_PATIENCE=${GB_PATIENCE:-8} \
    python3 scripts/train_transfer_device.py runs/transfer $TRAIN_S $init \
    runs/train_data/sigma5 runs/train_data/sigma17 runs/train_data/sigma25 runs/train_data/sigma37 \
    runs/train_data/sigma41 > $log 2>&1
  cp runs/transfer/model.pt $OUT/twist100_transfer.pt
  { cat runs/transfer/train_*.log; echo "== history"; python3 - <<'PY'
import json, torch
ck = torch.load("runs/transfer/last.pt", weights_only=True, map_location="cpu")
print(json.dumps(ck["history"]))
PY
  } > $OUT/train_log.txt 2>&1
  tail -n 12 $log
  if [ -n "$libpid" ]; then wait $libpid; tail -c 2500 runs/lib_call.log; fi
  ;;
eval)
  M=runs/transfer/model.pt; [ -f $M ] || M=.devcarry/transfer_init.pt
  echo "model: $M"
  bench() {   # name, timeout (s), then discovery.py's arguments
    local name=$1 limit=$2; shift 2
    timeout -s INT $limit python3 bench/discovery.py --model $M --candidates 24 --seeds 10 --nfe 20 \
        --workers 15 --reference-trials 0 --out runs/bench/$name "$@" > $OUT/$name.txt 2>&1
    echo "== $name: exit $?"
  }
  for b in ${BENCHES:-d13_anneal d5_anneal d13_cg}; do   # BENCHES: a shorter call runs fewer
    case $b in
      d13_anneal) bench d13_anneal ${D13_S:-250} -m 22.62 --anneal-steps 5000 ;;
      d5_anneal) bench d5_anneal ${D5_S:-230} -m 36.87 --anneal-steps 5000 ;;
      d13_cg) bench d13_cg ${CG_S:-90} -m 22.62 --anneal-steps 0 ;;
    esac
  done
  tar cJf $OUT/discovery.tar.xz -C runs/bench --exclude='seed*' .
  ls -la $OUT
  ;;
esac
