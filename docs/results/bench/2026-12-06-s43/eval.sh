#!/usr/bin/env bash
# ShapesBench of the shipped model as a `--graphs ort` fp32 bundle, with our SkipLayerNormalization in the depth head
# (UNIFORK_RT_NORM=1, the default) and with ONNX Runtime's (=0); repository root. Session 41's eval.sh did the same for
# the attention kernel.
set -e
R=docs/results/bench/2026-12-06-s43/eval
U=.venv/bin/unifork-rt
$U export unifork_rt/assets/shapes/checkpoint --graphs ort --precision fp32 --out /tmp/shapes-ort-fp32
.venv/bin/python - <<'PY'
import onnx, collections
m = onnx.load("/tmp/shapes-ort-fp32/rq_head.onnx", load_external_data=False)
print("rq_head ops:", dict(collections.Counter(n.op_type for n in m.graph.node)))
PY
for norm in 1 0; do
  UNIFORK_RT_NORM=$norm $U eval draw --model /tmp/shapes-ort-fp32 --n 100 --out $R/draw-norm-$norm
  UNIFORK_RT_NORM=$norm $U eval caption --model /tmp/shapes-ort-fp32 --n 100 --out $R/caption-norm-$norm
done
