#!/bin/bash
# Session 46: the AVX2 tiles in one pass over each line (docs/KERNELS.md "One pass over each line on AVX2").
# Run from the repository root on an idle machine with CPUID faulting (tests/avx2only); OLD is a checkout of the
# commit before (a4a556f), e.g. `git worktree add /tmp/old a4a556f`. Writes into this folder:
#   gemm-avx2.txt:  the packed GEMM alone (docs/results/bench/2026-12-03-streams/kernel.c, 160 paper MLP matrices,
#                   block 128), AVX2 tiles forced (UNIFORK_RT_ISA=avx2) and the VNNI ones beside, 1/2/4/8 rows,
#                   old and new interleaved, 3 rounds
#   step-prefill-avx2.txt: decode step and 297-row prefill of the int4 / int8 bundles under the AVX2 CPUID mask,
#                   old and new in alternate processes, 3 rounds
#   bitcmp.txt:     the same bits, old against new, both ISAs
#   draw-ab-avx2.txt: guided draws --n 1 and --n 4 of the int4 / int8 bundles under the mask, 2 rounds (~25 min)
#   step-prefill-fp32.txt: the fp32 bundle's decode step and prefill, natively and under the mask, 3 rounds
#   (chain-fp32-prefetch.txt came from libraries built by hand from a copy of the kernels with the prefetch distance
#   as a macro; its header says how)
# Needs the virtual environment on PATH (python with onnxruntime and this package) and the paper bundles in $BUNDLES.
set -e
OLD=${OLD:-/tmp/old}
D=docs/results/bench/2026-12-07-s46
T=$(mktemp -d)
sed 's/block = bits == 4 ? 128 : 32/block = 128/' docs/results/bench/2026-12-03-streams/kernel.c > $T/kernel.c
gcc -O3 -std=gnu11 -I $OLD/unifork_rt/runtime/kernels $T/kernel.c $OLD/unifork_rt/runtime/kernels/qmatmul_kernels.c -o $T/old -lpthread -lm
gcc -O3 -std=gnu11 -I unifork_rt/runtime/kernels $T/kernel.c unifork_rt/runtime/kernels/qmatmul_kernels.c -o $T/new -lpthread -lm
{ lscpu | grep "Model name"; for r in 1 2 3; do for bits in 4 8; do for m in 1 2 4 8; do
  echo "round $r vnni    $($T/new $m 2 $bits)"
  echo "round $r avx2 old $(UNIFORK_RT_ISA=avx2 $T/old $m 2 $bits)"
  echo "round $r avx2 new $(UNIFORK_RT_ISA=avx2 $T/new $m 2 $bits)"; done; done; done; } | tee $D/gemm-avx2.txt
lib=${XDG_CACHE_HOME:-$HOME/.cache}/unifork-rt/avx2only.so
mkdir -p "$(dirname "$lib")"
grep -qw cpuid_fault /proc/cpuinfo || { echo "no CPUID faulting here: the AVX2 mask cannot apply" >&2; exit 2; }
cc -O2 -shared -fPIC -o $lib tests/avx2only/avx2only.c -ldl
MASK="env LD_PRELOAD=$lib GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,-AVX512CD,-AVX512BW,-AVX512DQ,-AVX512VL,-AVX512_VNNI,-AVX_VNNI"
$MASK python tests/avx2only/probe.py  # fails if AVX-512 is still visible
B=${BUNDLES:-runs/bench-avx2/paper}
{ for r in 1 2 3; do for p in int4 int8; do for pp in $OLD $PWD; do
  echo "round $r $p $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp $MASK python $D/step_prefill.py $B/bundle-$p-ort 6 | tail -1)"
done; done; done; } | tee $D/step-prefill-avx2.txt
# the same bits: bitcmp.c against the old and the new library, both ISAs (bitcmp.txt)
for v in old new; do src=$([ $v = old ] && echo $OLD || echo .); gcc -O3 -std=gnu11 -I $src/unifork_rt/runtime/kernels $D/bitcmp.c $src/unifork_rt/runtime/kernels/qmatmul_kernels.c -o $T/b$v -lm
  UNIFORK_RT_ISA=avx2 $T/b$v > $T/$v.avx2; $T/b$v > $T/$v.vnni; done
{ cmp $T/old.avx2 $T/new.avx2 && echo "AVX2 tiles: old and new the same bits ($(stat -c %s $T/new.avx2) bytes)" || echo "AVX2 tiles DIFFER"
  cmp $T/old.vnni $T/new.vnni && echo "VNNI tiles: old and new the same bits" || echo "VNNI tiles DIFFER"; } | tee $D/bitcmp.txt
{ for r in 1 2; do for p in int4 int8; do for pp in $OLD $PWD; do
  echo "r$r $p $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp $MASK python $D/draw_time.py $B/bundle-$p-ort 2 | tail -1)"
done; done; done; } | tee $D/draw-ab-avx2.txt
{ for r in 1 2 3; do for mode in native avx2; do for pp in $OLD $PWD; do pre=$([ $mode = avx2 ] && echo $MASK || true)
  echo "round $r $mode $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp $pre python $D/step_prefill.py $B/bundle-fp32-ort 4 | tail -1)"
done; done; done; } | tee $D/step-prefill-fp32.txt
rm -rf $T
