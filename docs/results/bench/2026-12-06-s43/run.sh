#!/usr/bin/env bash
# Session 43's measurements, repository root, .venv installed (README), runs/bench3 built by the first full run.
# The libraries: OLD = b4a5fba's kernels, NEW = 8a9963f's (gcc -O3 -std=gnu11 -fPIC -shared -o X.so *.c -lm in the
# kernel folder of each); timing builds with docs/results/bench/2026-12-06-s41/timing_build.py OUT.so [KERNEL_DIR].
set -e
R=docs/results/bench/2026-12-06-s43
B=runs/bench3/paper/bundle-int4-ort
P=.venv/bin/python
bash $R/eval.sh                                                   # eval/: ShapesBench, our norm and ONNX Runtime's
$P $R/norm_check.py | grep -v "qmatmul lib" > $R/norm-check.txt   # one depth-head step's logits: ours ran
bash $R/run-full.sh full1                                         # started at b4a5fba; its fp32 unit void, the rest ran 8a9963f's binary (docs/BENCHMARKS.md)
$P docs/results/bench/2026-12-06-s41/op_split_ab.py $B 6 --cases=trunk:2,trunk:8,rq_head:2,rq_head:8 /tmp/kl/t_old.so /tmp/kl/t_new.so  # op-split-ab-prefetch.txt
# op-split-ab-variants.txt: the same, rq_head cases only, five timing builds (two ahead, PREFETCHW: not kept)
$P $R/bitcmp_op.py /tmp/kl/old.so /tmp/kl/new.so                        # bitcmp-op.txt (and with UNIFORK_RT_ISA=avx2)
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B /tmp/kl/old.so /tmp/kl/new.so 6 1,4 swap  # draw-ab-prefetch-int4.txt (twice)
bash $R/run-full.sh full2                                         # at 8a9963f
python3 docs/results/bench/2026-12-06-s39/check/check.py runs/s43/full1 > $R/check-full1.txt
python3 docs/results/bench/2026-12-06-s39/check/check.py runs/s43/full2 > $R/check-full2.txt
$P docs/results/bench/2026-12-06-s41/op_split.py $B /tmp/kl/t_new.so 4 > $R/op-split-int4.txt
$P $R/draw_decode_time.py $B 3 > $R/draw-decode-time-int4.txt
$P $R/prof_decoder.py $B > $R/prof-decoder.txt
$P $R/decoder_fresh.py $B > $R/decoder-fresh.txt
$P $R/decoder_int8.py > $R/decoder-int8.txt
# the task split (1c6d645) against 8a9963f: HEAD = 8a9963f's kernels, SPLIT = the split before the code review's mends
# (prefetch_lines by offset from p, no bh < 0 bound: the working tree of 1c6d645 before its last edit, built the same
# two ways), FINAL = 1c6d645's
$P docs/results/bench/2026-12-06-s41/op_split_ab.py $B 6 --cases=trunk:2,trunk:8,rq_head:2,rq_head:8 /tmp/kl/t_head.so /tmp/kl/t_split.so  # op-split-ab-split.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B /tmp/kl/head.so /tmp/kl/split.so 6 1,4 swap  # draw-ab-split-int4.txt
$P docs/results/bench/2026-12-06-s41/op_split_ab.py $B 4 --cases=rq_head:2,rq_head:8 /tmp/kl/t_head.so /tmp/kl/t_split.so /tmp/kl/t_final.so  # op-split-ab-final.txt
bash $R/run-full.sh full3                                         # at 1c6d645
python3 docs/results/bench/2026-12-06-s39/check/check.py runs/s43/full3 > $R/check-full3.txt
