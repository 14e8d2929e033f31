#!/bin/bash
# Session 49: caption decode step and 297-row prefill under the AVX2 CPUID mask, HEAD's library (OLD) against the
# worktree's (NEW), alternate processes, the order swapped in round 2. Argument: rounds (default 3;
# step-ab-final.txt was 2).
cd /work/main
export PATH=/work/main/.venv/bin:$PATH
OLD=/work/main; NEW=/tmp/wt49; S=docs/results/bench/2026-12-07-s46; B=runs/bench-avx2/paper
for r in $(seq 1 "${1:-3}"); do for p in int4 int8; do
  if [ $r = 2 ]; then order="$NEW $OLD"; else order="$OLD $NEW"; fi
  for pp in $order; do
    echo "round $r $p $([ $pp = $OLD ] && echo old || echo new) $(cd /tmp && PYTHONPATH=$pp PYTHON=python bash /work/main/tests/avx2only/run.sh python /work/main/$S/step_prefill.py /work/main/$B/bundle-$p-ort 30 | tail -1)"
  done
done; done
