#!/usr/bin/env bash
# Converged reference searches of two symmetric tilt boundaries (issue 19) on the lent GPU
# machine's 16 CPU cores, resumable. Usage, from the repository root with .devcarry/ carried:
#   GBSEARCH_COMMIT=abc1234 RUN_S=540 bash scripts/device_runs/2026-12-02_tilt.sh "w552:8 cu210:8"
# Each "NAME:W" runs `gbsearch reference` for that boundary on W local workers until converged
# (or RUN_S seconds pass: the search is stopped and resumes next call):
#   w552   W Σ27(552)[1-10] symmetric tilt, Zhou 2004 (potentials/W_Zhou2004.eam.alloy)
#   cu210  Cu Σ5(210)[001] symmetric tilt, Mishin 2001 (potentials/Cu_mishin1.eam.alloy: the
#          trimmed LAMMPS of .devcarry/ has no share/potentials, so the file comes from the repo)
# Both with the default replications (elongated cells included, see gbsearch/driver/trials.py),
# seed 2026 and MD 2,000–20,000 steps as the library searches (reference_runs/README.md); the Cu
# anneals at 400–900 K, the same 0.27–0.68 of its melting point (Mishin Cu 1327 K) as GRIP's
# 1000–2500 K are of W's 3695 K. Folders resume from .devcarry/refruns/NAME.tar.xz when carried
# (else from the committed reference_runs/NAME.tar.xz)
# (else start afresh); each comes back as $OUT/NAME.tar.xz.partNN pieces of 15 MB (cat them
# together) and $OUT/reports.txt.
set -u
source scripts/device_env.sh
export GBSEARCH_COMMIT=${GBSEARCH_COMMIT:?set GBSEARCH_COMMIT to the commit this tree is}
declare -A BOUNDARY=(
  [w552]="--plane 5,5,2 --axis 1,-1,0 --potential potentials/W_Zhou2004.eam.alloy --element W"
  [cu210]="--plane 2,1,0 --axis 0,0,1 --potential potentials/Cu_mishin1.eam.alloy --element Cu --md-temperature 400 900"
)
RUN_S=${RUN_S:-540}
mkdir -p runs/tilt
pids=()
for spec in $1; do
  name=${spec%%:*}; w=${spec##*:}
  [ -n "${BOUNDARY[$name]:-}" ] || { echo "unknown boundary $name (known: ${!BOUNDARY[*]})"; exit 2; }
  rm -rf runs/tilt/$name
  if [ -f .devcarry/refruns/$name.tar.xz ]; then tar xJf .devcarry/refruns/$name.tar.xz -C runs/tilt
  elif [ -f reference_runs/$name.tar.xz ]; then tar xJf reference_runs/$name.tar.xz -C runs/tilt; fi
  timeout -k 30 -s INT $RUN_S python3 -m gbsearch.cli reference ${BOUNDARY[$name]} --out runs/tilt/$name \
      --structures 400 --until-converged --max-trials 100000 --seed 2026 --workers $w \
      --md-steps 2000 20000 > runs/tilt/$name.log 2>&1 &
  pids+=($!)
done
wait "${pids[@]}"
for spec in $1; do
  name=${spec%%:*}
  python3 -m gbsearch.cli reference --report runs/tilt/$name > runs/tilt/$name/report.txt 2>&1
  tail -c 3000 runs/tilt/$name.log > runs/tilt/$name/search_tail.log
  { echo "== $name"; cat runs/tilt/$name/report.txt; } >> $OUT/reports.txt
  tar cf - -C runs/tilt $name | xz -T16 -6 > /tmp/$name.tar.xz
  split -b 15m -d /tmp/$name.tar.xz $OUT/$name.tar.xz.part
done
cat $OUT/reports.txt
ls -la $OUT
