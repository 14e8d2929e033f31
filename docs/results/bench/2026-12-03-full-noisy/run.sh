# A full run after the sampler change (2026-12-03 09:53-10:35) on a host with CPU steal (vmstat.txt: `vmstat 10`
# beside it; steal column median 5%, p90 27%). Not used for the README table: see docs/BENCHMARKS.md.
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs portable,ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
    --image-budget 150 --out runs/s25/full
