#!/usr/bin/env bash
# Session 2026-12-05 (issues 16 and 17) on the lent H200, from the repository root with
# .devcarry/ carried (bash scripts/make_devcarry.sh --diffusion):
#   GO=1 GBSEARCH_COMMIT=abc1234 RUN_S=540 bash scripts/device_runs/2026-12-05_distill.sh "full window transfer" [S13_SEEDS]
# GPU, side by side: each named shipped model distilled into a few-step student (`gbsearch
# distill`; full = sigma5_full.pt, window = sigma5_window.pt, transfer = twist100_transfer.pt on
# the boundaries it was trained on: Σ5/17/25/37/41, never Σ13), for RUN_S seconds in all
# (trajectories included). INIT_<name>=path warm-starts that student from an earlier one.
# CPU: with S13_SEEDS (e.g. "1:5 2:5"), independent Σ13 reference searches (seed:workers, the
# library's settings otherwise) for the reference's spread of relaxations to its ground state.
# Back in $OUT: student_<name>.pt, distill_logs.txt, s13seed<seed>.tar.xz, reports.txt.
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
RUN_S=${RUN_S:-540}
declare -A TEACHER=([full]=sigma5_full.pt [window]=sigma5_window.pt [transfer]=twist100_transfer.pt)
declare -A TRAJ=([full]=2048 [window]=2048 [transfer]=384)
mkdir -p runs
pids=()
for spec in ${2:-}; do
  seed=${spec%%:*}; w=${spec##*:}
  timeout -k 30 -s INT $RUN_S python3 -m gbsearch.cli reference -m 22.62 --out runs/s13seed$seed \
      --structures 400 --until-converged --max-trials 100000 --seed $seed --workers $w \
      --md-steps 2000 20000 > runs/s13seed$seed.log 2>&1 &
  pids+=($!)
done
for name in $1; do
  init_var=INIT_$name; init=${!init_var:-}
  OMP_NUM_THREADS=2 python3 -m gbsearch.cli distill --model gbsearch/data/models/${TEACHER[$name]} \
      --out runs/student_$name --trajectories ${TRAJ[$name]} --max-time $((RUN_S - 25)) \
      ${init:+--init $init} > runs/student_$name.log 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for name in $1; do
  cp runs/student_$name/model.pt $OUT/student_$name.pt
  { echo "== $name"; tr '\r' '\n' < runs/student_$name.log | grep -v "^ *$" | tail -n 6
    python3 - runs/student_$name/last.pt <<'PY'
import json, sys, torch
ck = torch.load(sys.argv[1], weights_only=True, map_location="cpu")
for h in ck["history"]:
    print(json.dumps(h))
PY
  } >> $OUT/distill_logs.txt 2>&1
done
for spec in ${2:-}; do
  seed=${spec%%:*}
  python3 -m gbsearch.cli reference --report runs/s13seed$seed > runs/s13seed$seed/report.txt 2>&1
  tail -c 3000 runs/s13seed$seed.log > runs/s13seed$seed/search_tail.log
  { echo "== s13seed$seed"; cat runs/s13seed$seed/report.txt; } >> $OUT/reports.txt
  rm -rf runs/s13seed$seed/report_render
  tar cf - -C runs s13seed$seed | xz -T16 -6 > $OUT/s13seed$seed.tar.xz
done
cat $OUT/distill_logs.txt | grep -v '^{' ; tail -n 40 $OUT/distill_logs.txt | cut -c1-400
[ -f $OUT/reports.txt ] && cat $OUT/reports.txt
nvidia-smi --query-gpu=name,memory.used --format=csv
ls -la $OUT
