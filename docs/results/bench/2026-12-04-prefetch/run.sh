#!/bin/sh
# docs/BENCHMARKS.md "4- and 8-row tiles that prefetch, ...": repository root, idle machine, the paper ort bundles
# of `unifork-rt bench --preset paper --graphs ort --work runs/bench3`.
#   ab-int4.txt, ab-int8.txt: d32c5ee's kernel library against the tree's (at e685712), interleaved (below)
#   same_codes.txt: python same_codes.py BUNDLE /tmp/oldsrc/libold.so for int4 and int8 (draw codes, caption tokens)
#   gqa_pairs.txt:  python gqa_pairs.py PARENT_LIB TREE_LIB PARENT_LIB TREE_LIB (the parent: 61afe63)
#   split.txt:      python split.py runs/bench3/paper/bundle-int8-ort 2
#   full/, full2/:  the README's full run (unifork-rt bench ... --out runs/s32/full), vmstat 10 beside it;
#                   full/rss-int4-caption.txt: /usr/bin/time -v unifork-rt caption IMG --model bundle-int4-ort --max-new-tokens 8
#   left-out/:      the attention with keys in blocks (its README); convt_phases.txt: python left-out/convt_phases.py
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
