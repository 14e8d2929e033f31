#!/usr/bin/env bash
# The full issue-16 run of docs/BENCHMARKS.md ("Running it"), as sessions 39-48 ran it, with `vmstat 10` beside it.
#   docs/results/bench/run-full.sh OUT            natively; work folder runs/bench3
#   docs/results/bench/run-full.sh OUT --avx2     CPUID masked to AVX2 (tests/avx2only/run.sh: ONNX Runtime,
#       onnxruntime-genai, our kernels and the compiler that builds llama.cpp with GGML_NATIVE see no AVX-512, VNNI or
#       AMX); work folder runs/bench-avx2 (its bundles and the peers' models may be links to runs/bench3's: they do not
#       depend on the CPU; llama.cpp's build must be its own, made under the mask)
# OUT (e.g. runs/s49/full1) gets bench.{json,md,png}, stdout.txt (the bench's log) and vmstat.txt.
# Run it on an idle machine: llama.cpp's threads spin, and its figures collapse under any other load.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 OUT [--avx2]" >&2; exit 2; }
out=$1 mask=() work=runs/bench3
if [ "${2:-}" = --avx2 ]; then mask=(env PYTHON=python bash tests/avx2only/run.sh) work=runs/bench-avx2
elif [ $# -ge 2 ]; then echo "unknown option $2 (only --avx2)" >&2; exit 2; fi
cd "$(dirname "$0")/../../.."
export PATH=$PWD/.venv/bin:$PATH
mkdir -p "$out"
vmstat 10 > "$out/vmstat.txt" & v=$!
trap 'kill $v' EXIT
"${mask[@]}" unifork-rt bench --preset paper --task all \
  --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
  --graphs ort --peers genai,llamacpp --peer-threads 2 --work "$work" --repeats 2 --step-repeats 10 \
  --image-budget 150 --out "$out" > "$out/stdout.txt" 2>&1
