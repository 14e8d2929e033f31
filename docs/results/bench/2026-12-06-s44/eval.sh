#!/usr/bin/env bash
# ShapesBench draw of the shipped model exported `--graphs ort` fp32 with the rewritten image decoder (export/ort_image.py:
# the shapes model's kernel-2 ConvTransposes as one 1x1 Conv each + DepthToSpace, its GELUs as Gelu), against session
# 43's eval of the same export before the rewrite (docs/results/bench/2026-12-06-s43/eval/draw-norm-1); repository root.
set -e
R=docs/results/bench/2026-12-06-s44/eval
U=.venv/bin/unifork-rt
rm -rf /tmp/shapes-ort-fp32-s44
$U export unifork_rt/assets/shapes/checkpoint --graphs ort --precision fp32 --out /tmp/shapes-ort-fp32-s44 --quiet
.venv/bin/python - <<'PY'
import json
m = json.load(open("/tmp/shapes-ort-fp32-s44/manifest.json"))
print("vision_decoder ops:", m["graphs"]["vision_decoder"]["ops"])
PY
$U eval draw --model /tmp/shapes-ort-fp32-s44 --n 100 --out $R/draw
