#!/usr/bin/env bash
# Session 42's measurements (docs/KERNELS.md "Layer norms, and the attention's cache writes"), from the repo root,
# one after another with nothing else running. Libraries: libs.sh.
set -e
R=docs/results/bench/2026-12-06-s42
P=.venv/bin/python
B=runs/bench3/paper
export PATH=$PWD/.venv/bin:$PATH
bash $R/libs.sh
$P $R/norm_op.py runs/s42/normkv.so 3 > $R/norm-op-first.txt   # (written as norm-op.txt then, renamed)
$P docs/results/bench/2026-12-05-batching/ab_lib.py $B/bundle-int4-ort runs/s42/base.so 8 1,2,8 runs/s42/normkv.so > $R/ab-steps-int4.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int4-ort runs/s42/base.so runs/s42/normkv.so 6 > $R/draw-ab-int4.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int8-ort runs/s42/base.so runs/s42/normkv.so 4 > $R/draw-ab-int8.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int8-dynamic-ort runs/s42/base.so runs/s42/normkv.so 4 > $R/draw-ab-int8-dynamic.txt
# rdtsc inside our ops (timing builds: docs/results/bench/2026-12-06-s41/timing_build.py), before and after
$P docs/results/bench/2026-12-06-s41/timing_build.py runs/s42/timing_base.so /tmp/s42-base-kernels > /dev/null 2>&1 || {
  rm -rf /tmp/s42-base-kernels; d=$(mktemp -d); git archive 9343295 unifork_rt/runtime/kernels | tar -x -C $d
  mv $d/unifork_rt/runtime/kernels /tmp/s42-base-kernels
  $P docs/results/bench/2026-12-06-s41/timing_build.py runs/s42/timing_base.so /tmp/s42-base-kernels > /dev/null; }
$P docs/results/bench/2026-12-06-s41/timing_build.py runs/s42/timing_new.so > /dev/null
$P docs/results/bench/2026-12-06-s41/op_split.py $B/bundle-int4-ort runs/s42/timing_base.so 4 > $R/op-split-int4-before.txt
$P docs/results/bench/2026-12-06-s41/op_split.py $B/bundle-int4-ort runs/s42/timing_new.so 4 > $R/op-split-int4-after.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-fp32-ort runs/s42/base.so runs/s42/normkv.so 2 > $R/draw-ab-fp32.txt
# the final library (b7854bc: SkipSimplifiedLayerNormalization back to ONNX Runtime's), the new library first in every
# other round; and the layer norms alone: one library, ONNX Runtime's norms (UNIFORK_RT_NORM=0) against ours
$P $R/prof_types.py $B/bundle-int4-ort rq_head runs/s42/base.so > $R/prof-rq-int4-before.txt
$P $R/prof_types.py $B/bundle-int4-ort rq_head runs/s42/final.so > $R/prof-rq-int4-after.txt
$P $R/other_ops.py 3 > $R/other-ops.txt
$P $R/subpixel_proto.py $B/bundle-int4-ort/vision_decoder.onnx > $R/subpixel.txt
$P $R/env_ab.py $B/bundle-int4-ort runs/s42/normkv.so 10 1,2,8 > $R/env-ab-int4.txt   # (run twice, the second kept)
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int4-ort runs/s42/base.so runs/s42/final.so 8 1,4 swap > $R/draw-ab-final-int4.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int8-ort runs/s42/base.so runs/s42/final.so 6 1,4 swap > $R/draw-ab-final-int8.txt
# the kernel as it ships (9402760: the sums in double, the review's mends): the op alone again (norm-op-first.txt
# was 75d59a5's, both norms ours), the steps, the rest of a cell, and guided int4 draws against session 41's library
$P $R/norm_op.py runs/s42/final2.so 3 > $R/norm-op.txt
$P docs/results/bench/2026-12-05-batching/ab_lib.py $B/bundle-int4-ort runs/s42/base.so 8 1,2,8 runs/s42/final2.so > $R/ab-steps-int4-final2.txt
$P docs/results/bench/2026-12-06-s41/timing_build.py runs/s42/timing_final2.so > /dev/null
$P docs/results/bench/2026-12-06-s41/op_split.py $B/bundle-int4-ort runs/s42/timing_final2.so 4 > $R/op-split-int4-final2.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B/bundle-int4-ort runs/s42/base.so runs/s42/final2.so 8 1,4 swap > $R/draw-ab-final2-int4.txt
$P -m pytest -q -s tests/test_norm_kernel.py > $R/test-norm-printed.txt   # its printed differences
