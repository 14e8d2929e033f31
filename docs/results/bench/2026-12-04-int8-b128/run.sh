#!/bin/bash
# docs/BENCHMARKS.md "int8 in blocks of 128": repository root, idle machine, the paper int8 ort bundles in blocks of
# 128 (bundle-int8-ort) and 32 (bundle-int8-b32-ort) from `unifork-rt bench --preset paper --backends
# ort-cpu:int8,ort-cpu:int8-b32 --graphs ort --work runs/bench3`.
#   chain.txt: the 80 x 2 MatMulNBits chain (docs/results/bench/2026-12-03-streams/chain.py), int8, blocks 32 / 128
#   step.txt:  caption decode step (docs/results/bench/2026-12-04-pool/step.py, one thread pool), 5 rounds
#   draw.txt:  `unifork-rt draw`, --n 1 and --n 4, 3 rounds
#   int8_error.txt: python int8_error.py
#   chain-avx2.txt (by hand, after the rest): the chain under the AVX2 CPUID mask, `bash tests/avx2only/run.sh
#                   python docs/results/bench/2026-12-03-streams/chain.py LIB 8 BLOCK`, rounds 1-4 block 32 first,
#                   rounds 5-6 block 128 first
set -e
D=docs/results/bench/2026-12-04-int8-b128
PY=${PYTHON:-python}
B=${BUNDLES:-runs/bench3/paper}
LIB=$($PY -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
lscpu | grep "Model name" | tee $D/chain.txt
for r in 1 2 3; do for b in 32 128; do
  echo "round $r int8 block $b: $($PY docs/results/bench/2026-12-03-streams/chain.py $LIB 8 $b | sed 's/spin=0 //; s/ (per 80x2 chain)//' | tr '\n' ' ')"
done; done | tee -a $D/chain.txt
lscpu | grep "Model name" | tee $D/step.txt
for r in 1 2 3 4 5; do for b in int8-b32 int8; do
  echo "round $r $b $($PY docs/results/bench/2026-12-04-pool/step.py $B/bundle-$b-ort shared 30)"
done; done | tee -a $D/step.txt
lscpu | grep "Model name" | tee $D/draw.txt
for r in 1 2 3; do for n in 1 4; do for b in int8-b32 int8; do
  t0=$(date +%s.%N)
  ${UNIFORK:-unifork-rt} draw "a red circle" --model $B/bundle-$b-ort --n $n --seed 1 --out /tmp/int8-draw-$b.png \
      --overwrite --quiet >/dev/null
  echo "round $r $b --n $n $(echo "$(date +%s.%N) - $t0" | bc) s"
done; done; done | tee -a $D/draw.txt
$PY $D/int8_error.py | tee $D/int8_error.txt
