#!/bin/bash
# Session 49: guided draws under the AVX2 CPUID mask, HEAD's library (OLD) against the worktree's (NEW), one process
# each in turn, the order swapped every round; int4 and int8 ort bundles of the AVX2 work folder.
cd /work/main
export PATH=/work/main/.venv/bin:$PATH
OLD=/work/main; NEW=/tmp/wt49; S=docs/results/bench/2026-12-07-s46; B=runs/bench-avx2/paper
for r in 1 2; do for p in int4 int8; do
  if [ $r = 1 ]; then order="$OLD $NEW"; else order="$NEW $OLD"; fi
  for pp in $order; do
    echo "r$r $p $([ $pp = $OLD ] && echo old || echo new) $(cd /tmp && PYTHONPATH=$pp PYTHON=python bash /work/main/tests/avx2only/run.sh python /work/main/$S/draw_time.py /work/main/$B/bundle-$p-ort 2 | tail -1)"
  done
done; done
