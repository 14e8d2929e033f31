#!/bin/bash
# Session 48: grouped query heads on AVX2 (docs/KERNELS.md "Grouped query heads"), the library of OLD (1ccb81b, e.g.
# `git worktree add /tmp/old48 1ccb81b`) against this checkout's, one process each in turn. Run from the repository root
# on an idle machine with CPUID faulting, the virtual environment on PATH, the paper bundles in $BUNDLES. Writes:
#   attn-op-avx2.txt:   the op alone in a loop (session 41's gqa_loop.py: 14 / 2 heads of 64, 256 keys; 8 and 2 rows),
#                       AVX2 code (UNIFORK_RT_ISA=avx2), 3 rounds
#   attn-step-avx2.txt: caption decode step and 297-row prefill (session 46's step_prefill.py) of the int4 and fp32
#                       bundles under the AVX2 CPUID mask, 3 rounds
#   attn-draw-avx2.txt: guided draws --n 1 and --n 4 (session 46's draw_time.py) of the int4 and int8 bundles under
#                       the mask, 2 rounds
set -e
OLD=${OLD:-/tmp/old48}
D=docs/results/bench/2026-12-07-s48
S=docs/results/bench/2026-12-07-s46
B=${BUNDLES:-runs/bench-avx2/paper}
lib() { (cd /tmp && PYTHONPATH=$1 python -c "from unifork_rt.runtime import qmatmul; print(qmatmul.build()[0])"); }
LO=$(lib $OLD); LN=$(lib $PWD)
{ echo "# old $LO, new $LN"; for r in 1 2 3; do for c in trunk trunk2; do for l in $LO $LN; do
  echo "round $r $([ $l = $LO ] && echo old || echo new) $(UNIFORK_RT_ISA=avx2 python docs/results/bench/2026-12-06-s41/gqa_loop.py $l $c 4)"
done; done; done; } | tee $D/attn-op-avx2.txt
{ for r in 1 2 3; do for p in int4 fp32; do for pp in $OLD $PWD; do
  echo "round $r $p $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp PYTHON=python bash tests/avx2only/run.sh python $S/step_prefill.py $B/bundle-$p-ort 6 | tail -1)"
done; done; done; } | tee $D/attn-step-avx2.txt
{ for r in 1 2; do for p in int4 int8; do for pp in $OLD $PWD; do
  echo "r$r $p $([ $pp = $OLD ] && echo old || echo new) $(PYTHONPATH=$pp PYTHON=python bash tests/avx2only/run.sh python $S/draw_time.py $B/bundle-$p-ort 2 | tail -1)"
done; done; done; } | tee $D/attn-draw-avx2.txt
