#!/usr/bin/env bash
# Session 41's measurements (docs/KERNELS.md "Grouped query heads", docs/BENCHMARKS.md session 41), from the repo root.
# Libraries: base.so = 3ac395d's kernel sources (before this session), grp.so = f8456c4's (grouping), grp_pf.so =
# f42145f's (grouping + key/value prefetch); each built from `git archive <commit> unifork_rt/runtime/kernels` with
#   gcc -O3 -std=gnu11 -fPIC -shared -o X.so qmatmul_kernels.c fmatmul_kernels.c attn_kernels.c sample_kernels.c qmatmul_op.c -lm
# new.so / new2.so / new3.so: the depth-head pair prefetch's three versions (gqa-prefetch.diff is the third).
# Timing builds (rdtsc inside our ops): python docs/results/bench/2026-12-06-s41/timing_build.py OUT.so [KERNEL_DIR].
set -e
R=docs/results/bench/2026-12-06-s41
P=.venv/bin/python
B=runs/bench3/paper/bundle-int4-ort
# the op alone: ONNX Runtime's kernel against ours, and our kernel in a loop
$P docs/results/bench/2026-12-04-attention/op_time.py base.so        # op-time-group.txt (base, grp, base, grp)
$P $R/gqa_loop.py grp.so trunk 2                                     # gqa-group-op.txt, gqa-group-pf-op.txt
# in a graph, rdtsc inside the op (timing builds of base, grp, grp_pf)
$P $R/op_split.py $B timing_base.so 4                                # op-split-int4.txt
$P $R/op_split_ab.py $B 4 timing_base.so timing_grp.so timing_grp_pf.so   # op-split-ab.txt
# the runtime's steps and whole draws, two libraries in one process
$P docs/results/bench/2026-12-05-batching/ab_lib.py $B base.so 4 1,2,8 grp.so      # ab-steps-int4.txt
$P docs/results/bench/2026-12-05-batching/ab_lib.py $B base.so 6 1,2,8 grp_pf.so   # ab-steps-int4-pf.txt
bash $R/ab_all.sh                                                    # draw-ab-group-*.txt (base vs grp)
# the depth-head pair prefetch, tried and left
$P $R/prof_ab.py $B rq_head 8 base.so new2.so 4                      # gqa-op-ab.txt (and gen_branch 8, rq_head 2)
$P $R/prof_ab.py $B rq_head 8 base.so new3.so 4                      # gqa-op-ab2.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B base.so new.so 4     # draw-ab-pairs-prefetch-1.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B new2.so base.so 4    # draw-ab-pairs-prefetch-2-swapped.txt
$P docs/results/bench/2026-12-05-batching/draw_ab.py $B base.so new3.so 5    # draw-ab-pairs-prefetch-3.txt
# kernels alone on matrices read from memory, and reads
(cd unifork_rt/runtime/kernels && gcc -O3 -std=gnu11 -I. -o /tmp/dram ../../../$R/dram.c qmatmul_kernels.c -lm -lpthread \
  && gcc -O3 -std=gnu11 -I. -o /tmp/fdram ../../../$R/fdram.c fmatmul_kernels.c qmatmul_kernels.c -lm -lpthread)
gcc -O3 -march=native -o /tmp/readvar $R/readvar.c -lpthread
for r in 1 2 3 4; do for m in 1 2 4 8; do /tmp/dram $m 4 3; done; done   # dram.txt
for r in 1 2 3; do /tmp/fdram 1 3; done; /tmp/readvar                    # fdram-readvar.txt
$P $R/samp_time.py                                                   # the sampler's cost at 1 and 4 rows (printed)
# two full runs
bash $R/run-full.sh full1; bash $R/run-full.sh full2
python3 docs/results/bench/2026-12-06-s39/check/check.py runs/s41/full1 > $R/check-full1.txt
