#!/bin/bash
# Session 51: fp32 GEMM timings of two kernel source trees, old first in odd rounds and new first in even ones.
#   run-gemm-ab.sh OLD_KERNELS NEW_KERNELS ROUNDS "M ..."  [hot]
# Builds session 41's fdram.c (12 paper layers, 2 threads) or, with `hot`, this folder's fhot.c (one 896 x 128
# matrix in cache, one thread) against each tree's kernel sources, as the runtime builds its library (gcc -O3
# -std=gnu11, the kernels' own target attributes), in a temporary folder; prints one line a timing.
set -euo pipefail
old=$1 new=$2 rounds=$3 rows=$4 what=${5:-dram}
here=$(cd "$(dirname "$0")" && pwd)
src=$([ "$what" = hot ] && echo "$here/fhot.c" || echo "$here/../2026-12-06-s41/fdram.c")
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
for v in old new; do
  d=$([ $v = old ] && echo "$old" || echo "$new"); mkdir "$tmp/$v"; cp "$d"/*.c "$d"/*.h "$src" "$tmp/$v/"
  (cd "$tmp/$v" && gcc -O3 -std=gnu11 -I. -o bin "$(basename "$src")" qmatmul_kernels.c fmatmul_kernels.c \
     attn_kernels.c norm_kernels.c sample_kernels.c -lm -lpthread)
done
for r in $(seq 1 "$rounds"); do
  order=$([ $((r % 2)) = 1 ] && echo "old new" || echo "new old")
  for m in $rows; do for v in $order; do
    if [ "$what" = hot ]; then out=$("$tmp/$v/bin" "$m" 896 128 400); else out=$("$tmp/$v/bin" "$m" 3 | head -1); fi
    echo "r$r $v $out"
  done; done
done
