#!/bin/bash
# Session 49: the AVX2 integer tiles' bits and in-cache speed, the library before (bdcc59c) against HEAD's.
# Run from the repository root; writes to stdout (bits-hot.txt).
set -e
D=docs/results/bench/2026-12-07-s49; T=$(mktemp -d)
for v in old new; do
  mkdir -p $T/$v
  if [ $v = old ]; then for f in $(git ls-tree --name-only bdcc59c unifork_rt/runtime/kernels/); do git show bdcc59c:$f > $T/$v/$(basename $f); done
  else cp unifork_rt/runtime/kernels/*.[ch] $T/$v/; fi
  gcc -O3 -std=gnu11 -I$T/$v -o $T/$v/hot $D/hot.c $T/$v/{qmatmul,fmatmul,attn,norm,sample}_kernels.c -lm -lpthread
done
gcc -O1 -o $T/freq $D/freq.c && $T/freq
echo "bits: 4 and 8 bits, blocks 16 / 32 / 128, K = 7 blocks, N = 200, rows 1-33 (UNIFORK_RT_ISA=avx2)"
same=0; differ=0
for bits in 4 8; do for blk in 16 32 128; do for m in 1 2 3 4 5 7 8 9 12 15 16 17 24 33; do
  a=$(UNIFORK_RT_ISA=avx2 BLK=$blk $T/old/hot $m $bits $((blk*7)) 200 | cut -d' ' -f2)
  b=$(UNIFORK_RT_ISA=avx2 BLK=$blk $T/new/hot $m $bits $((blk*7)) 200 | cut -d' ' -f2)
  if [ "$a" = "$b" ]; then same=$((same+1)); else differ=$((differ+1)); echo "DIFFER bits $bits block $blk rows $m"; fi
done; done; done
echo "equal hashes: $same, different: $differ"
echo "in cache: one 896 x 256 matrix, one thread, block 128, best of 7 x 2000 calls"
for r in 1 2; do for bits in 4 8; do for m in 1 2 4 8 16; do for v in old new; do
  echo "r$r $v $(UNIFORK_RT_ISA=avx2 BLK=128 $T/$v/hot $m $bits 896 256 | sed 's/hash [0-9a-f]* //')"
done; done; done; done
rm -rf $T
