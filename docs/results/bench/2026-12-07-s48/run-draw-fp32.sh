#!/bin/bash
# Session 48: guided fp32 draws (--n 1, --n 4) under the AVX2 CPUID mask, the library of OLD (f5cc3dc, e.g.
# `git worktree add /tmp/old f5cc3dc`) against this checkout's, one process each in turn, ROUNDS rounds
# (session 46's draw_time.py: one warm-up draw, then --n 1 and --n 4 once a process). Writes draw-ab-fp32-avx2.txt.
# Run from the repository root (this checkout is "new"). Needs the virtual environment on PATH and CPUID faulting
# (tests/avx2only/run.sh masks each process and checks the mask first); the paper bundles in $BUNDLES.
set -e
OLD=${OLD:-/tmp/old}
D=docs/results/bench/2026-12-07-s48
B=${BUNDLES:-runs/bench-avx2/paper}
{ lscpu | grep "Model name"; for r in $(seq ${ROUNDS:-2}); do for pp in $OLD $PWD; do
  echo "r$r fp32 $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp PYTHON=python bash tests/avx2only/run.sh python docs/results/bench/2026-12-07-s46/draw_time.py $B/bundle-fp32-ort 1 | tail -1)"
done; done; } | tee $D/draw-ab-fp32-avx2.txt
