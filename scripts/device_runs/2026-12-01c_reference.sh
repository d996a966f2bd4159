#!/usr/bin/env bash
# Reference-library searches (issue 15) on the lent GPU machine's 16 CPU cores, resumable.
# Usage, from the repository root with .devcarry/ carried:
#   GBSEARCH_COMMIT=abc1234 RUN_S=540 bash scripts/device_runs/2026-12-01c_reference.sh "5:6 13:4 17:3 25:1 37:1 41:1"
# Each "Σ:W" runs `gbsearch reference` for that boundary on W local workers until converged
# (or RUN_S seconds pass: the search is stopped and resumes next call). Folders resume from
# .devcarry/refruns/sigmaΣ.tar.xz when carried, else from the committed reference_runs/sigmaΣ.tar.xz
# (else start afresh), or with KEEP=1 from the folder a previous call on the same warm machine
# left in runs/lib/; each comes back as
# $OUT/sigmaΣ.tar.xz.partNN pieces of 15 MB (cat them together) and $OUT/reports.txt.
set -u
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
declare -A ANGLE=([5]=36.87 [13]=22.62 [17]=28.07 [25]=16.26 [37]=18.92 [41]=12.68)
RUN_S=${RUN_S:-540}
mkdir -p runs/lib
pids=()
for spec in $1; do
  s=${spec%%:*}; w=${spec##*:}
  # KEEP=1 on a machine still warm from the last call: resume the folder that call left here
  if [ -n "${KEEP:-}" ] && [ -f runs/lib/sigma$s/campaign.db ]; then :
  else
    rm -rf runs/lib/sigma$s
    if [ -f .devcarry/refruns/sigma$s.tar.xz ]; then tar xJf .devcarry/refruns/sigma$s.tar.xz -C runs/lib
    elif [ -f reference_runs/sigma$s.tar.xz ]; then tar xJf reference_runs/sigma$s.tar.xz -C runs/lib; fi
  fi
  timeout -k 30 -s INT $RUN_S python3 -m gbsearch.cli reference -m ${ANGLE[$s]} --out runs/lib/sigma$s \
      --structures 400 --until-converged --max-trials 100000 --seed 2026 --workers $w \
      --md-steps 2000 20000 > runs/lib/sigma$s.log 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for spec in $1; do
  s=${spec%%:*}
  python3 -m gbsearch.cli reference --report runs/lib/sigma$s > runs/lib/sigma$s/report.txt 2>&1
  tail -c 3000 runs/lib/sigma$s.log > runs/lib/sigma$s/search_tail.log
  { echo "== sigma$s"; cat runs/lib/sigma$s/report.txt; } >> $OUT/reports.txt
  tar cf - -C runs/lib sigma$s | xz -T16 -6 > /tmp/sigma$s.tar.xz
  split -b 15m -d /tmp/sigma$s.tar.xz $OUT/sigma$s.tar.xz.part
done
cat $OUT/reports.txt
ls -la $OUT
