#!/usr/bin/env bash
# ShapesBench of the shipped model as a `--graphs ort` fp32 bundle (6 / 2 heads of 32: our grouped attention, G = 3, on
# AVX-512 VNNI CPUs) with our attention (UNIFORK_RT_ATTENTION=1) and with ONNX Runtime's (=0); repository root.
set -e
R=docs/results/bench/2026-12-06-s41/eval
U=.venv/bin/unifork-rt
$U export unifork_rt/assets/shapes/checkpoint --graphs ort --precision fp32 --out /tmp/shapes-ort-fp32
for att in 1 0; do
  UNIFORK_RT_ATTENTION=$att $U eval draw --model /tmp/shapes-ort-fp32 --n 100 --out $R/draw-attention-$att
  UNIFORK_RT_ATTENTION=$att $U eval caption --model /tmp/shapes-ort-fp32 --n 100 --out $R/caption-attention-$att
done
