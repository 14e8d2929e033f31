# A second full run, `--graphs ort` only, 2026-12-03 10:43-11:02 (vmstat.txt: steal median 1%, p90 13%, the
# stretches of steal during our fp32 / int8 units; ~0 during the peers). See docs/BENCHMARKS.md for why it
# does not replace the README table.
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
    --image-budget 150 --out runs/s25/full2
