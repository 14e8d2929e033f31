#!/bin/bash
# Session 34 (2026-12-05), AMD EPYC host (Zen 4, 2 cores, AVX-512 VNNI). Repository root, idle machine.
#   ab-fp32-ns3.txt:      ab_lib.py on runs/bench3/paper/bundle-fp32-ort, the library before (2 streams at 5-8 rows,
#                         built from git show 7bd5e5f:unifork_rt/runtime/kernels/*) against this one (3 streams):
#                         6 rounds at 1, 2, 4, 8 rows, then 12 rounds at 8
#   draw-ab-fp32-ns3.txt: draw_ab.py, the same two libraries, guided draws --n 1 and --n 4, 3 rounds
set -e
D=docs/results/bench/2026-12-05-batching
PY=${PYTHON:-python}
B=runs/bench3/paper/bundle-fp32-ort
T=$(mktemp -d)
git archive 7bd5e5f unifork_rt/runtime/kernels | tar x -C $T
K=$T/unifork_rt/runtime/kernels
gcc -O3 -std=gnu11 -fPIC -shared -o $T/old.so $K/qmatmul_kernels.c $K/qmatmul_op.c $K/attn_kernels.c $K/fmatmul_kernels.c $K/sample_kernels.c -lm
NEW=$($PY -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
{ $PY $D/ab_lib.py $B $T/old.so 6 1,2,4,8 $NEW; $PY $D/ab_lib.py $B $T/old.so 12 8 $NEW; } | tee $D/ab-fp32-ns3.txt
$PY $D/draw_ab.py $B $T/old.so $NEW 3 | tee $D/draw-ab-fp32-ns3.txt
# int8-pf.txt: the 4/8-row integer tiles' prefetch, variants built by hand from a scratch copy of the kernels
#   with the distance and hint as -D flags (not in the tree); OLD = 38d7dcf's library. Per variant:
#   $PY $D/ab_lib.py runs/bench3/paper/bundle-int8-ort OLD.so 5 2,8 VARIANT.so   (10 rounds at 8 for t1_4k / t1_8k,
#   8 rounds at 4,8 on bundle-int4-ort, 8 rounds at 2,8 on bundle-int8-dynamic-ort for the one kept)
# draw-ab-pf.txt: draw_ab.py OLD.so NEW.so 3 on the int8, int4 and int8-dynamic bundles in turn
# full/, full2/: the README's bench command (docs/BENCHMARKS.md), 05:26 and 05:35, each with `vmstat 10` beside it:
#   PATH=.venv/bin:$PATH unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
#     --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out $D/full
# full3/: the same command at 06:01, with 462907c's code (the floor after review)
# draw-ab-pf-int8-8r.txt: draw_ab.py on bundle-int8-ort, 38d7dcf's library (OLD) against a50c7fd's and later (NEW), 8 rounds
# draw-ab-pf-int4-int8dyn-8r.txt: the same, 8 rounds, on bundle-int4-ort then bundle-int8-dynamic-ort
