#!/bin/bash
# MatMulNBits accuracy level 4 vs 0 (issue 16 item 2), natively and under the AVX2 mask; run on an idle machine
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
for round in 1 2; do
  echo "== native round $round"; python -m unifork_rt.benchmarks.kernels --formats int4,int8 --accuracy-levels 4,0 --rows 1,2,8,297
  echo "== avx2 round $round"; bash tests/avx2only/run.sh python -m unifork_rt.benchmarks.kernels --formats int4,int8 --accuracy-levels 4,0 --rows 1,2,8,297
done
