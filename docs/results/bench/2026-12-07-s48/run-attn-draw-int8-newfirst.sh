#!/bin/bash
# Session 48: rounds 3-4 of attn-draw-avx2.txt (int8, the new library first in each round); run from anywhere
# with the virtual environment on PATH; OLD as in run-attn-ab.sh. Output appended to attn-draw-avx2.txt by hand.
cd /work/main
OLD=/tmp/old48; S=docs/results/bench/2026-12-07-s46; B=runs/bench-avx2/paper
for r in 3 4; do for pp in $PWD $OLD; do
  echo "r$r int8 $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp PYTHON=python bash tests/avx2only/run.sh python $S/draw_time.py $B/bundle-int8-ort 2 | tail -1)"
done; done
