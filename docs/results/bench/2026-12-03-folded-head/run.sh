#!/bin/bash
# The depth head folded (2026-12-03): the draw bench on re-exported paper int4 / int8 ort bundles, then
# rq_head before/after. old-*-ort: hard-link copies of runs/bench3/paper/bundle-*-ort taken before the re-export.
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
cp -al runs/bench3/paper/bundle-int4-ort runs/fold/old-int4-ort   # before: exported by 4b6e7d5
cp -al runs/bench3/paper/bundle-int8-ort runs/fold/old-int8-ort
unifork-rt bench --preset paper --task draw --backends ort-cpu:int4,ort-cpu:int8 --graphs ort --peers none \
    --work runs/bench3 --out runs/fold/bench-draw          # re-exports both (the manifest says unfolded)
python docs/results/bench/2026-12-03-folded-head/ab.py runs/fold/old-int4-ort runs/bench3/paper/bundle-int4-ort runs/bench3/paper/model
python docs/results/bench/2026-12-03-folded-head/ab.py runs/fold/old-int8-ort runs/bench3/paper/bundle-int8-ort runs/bench3/paper/model
for b in runs/fold/old-int4-ort runs/bench3/paper/bundle-int4-ort runs/bench3/paper/bundle-int4-ort runs/fold/old-int4-ort; do
  /usr/bin/time -f "$b: %e s, max RSS %M KB" unifork-rt draw "a red circle" --model $b -o /tmp/x.png --seed 0 --overwrite
done   # cli.txt
# the met batching targets, re-measured after the fold (fp32-int8-dynamic/, then int8-dynamic-rerun/)
unifork-rt bench --preset paper --task draw --backends ort-cpu:fp32,ort-cpu:int8-dynamic --graphs ort --peers none \
    --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out runs/fold/bench-draw2
unifork-rt bench --preset paper --task draw --backends ort-cpu:int8-dynamic --graphs ort --peers none \
    --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out runs/fold/bench-draw3
unifork-rt bench --preset paper --task draw --backends ort-cpu:int8-dynamic --graphs ort --peers none \
    --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out runs/fold/bench-draw4   # int8-dynamic-rerun2/
unifork-rt bench --preset paper --task draw --backends ort-cpu:int8-dynamic --graphs ort --peers none \
    --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out runs/fold/bench-draw5   # int8-dynamic-rerun3/
