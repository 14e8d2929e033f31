#!/usr/bin/env bash
# session 41: HEAD~ (base.so, 3ac395d's sources) against the grouped attention (grp.so), interleaved in one process
cd /work/main
P=.venv/bin/python
D=runs/s41
$P docs/results/bench/2026-12-05-batching/ab_lib.py runs/bench3/paper/bundle-int4-ort /tmp/base.so 4 1,2,8 /tmp/grp.so > $D/ab-steps-int4.txt 2>&1
$P docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-int4-ort /tmp/base.so /tmp/grp.so 4 > $D/draw-ab-group-int4.txt 2>&1
$P docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-int8-ort /tmp/base.so /tmp/grp.so 3 > $D/draw-ab-group-int8.txt 2>&1
$P docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-int8-dynamic-ort /tmp/base.so /tmp/grp.so 3 > $D/draw-ab-group-int8-dynamic.txt 2>&1
echo finished > $D/ab_all.done
