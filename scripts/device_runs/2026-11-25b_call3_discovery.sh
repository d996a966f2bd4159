# Session 2026-11-25b, GPU call 3: held-out discovery with the shipped window model, 5 seeds × 48
# candidates (call 2 showed generation 1.1 s and relaxation 1.5 s per candidate on this machine).
source scripts/device_env.sh
python bench/discovery.py --model gbsearch/data/models/sigma5_window.pt --candidates ${CANDS:-48} --seeds 5 \
  --workers 14 --reference-trials 4 --out /tmp/disc > $OUT/disc.txt 2>&1
grep -v "relaxing\|generating" $OUT/disc.txt | tail -n 20
mkdir -p /tmp/gbeval && cp /tmp/disc/discovery.json /tmp/disc/discovery.png /tmp/disc/diffusion_candidates.csv /tmp/gbeval/
tar cf $OUT/gbeval.tar -C /tmp gbeval
