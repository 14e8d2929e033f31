#!/bin/bash
# Reproduces the chain figures of docs/BENCHMARKS.md "A float kernel for fp32" (repository root, idle machine).
#   chain.txt:      fp32 paper-layer chain (12 x qkv/o/gate+up/down, 716 MB) at 1/2/8/297 rows, then 2 lm_heads
#                   (1.09 GB) at 1/2/8 rows: ONNX Runtime's TransposeMatMul against ours, 2 interleaved rounds
#   chain-avx2.txt: the same under the AVX2 CPUID mask (tests/avx2only/run.sh)
#   chain-int.txt:  the 80 x 2 MatMulNBits chain (docs/results/bench/2026-12-03-streams/chain.py), the library of the
#                   commit before (4 KB pages) against this one (2 MB pages), int4 and int8, 3 interleaved rounds
#   hugepages.txt:  gemv.c alone, 4 KB against 2 MB pages (HUGE=1), 8 interleaved runs (by hand, /tmp harness)
#   decode-ab.txt:  docs/results/bench/2026-12-03-qmatmul/ab_decode.py on runs/bench3/paper/bundle-fp32-ort
#   vs-llamacpp.txt: vs_llamacpp.sh (llama-bench and step.py in turn)
#   full/:          the full bench run (command in docs/BENCHMARKS.md)
set -e
D=docs/results/bench/2026-12-04-float
PY=${PYTHON:-python}
NEWLIB=$($PY -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
T=$(mktemp -d)
git archive 6b4bc39~1 unifork_rt/runtime/kernels | tar x -C $T
gcc -O3 -std=gnu11 -fPIC -shared -o $T/old.so $T/unifork_rt/runtime/kernels/qmatmul_kernels.c $T/unifork_rt/runtime/kernels/qmatmul_op.c -lm
chain() {  # $1: a prefix command (or nothing)
  lscpu | grep "Model name"
  for r in 1 2; do
    echo "round $r layers onnxruntime $($1 $PY $D/chain.py 12 TransposeMatMul '' 1,2,8,297 | awk '/ m=/{printf "%s %s  ", $2, $3}')"
    echo "round $r layers ours        $($1 $PY $D/chain.py 12 TransposeMatMul $NEWLIB 1,2,8,297 | awk '/ m=/{printf "%s %s  ", $2, $3}')"
    echo "round $r lm_head onnxruntime $($1 $PY $D/chain.py 2 TransposeMatMul '' 1,2,8 lm | awk '/ m=/{printf "%s %s  ", $2, $3}')"
    echo "round $r lm_head ours        $($1 $PY $D/chain.py 2 TransposeMatMul $NEWLIB 1,2,8 lm | awk '/ m=/{printf "%s %s  ", $2, $3}')"
  done
}
chain "" | tee $D/chain.txt
chain "bash tests/avx2only/run.sh" | tee $D/chain-avx2.txt
{ for r in 1 2 3; do for bits in 4 8; do
  echo "round $r 4k-pages $($PY docs/results/bench/2026-12-03-streams/chain.py $T/old.so $bits | sed 's/spin=0 //; s/ (per 80x2 chain)//' | tr '\n' ' ')"
  echo "round $r 2M-pages $($PY docs/results/bench/2026-12-03-streams/chain.py $NEWLIB $bits | sed 's/spin=0 //; s/ (per 80x2 chain)//' | tr '\n' ' ')"
done; done; } | tee $D/chain-int.txt
