#!/usr/bin/env bash
# Session 2026-12-05 (issue 16): the students of 2026-12-05_distill.sh against their teachers, on
# the lent H200 (generation on the GPU, relaxations on 15 Dask workers), from the repository root
# with .devcarry/ carried, students at STUDENTS (default runs/, where the distillation call left
# them on a warm machine; else the folder they were carried in as student_<name>.pt):
#   GO=1 bash scripts/device_runs/2026-12-05_bench.sh [STUDENTS]
# 1. GPU generation: old path, new path (teacher) and the Σ5 student, batch 64 and 256
#    (bench/bench_generation.py, rows printed as they come);
# 2. held-out discovery (window model: [n] 0.1-0.5 never trained on), CG + anneal, 5 seeds x C,
#    the teacher at the campaign's 20 DPM-Solver-3 steps and its student at 2, same seeds;
# 3. Σ13 zero-shot (never trained on), CG + anneal, 5 seeds x C: transferable teacher at 20
#    steps and its student at 2.
# Reference trial times: as the reference searches recorded them. Back in $OUT: one log per
# benchmark, gpu_generation.json and discovery.tar.xz (discovery.json, candidates, plots).
set -u
[ -n "${GO:-}" ] || { echo "set GO=1 to run (guards against a stale repeated call)"; exit 3; }
source scripts/device_env.sh
C=${C:-24}
S=${1:-runs}
student() { [ -f $S/student_$1/model.pt ] && echo $S/student_$1/model.pt || echo $S/student_$1.pt; }
M=gbsearch/data/models
timeout -s INT ${GPU_S:-170} python3 bench/bench_generation.py --device cuda --batches 256 64 --rounds 1 \
    --gpu-batches 2 --student $(student full) --out $OUT/gpu_generation.json > $OUT/gpu_generation.txt 2>&1
grep -E "round|path" $OUT/gpu_generation.txt
bench() {   # name, timeout (s), then discovery.py's arguments
  local name=$1 limit=$2; shift 2
  timeout -s INT $limit python3 bench/discovery.py --candidates $C --seeds 5 --workers 15 \
      --reference-trials 0 --anneal-steps 5000 --out runs/bench/$name "$@" > $OUT/$name.txt 2>&1
  tail -n 14 $OUT/$name.txt
}
bench held_teacher ${HELD_S:-110} --model $M/sigma5_window.pt -m 36.87 --nfe 20 --solver dpm3-singlestep
bench held_student ${HELD_S:-110} --model $(student window) -m 36.87 --nfe 2 --solver ddim
bench s13_teacher ${S13_S:-80} --model $M/twist100_transfer.pt -m 22.62 --nfe 20 --solver dpm3-singlestep
bench s13_student ${S13_S:-80} --model $(student transfer) -m 22.62 --nfe 2 --solver ddim
tar cJf $OUT/discovery.tar.xz -C runs/bench --exclude='seed*' .
ls -la $OUT
