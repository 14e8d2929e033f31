# The sampler change (1657f39): before, one int8-dynamic draw run on the old sampler (f5abfd1; quiet host, steal 0-3%)
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
unifork-rt bench --preset paper --task draw --backends ort-cpu:int8-dynamic --graphs ort --peers none \
    --work runs/bench3 --repeats 3 --step-repeats 10 --image-budget 150 --out runs/s25/draw-int8dyn   # before-int8-dynamic/
# per part of one cell at B = 2 (--n 1) and B = 8 (--n 4), through the runtime's backend; old and new sampler interleaved
python docs/results/bench/2026-12-03-sampler/rows.py runs/bench3/paper/bundle-int8-dynamic-ort   # rows.txt
python docs/results/bench/2026-12-03-sampler/rows.py runs/bench3/paper/bundle-int4-ort
# after: all four precisions in one run (host steal 9% median, up to 33%: vmstat 10 beside it)
unifork-rt bench --preset paper --task draw --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs ort --peers none --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --no-profile \
    --out runs/s25/draw-all                                                                           # bench.md, bench.json
