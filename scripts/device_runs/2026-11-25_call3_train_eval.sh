set -x
source scripts/device_env.sh
export GBSEARCH_COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown) GB_MACHINE="one NVIDIA H100 (lent device), the full and window trainings sharing it" GB_BATCH=8 GB_FORMAT=contiguous
nvidia-smi --query-gpu=name --format=csv
for m in full window; do mkdir -p /tmp/train/$m; cp gbsearch/data/models/sigma5_$m.pt /tmp/train/$m/last.pt; done
python scripts/train_gb_model_device.py full /tmp/ref/campaign.db /tmp/train/full ${TRAIN_S:-420} > $OUT/full.log 2>&1 &
python scripts/train_gb_model_device.py window /tmp/ref/campaign.db /tmp/train/window ${TRAIN_S:-420} 0.5 0.1 > $OUT/window.log 2>&1 &
python bench/bench_gb_model.py --model gbsearch/data/models/sigma5_full.pt -n 256 --reference /tmp/ref --relax 256 --workers 14 --out $OUT/eval_full > $OUT/eval_full.txt 2>&1
tail -20 $OUT/eval_full.txt
python bench/discovery.py --model gbsearch/data/models/sigma5_window.pt --candidates 16 --seeds 5 --workers 14 --reference-trials 14 --out $OUT/disc > $OUT/disc.txt 2>&1
tail -30 $OUT/disc.txt
wait
tail -3 $OUT/full.log $OUT/window.log
cp /tmp/train/full/model.pt $OUT/full.pt; cp /tmp/train/window/model.pt $OUT/window.pt
du -sh $OUT/*
