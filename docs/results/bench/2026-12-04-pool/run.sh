#!/bin/bash
# docs/BENCHMARKS.md "One thread pool": a pool per session (spinning off) against one shared pool, repository
# root, idle machine, bundles from `unifork-rt bench --preset paper ... --work runs/bench3`.
#   step.txt:  caption decode step (step.py), 5 interleaved rounds x int4 / int8 / fp32 ort bundles
#   draw.txt:  `unifork-rt draw` of the paper int4 / int8 bundles, --n 1 and --n 4, 3 interleaved rounds
set -e
D=docs/results/bench/2026-12-04-pool
PY=${PYTHON:-python}
B=${BUNDLES:-runs/bench3/paper}
lscpu | grep "Model name" | tee $D/step.txt
for r in 1 2 3 4 5; do for p in int4 int8 fp32; do for pool in session shared; do
  echo "round $r $p $($PY $D/step.py $B/bundle-$p-ort $pool 30)"
done; done; done | tee -a $D/step.txt
lscpu | grep "Model name" | tee $D/draw.txt
for r in 1 2 3; do for p in int4 int8; do for n in 1 4; do for pool in session shared; do
  t0=$(date +%s.%N)
  UNIFORK_RT_ORT_POOL=$pool ${UNIFORK:-unifork-rt} draw "a red circle" --model $B/bundle-$p-ort --n $n --seed 1 \
      --out /tmp/pool-draw-$pool.png --overwrite --quiet >/dev/null
  echo "round $r $p --n $n $pool $(echo "$(date +%s.%N) - $t0" | bc) s"
done; done; done; done | tee -a $D/draw.txt
