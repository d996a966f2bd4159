source scripts/device_env.sh
export GBSEARCH_COMMIT=a92898b GB_MACHINE="one NVIDIA H100 (lent device), the full and window trainings sharing it" GB_BATCH=8 GB_FORMAT=contiguous
ls -la /tmp/train/full /tmp/train/window || exit 3
mkdir -p /tmp/m3 && cp /tmp/train/full/model.pt /tmp/m3/full.pt && cp /tmp/train/window/model.pt /tmp/m3/window.pt
python scripts/train_gb_model_device.py full /tmp/ref/campaign.db /tmp/train/full 280 > $OUT/full.log 2>&1 &
python scripts/train_gb_model_device.py window /tmp/ref/campaign.db /tmp/train/window 280 0.5 0.1 > $OUT/window.log 2>&1 &
ev() { # model tag
python bench/bench_gb_model.py --model /tmp/$1/full.pt -n 256 --reference /tmp/ref --relax 256 --workers 14 --out /tmp/e_$1 > $OUT/eval_full_$1.txt 2>&1
cp /tmp/e_$1/metrics.json $OUT/eval_full_$1.json
python bench/discovery.py --model /tmp/$1/window.pt --candidates 16 --seeds 5 --workers 14 --reference-trials ${2:-14} --out /tmp/d_$1 > $OUT/disc_$1.txt 2>&1
mkdir -p $OUT/disc_$1; cp /tmp/d_$1/discovery.json /tmp/d_$1/discovery.png /tmp/d_$1/diffusion_candidates.csv $OUT/disc_$1/
tail -8 $OUT/disc_$1.txt | grep -v relaxing; tail -2 $OUT/eval_full_$1.txt
}
ev m3
wait
tail -n 3 $OUT/full.log $OUT/window.log
mkdir -p /tmp/m4 && cp /tmp/train/full/model.pt /tmp/m4/full.pt && cp /tmp/train/window/model.pt /tmp/m4/window.pt
cp /tmp/m4/*.pt $OUT/
ev m4 4
