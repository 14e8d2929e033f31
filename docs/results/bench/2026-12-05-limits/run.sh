#!/bin/sh
# docs/BENCHMARKS.md "Where the batched draw's time goes, and what bounds it": repository root, idle machine, the paper
# ort bundles of `unifork-rt bench --preset paper --graphs ort --work runs/bench3`.
#   full/, full2/, full3/ (03:45), int8-run/, int8-run2/ (the int8 units with --genai-precisions int8
#                   --llamacpp-types q8_0): the README's full run (unifork-rt bench ... --out runs/s33/full), vmstat 10 beside it
#   rss-int4-caption.txt: /usr/bin/time -v unifork-rt caption /tmp/rnd.png --model bundle-int4-ort --max-new-tokens 8
#   int8-dynamic-attention.txt: step_ab.py BUNDLE 6 20 and draw_ab.py BUNDLE N 3 (N = 1, 4) of
#                   docs/results/bench/2026-12-04-attention/ on the paper int8-dynamic ort bundle
#   int8-dynamic-ab.txt: python dyn_ab.py runs/bench3/paper/bundle-int8-dynamic-ort 6 20 2 (after df6e5cc)
#   int8-dynamic-prompt.txt: python dyn_prompt.py runs/bench3/paper/bundle-int8-dynamic-ort 4
#   eval/*integer-ops*, eval/*no-library*: unifork-rt eval draw / caption of that shipped-model bundle after df6e5cc,
#                   and with UNIFORK_RT_QMATMUL=0
#   fp32-avx2-attention.txt: step_ab.py on the paper fp32 ort bundle under tests/avx2only/run.sh
#   eval/:          ShapesBench of the shipped model's int8-dynamic ort bundle (unifork-rt export
#                   unifork_rt/assets/shapes/checkpoint --graphs ort --precision int8-dynamic), unifork-rt eval draw
#                   --n 100 with UNIFORK_RT_ATTENTION=1 and 0, unifork-rt eval caption --n 100
#   the rest: this script (each tool says what it measures in its header)
set -e
d=docs/results/bench/2026-12-05-limits
k=unifork_rt/runtime/kernels
host="# $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $(nproc) cores, $(date -u '+%Y-%m-%d %H:%M')"
cc -O3 -std=gnu11 -I$k -o /tmp/uk_mb $d/mb.c $k/qmatmul_kernels.c -lm
cc -O3 -std=gnu11 -I$k -o /tmp/uk_fb $d/fb.c $k/fmatmul_kernels.c $k/qmatmul_kernels.c -lm
cc -O3 -std=gnu11 -I$k -pthread -o /tmp/uk_seq2 $d/seq2.c $k/qmatmul_kernels.c -lm
(echo "$host"; for b in 8 4; do /tmp/uk_mb $b 896 512 2000; /tmp/uk_mb $b 896 4864 100; done) > $d/mb.txt
(echo "$host"; /tmp/uk_fb 896 256 2000; /tmp/uk_fb 896 4864 50) > $d/fb.txt
(echo "$host"; for b in 4 8; do for m in 1 2 8; do /tmp/uk_seq2 $b $m 5 | sort; done; done) > $d/seq2.txt
(echo "$host"; for b in 4 8; do .venv/bin/python $d/chain.py $b shared; done) > $d/chain.txt 2>&1
(echo "$host"; PYTHONPATH=. .venv/bin/python $d/prof8.py runs/bench3/paper/bundle-int8-ort 2,8;
 PYTHONPATH=. .venv/bin/python $d/prof8.py runs/bench3/paper/bundle-int4-ort 2,8) 2>&1 | grep -v Warn > $d/prof8.txt
(echo "$host"; .venv/bin/python $d/decb.py; .venv/bin/python $d/qdec.py 2>&1 | grep "ms/image") > $d/decoder.txt
