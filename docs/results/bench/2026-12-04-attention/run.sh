#!/bin/bash
# docs/BENCHMARKS.md "Our GroupQueryAttention": repository root, idle machine, the paper ort bundles of
# `unifork-rt bench --preset paper --graphs ort --work runs/bench3` and the shipped model's int8 ort bundle
# (`unifork-rt export --graphs ort --precision int8`, here runs/s30/int8/b128).
#   step.txt: caption decode step, ONNX Runtime's GQA vs ours, 6 interleaved rounds of 20 steps, one process
#   draw.txt: guided draw_codes --n 1 / --n 4, 4 interleaved rounds, one process
#   eval/:    ShapesBench of the shipped int8 bundle with ours (default) and UNIFORK_RT_ATTENTION=0
#   op.txt:   the op alone (op_time.py), native and under the AVX2 CPUID mask (tests/avx2only/run.sh)
#   split.txt (by hand): python split.py BUNDLE N, with UNIFORK_RT_ATTENTION=1 and 0
#   draw-avx2.txt (by hand): draw_ab.py BUNDLE N 2 for the int4 bundle under tests/avx2only/run.sh
#   full/:    the README's full run (unifork-rt bench ... --out runs/s31/full, 21:49) with vmstat.log, and
#             /usr/bin/time -v of an int4 caption (rss-int4-caption.txt)
set -e
D=docs/results/bench/2026-12-04-attention
LIB=$(${PYTHON:-python} -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
(echo "# native"; ${PYTHON:-python} $D/op_time.py $LIB; echo "# AVX2 CPUID mask"
 PYTHON=${PYTHON:-python} bash tests/avx2only/run.sh ${PYTHON:-python} $D/op_time.py $LIB) | tee $D/op.txt
PY=${PYTHON:-python}
B=${BUNDLES:-runs/bench3/paper}
S=${SHIPPED:-runs/s30/int8/b128}
lscpu | grep "Model name" | tee $D/step.txt
for p in int4 int8 fp32; do $PY $D/step_ab.py $B/bundle-$p-ort 6 20; done | tee -a $D/step.txt
for p in int8 int4; do for n in 1 4; do echo "$p $($PY $D/draw_ab.py $B/bundle-$p-ort $n 4)"; done; done | tee $D/draw.txt
for a in 1 0; do
  UNIFORK_RT_ATTENTION=$a unifork-rt eval draw --model $S --n 100 --out /tmp/eval-draw-att$a >/dev/null
done
cp /tmp/eval-draw-att1/draw.md $D/eval/draw-int8-ours.md; cp /tmp/eval-draw-att0/draw.md $D/eval/draw-int8-ort-gqa.md
unifork-rt eval caption --model $S --n 100 --out /tmp/eval-caption >/dev/null && cp /tmp/eval-caption/caption.md $D/eval/caption-int8-ours.md
for a in 1 0; do
  UNIFORK_RT_ATTENTION=$a unifork-rt eval draw --model $S --n 100 --seed 1 --out /tmp/eval-draw-s1-att$a >/dev/null
  echo "att=$a seed 1: $(grep overall /tmp/eval-draw-s1-att$a/draw.md) $(grep color_attr /tmp/eval-draw-s1-att$a/draw.md)"
done | tee $D/eval/draw-int8-seed1.txt
