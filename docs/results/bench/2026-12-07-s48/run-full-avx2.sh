#!/usr/bin/env bash
# The command of docs/BENCHMARKS.md, run with CPUID masked to AVX2 (tests/avx2only/run.sh): ONNX Runtime,
# onnxruntime-genai, our kernels and the compiler that builds llama.cpp (GGML_NATIVE) see no AVX-512, VNNI or AMX.
# Work folder runs/bench-avx2: the bundles, the peers' models and GGUFs are links to runs/bench3 (CPU-independent
# files); llama.cpp's build is its own (built under the mask).
set -e
cd /work/main
export PATH=$PWD/.venv/bin:$PATH
r=$1
mkdir -p "runs/s48/$r"
vmstat 10 > "runs/s48/$r/vmstat.txt" & v=$!
PYTHON=python bash tests/avx2only/run.sh unifork-rt bench --preset paper --task all \
  --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
  --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench-avx2 --repeats 2 --step-repeats 10 \
  --image-budget 150 --out "runs/s48/$r" > "runs/s48/$r/stdout.txt" 2>&1
kill $v
