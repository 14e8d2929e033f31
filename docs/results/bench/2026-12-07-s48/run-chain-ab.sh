#!/bin/bash
# Session 48: 12 paper layers (session 41's chain.py) with the AVX2 tiles (UNIFORK_RT_ISA=avx2), the library of OLD
# (f5cc3dc, `git worktree add /tmp/old f5cc3dc`) against this checkout's, alternating processes, ROUNDS rounds.
# out= is the sum of every output: the same bits give the same sum. Writes $OUT (chain-ab-avx2.txt); FIRST=new runs
# this checkout's library first in each round (old first by default). Run from the repository root with nothing else
# running.
set -e
OLD=${OLD:-/tmp/old}
D=docs/results/bench/2026-12-07-s48
lib() { (cd /tmp && PYTHONPATH=$1 "$PWD_PY" -c "from unifork_rt.runtime import qmatmul; print(qmatmul.build()[0])"); }
PWD_PY=$PWD/.venv/bin/python
LO=$(lib $OLD); LN=$(lib $PWD)
ORDER="$LO $LN"; [ "${FIRST:-old}" = new ] && ORDER="$LN $LO"
{ echo "# old $LO, new $LN, first in each round: ${FIRST:-old}"; lscpu | grep "Model name"
  for r in $(seq ${ROUNDS:-2}); do for l in $ORDER; do
  echo "== $r $([ $l = $LO ] && echo old || echo new) $l"
  UNIFORK_RT_ISA=avx2 $PWD_PY docs/results/bench/2026-12-04-float/chain.py 12 TransposeMatMul $l 1,2,4,6,8,10,16,297
done; done; } 2>&1 | tee $D/${OUT:-chain-ab-avx2.txt}
