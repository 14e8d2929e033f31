#!/bin/bash
# Our caption decode step against llama.cpp's, interleaved: ROUNDS rounds of [llama-bench (-p 0 -n 32 -d 297,
# 2 threads, 2 runs), then our step (step.py, 30 steps at position 300)] per precision pairing.
#   bash docs/results/bench/2026-12-04-float/vs_llamacpp.sh runs/bench3 3 > docs/results/bench/2026-12-04-float/vs-llamacpp.txt
W=${1:-runs/bench3}; R=${2:-3}; D=docs/results/bench/2026-12-04-float; PY=${PYTHON:-python}
LB=$W/llamacpp/0.3.36/build/bin/llama-bench; G=$W/peer-llamacpp/0.3.36
lscpu | grep "Model name"
for r in $(seq 1 $R); do
  for pair in "f32 fp32" "q8_0 int8" "q4_0 int4"; do
    set -- $pair
    tg=$($LB -m $G/peer-qwen2-$1.gguf -p 0 -n 32 -d 297 -t 2 -r 2 -o csv 2>/dev/null | tail -1 | awk -F, '{gsub(/"/,"",$(NF-1)); printf "%.1f", 1000/$(NF-1)}')
    echo "round $r llama.cpp $1 ms/token $tg | ours $2 $($PY $D/step.py $W/paper/bundle-$2-ort 30)"
  done
done
