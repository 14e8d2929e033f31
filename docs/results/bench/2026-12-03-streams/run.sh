#!/bin/bash
# Reproduces the figures of docs/KERNELS.md "Several streams" (run from the repository root, on an idle machine).
#   streams.txt: read bandwidth, 1 or 2 threads, 1-8 streams per thread
#   kernel.txt:  the packed GEMM alone, old (62c0116) against new, int4 and int8, 1/2/4/8 rows, 3 interleaved rounds
#   chain.txt:   the ONNX Runtime op on an 80 x 2 MatMulNBits chain (257 MB at int4), the library of 62c0116 against this one
set -e
D=docs/results/bench/2026-12-03-streams
T=$(mktemp -d)
git show 62c0116:unifork_rt/runtime/kernels/qmatmul_kernels.c > $T/old.c
cp unifork_rt/runtime/kernels/qmatmul_kernels.h $T/
gcc -O3 -std=gnu11 -I $T $D/kernel.c $T/old.c -o $T/old -lpthread -lm
gcc -O3 -std=gnu11 -I unifork_rt/runtime/kernels $D/kernel.c unifork_rt/runtime/kernels/qmatmul_kernels.c -o $T/new -lpthread -lm
gcc -O2 $D/streams.c -o $T/streams -lpthread
{ lscpu | grep "Model name"; for t in 1 2; do for s in 1 2 4 8; do $T/streams 512 $t $s; done; done; } | tee $D/streams.txt
{ lscpu | grep "Model name"; for r in 1 2 3; do for bits in 4 8; do for m in 1 2 4 8; do
  echo "round $r old $($T/old $m 2 $bits)"; echo "round $r new $($T/new $m 2 $bits)"; done; done; done; } | tee $D/kernel.txt
OLDLIB=$(cd $T && git -C "$OLDPWD" archive 62c0116 unifork_rt | tar x && PYTHONPATH=$T python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
NEWLIB=$(python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
{ for r in 1 2; do for bits in 4 8; do echo "round $r old $(python $D/chain.py $OLDLIB $bits | tr '\n' ' ')"; echo "round $r new $(python $D/chain.py $NEWLIB $bits | tr '\n' ' ')"; done; done; } | tee $D/chain.txt
# the AVX2 tiles (UNIFORK_RT_ISA=avx2 on this AVX-512 CPU): kernel-avx2.txt, chain-avx2.txt
{ for r in 1 2 3; do for bits in 4 8; do for m in 1 2 4 8; do
  echo "round $r old $(UNIFORK_RT_ISA=avx2 $T/old $m 2 $bits)"; echo "round $r new $(UNIFORK_RT_ISA=avx2 $T/new $m 2 $bits)"; done; done; done; } | tee $D/kernel-avx2.txt
{ for r in 1 2; do for bits in 4 8; do echo "round $r old $(UNIFORK_RT_ISA=avx2 python $D/chain.py $OLDLIB $bits | tr '\n' ' ')"; echo "round $r new $(UNIFORK_RT_ISA=avx2 python $D/chain.py $NEWLIB $bits | tr '\n' ' ')"; done; done; } | sed 's/spin=0 //g; s/ (per 80x2 chain)//g' | tee $D/chain-avx2.txt
