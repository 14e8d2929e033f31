#!/usr/bin/env bash
# Session 36 (Intel Xeon, family 6 model 207, 2 cores, AVX-512 VNNI + AMX): a software prefetch in the 1- and
# 2-row MatMulNBits tiles. mbq.c is docs/results/bench/2026-12-05-interleave/micro/mbq.c (the paper trunk's 24
# layers of matmuls, 2 threads, a barrier after each matrix, then the 4-stream read probe, alternately).
# pf1.patch makes the 1-2-row prefetch distance a macro (PF1; 0 = the kernel before this session).
set -e
here=$(cd "$(dirname "$0")" && pwd); repo=$(cd "$here/../../../../.." && pwd); w=$(mktemp -d)
for f in qmatmul_kernels.c qmatmul_kernels.h fmatmul_kernels.c; do
  git -C "$repo" show 0e05be1:unifork_rt/runtime/kernels/$f > "$w/$f"
done
cp "$repo"/docs/results/bench/2026-12-05-interleave/micro/{mbq.c,mb.c} "$w"
(cd "$w" && patch -p1 qmatmul_kernels.c < "$here/pf1.patch")
for pf in 0 1024 2048 4096; do gcc -O3 -DPF1=$pf -o "$w/mbq_pf$pf" "$w/mbq.c" "$w/qmatmul_kernels.c" "$w/fmatmul_kernels.c" -lpthread -lm; done
gcc -O3 -o "$w/mb" "$w/mb.c" "$w/fmatmul_kernels.c" -lpthread -lm
# pf1.txt (the first look, distances 0 / 256 / 1024 / 4096 at 1 row, int4 and int8, 2 rounds; each line the mean of
# the last 6 of 6 pairs) came from the same binaries with -DPF1=256 added and `mbq_pf$pf 24 1 6 $bits | tail -6`.
# pf2.txt: 3 rounds, rows 1 and 2, int4 and int8, each the mean of the last 5 of 6 gemm/probe pairs
for round in 1 2 3; do for rows in 1 2; do for bits in 4 8; do for pf in 0 1024 2048 4096; do
  printf "pf %4d bits %d rows %d round %d  " $pf $bits $rows $round
  "$w/mbq_pf$pf" 24 $rows 6 $bits | tail -5 | awk '{g+=$2; t+=substr($4,2); p+=$7; r+=$NF; n++} END {printf "gemm %.1f GB/s %.2f ms probe %.1f ratio %.3f\n", g/n, t/n, p/n, r/n}'
done; done; done; done
# fp32.txt: our fp32 tile at 1 and 2 rows against the same probe
for rows in 1 2; do "$w/mb" 24 $rows 8 | tail -6; done
# chain.txt: in ONNX Runtime (docs/results/bench/2026-12-03-streams/chain.py), the library before (lib_old: 0e05be1's
# sources) and after (lib_new): python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])" in each
# checkout, then: for round in 1 2 3; do for bits in 4 8; do for lib in old new; do
#   python chain.py lib_$lib.so $bits 128; done; done; done
# ab-steps.txt (lib_new: the prefetch at 1-2 rows in both bit widths) and ab-steps-i8.txt (lib_i8: in the 8-bit tiles
# only; then the int8 run again with the two libraries' places swapped): trunk and depth-head steps of the paper
# bundles (`unifork-rt bench --work runs/bench3`) at 1, 2 and 8 rows and a 300-token prompt, both libraries in one
# process, round by round (docs/results/bench/2026-12-05-batching/ab_lib.py; the 8-row tiles are the same code in
# both, a control):
#   python ab_lib.py runs/bench3/paper/bundle-int4-ort lib_old.so 8 1,2,8 lib_new.so
# ab-caption.txt (4 rounds) and ab-caption-10r.txt (10 rounds): the whole caption pipeline, ms per token, with
# lib_old and lib_new (the prefetch at 1-2 rows in both widths) each in a child process, the order reversed every
# other round: python ab_caption.py runs/bench3/paper/bundle-int4-ort lib_old.so lib_new.so 10 (and int8).
# The commit after it kept the prefetch in the 4-bit tiles only (the int4 tiles' code is the same as lib_new's).
