#!/bin/sh
# numpy sampler (UNIFORK_RT_SAMPLER=0) against the C one, whole guided draws interleaved in one process,
# from the repository root with the bench bundles of `unifork-rt bench --preset paper --work runs/bench3`.
d=docs/results/bench/2026-12-04-sampler-c
(for b in int8 int4; do
  echo "== $b ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores)"
  .venv/bin/python $d/draw_ab.py runs/bench3/paper/bundle-$b-ort 3 2>&1 | grep -v Warn
done) > $d/draw.txt
