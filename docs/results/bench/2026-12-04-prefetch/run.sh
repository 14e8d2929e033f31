#!/bin/sh
# The kernel library before (the parent commit's sources) against the tree's, interleaved in one process.
# Run from the repository root with the bench bundles of `unifork-rt bench --preset paper --work runs/bench3`.
set -e
d=docs/results/bench/2026-12-04-prefetch
mkdir -p /tmp/oldsrc
for f in qmatmul_kernels.h qmatmul_kernels.c fmatmul_kernels.c attn_kernels.c qmatmul_op.c; do
  git show d32c5ee:unifork_rt/runtime/kernels/$f > /tmp/oldsrc/$f
done
cc -O3 -std=gnu11 -fPIC -shared -o /tmp/oldsrc/libold.so /tmp/oldsrc/*.c -lm
for p in int4 int8; do
  (echo "# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores; old = d32c5ee's kernels"
   .venv/bin/python $d/ab_lib.py runs/bench3/paper/bundle-$p-ort /tmp/oldsrc/libold.so 5) > $d/ab-$p.txt 2>&1
done
