#!/usr/bin/env bash
# Session 39 (Intel Xeon guest, family 6 model 207, 2 cores): a second accumulator chain per row in the 8-row
# 4-bit VNNI tile. Run from the repository root.
set -e
here=docs/results/bench/2026-12-06-two-chains; w=$(mktemp -d)
cp unifork_rt/runtime/kernels/{qmatmul_kernels.c,qmatmul_kernels.h} "$w"
# the experiment's switch: TWO8=1 gives both widths' 8-row tiles the second chain (the tree: 4-bit only)
sed -i 's/enum { TWO = MM \* NS < 8 || (BITS == 4 \&\& MM == 8), /enum { TWO = MM * NS < 8 || (TWO8 \&\& MM == 8), /' "$w/qmatmul_kernels.c"
grep -q 'TWO = MM \* NS < 8 || (TWO8 && MM == 8)' "$w/qmatmul_kernels.c" || { echo "the sed did not match: the tile's enum changed" >&2; exit 1; }
for v in 0 1; do gcc -O3 -DTWO8=$v -I"$w" -o "$w/comp$v" $here/comp.c "$w/qmatmul_kernels.c" -lm; done
gcc -O2 -o "$w/peak" $here/peak.c
# one core, an L2-resident matrix, best of 40 x 50 calls. comp-first.txt (06:20, copied from the terminal) and
# comp-third.txt (07:37): 3 rounds of
for r in 1 2 3; do for v in 0 1; do for bits in 4 8; do printf "TWO8=$v "; "$w/comp$v" 8 $bits 896 1024; done; done; done
"$w/peak"   # (its "dependent adds" label is the imul chain: 4 imuls a pass, 3 cycles each)
# comp.txt (06:28): 3 rounds of int4 and int8 896 x 1024 and int4 3584 x 256 at 8 rows, then int4 at 4 and 2 rows
for r in 1 2 3; do for v in 0 1; do
  printf "TWO8=$v "; "$w/comp$v" 8 4 896 1024; printf "TWO8=$v "; "$w/comp$v" 8 8 896 1024
  printf "TWO8=$v "; "$w/comp$v" 8 4 3584 256; done; done
for v in 0 1; do printf "TWO8=$v "; "$w/comp$v" 4 4 896 1024; printf "TWO8=$v "; "$w/comp$v" 2 4 896 1024; done
# bits: python docs/results/bench/2026-12-03-streams/bitcmp.py OLD.so (OLD.so: the library before, built from
# 036425a's kernels) -> 16 cases "bitwise equal"
# draw-ab-two8-int4.txt: python docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-int4-ort OLD.so NEW.so 8
# ab-steps-two8-int4.txt: python docs/results/bench/2026-12-05-batching/ab_lib.py runs/bench3/paper/bundle-int4-ort OLD.so 10 2,8 NEW.so
