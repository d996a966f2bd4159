# Session 2026-11-25b, GPU call 2: particle baseline round 2 (A2: call 1's variant A continued at
# batch 256, lr 5e-4; D: fresh, hidden 128, 6 layers, cutoff 1.35 d_NN, batch 128), sampled on the
# GPU as in call 1; meanwhile the held-out discovery with call 1's GB models
# (placed at gbsearch/data/models/sigma5_*.pt in the carried tree).
source scripts/device_env.sh
mkdir -p $OUT/logs
part() { # variant phase max_s [env...]
  v=$1 ph=$2 s=$3; shift 3
  env OMP_NUM_THREADS=1 "$@" python scripts/train_particle_device.py $ph /tmp/p$v $s > $OUT/logs/p${v}_$ph.log 2>&1
  OMP_NUM_THREADS=1 python bench/crystal_experiment.py --phases $ph --skip-voxel --positions-only --device cuda \
    --weights-dir /tmp/p$v --out-dir /tmp/p$v/bench --fractions 0,0.05,0.1,0.2,0.3,0.5,1.0 >> $OUT/logs/p${v}_$ph.log 2>&1
}
for ph in sc bcc fcc; do
  part A2 $ph ${P_S:-400} P_INIT=.devcarry/pA/particle_$ph.pt P_BATCH=256 P_LR=5e-4 &
  part D $ph ${P_S:-400} P_LAYERS=6 P_BATCH=128 &
done
timeout 480 python bench/discovery.py --model gbsearch/data/models/sigma5_window.pt --candidates 16 --seeds 5 --workers 8 --reference-trials 8 --out /tmp/disc > $OUT/logs/disc.txt 2>&1
wait
tail -n 3 $OUT/logs/p*.log; tail -n 25 $OUT/logs/disc.txt
mkdir -p /tmp/gbeval && cp /tmp/disc/discovery.json /tmp/disc/discovery.png /tmp/disc/diffusion_candidates.csv /tmp/gbeval/
tar cf $OUT/gbeval.tar -C /tmp gbeval
tar cf $OUT/particle.tar -C /tmp pA2 pD
tar cf $OUT/logs.tar -C $OUT logs && rm -r $OUT/logs
du -sh $OUT/*
