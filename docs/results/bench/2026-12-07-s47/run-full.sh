#!/usr/bin/env bash
set -e
cd /work/main
export PATH=$PWD/.venv/bin:$PATH
r=$1
mkdir -p "runs/s47/$r"
vmstat 10 > "runs/s47/$r/vmstat.txt" & v=$!
unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
  --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
  --image-budget 150 --out "runs/s47/$r" > "runs/s47/$r/stdout.txt" 2>&1
kill $v
