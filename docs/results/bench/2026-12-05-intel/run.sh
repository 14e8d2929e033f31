#!/usr/bin/env bash
# Session 36's three full runs on the Intel host (full3 23:07 with full2's code; full1 21:49: the kernels of 0e05be1 with this session's interleave;
# full2 22:21: with the 4-bit 1-2-row prefetch and the fp32 floor at our tile's rate). The work folder was built by
# a --quick run of the same command first (bundles 258 s, llama.cpp ~6 min). vmstat 10 ran beside each.
set -e
cd "$(dirname "$0")/../../../.."
for r in full1 full2 full3; do
  mkdir -p "runs/s36/$r"
  vmstat 10 > "runs/s36/$r/vmstat.txt" & v=$!
  unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
    --image-budget 150 --out "runs/s36/$r"
  kill $v
done
