# Session 2026-11-25b, GPU call 1: resume both GB models (as in call 4) and train two variants of
# the particle baseline per phase (A: hidden 128, 4 layers, cutoff 1.35 d_NN; B: hidden 128,
# 5 layers, cutoff 1.7 d_NN), then sample every particle row of bench/crystal_experiment.py on
# the GPU (positions only; PTM metrics are computed back here, OVITO is not on that machine).
source scripts/device_env.sh
export GB_MACHINE="one NVIDIA H100 (lent device), shared by 2 GB and 6 particle trainings" GB_BATCH=8 GB_FORMAT=contiguous
nvidia-smi --query-gpu=name --format=csv,noheader
mkdir -p $OUT/logs
for m in full window; do mkdir -p /tmp/train/$m; cp gbsearch/data/models/sigma5_$m.pt /tmp/train/$m/last.pt; done
python scripts/train_gb_model_device.py full /tmp/ref/campaign.db /tmp/train/full ${GB_S:-470} > $OUT/logs/full.log 2>&1 &
python scripts/train_gb_model_device.py window /tmp/ref/campaign.db /tmp/train/window ${GB_S:-470} 0.5 0.1 > $OUT/logs/window.log 2>&1 &
part() { # variant phase layers cutoff
  OMP_NUM_THREADS=1 P_LAYERS=$3 P_CUTOFF=$4 python scripts/train_particle_device.py $2 /tmp/p$1 ${P_S:-400} > $OUT/logs/p$1_$2.log 2>&1
  OMP_NUM_THREADS=1 python bench/crystal_experiment.py --phases $2 --skip-voxel --positions-only --device cuda \
    --weights-dir /tmp/p$1 --out-dir /tmp/p$1/bench --fractions 0,0.05,0.1,0.2,0.3,0.5,1.0 >> $OUT/logs/p$1_$2.log 2>&1
}
for ph in sc bcc fcc; do part A $ph 4 1.35 & part B $ph 5 1.7 & done
wait
tail -n 4 $OUT/logs/*.log
cp /tmp/train/full/model.pt $OUT/full.pt; cp /tmp/train/window/model.pt $OUT/window.pt
tar cf $OUT/particle.tar -C /tmp pA pB
tar cf $OUT/logs.tar -C $OUT logs && rm -r $OUT/logs
du -sh $OUT/*
