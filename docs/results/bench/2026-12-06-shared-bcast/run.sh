#!/usr/bin/env bash
# Session 40 (Intel Xeon guest, family 6 model 207, 2 cores, AVX-512 VNNI): the 8-row VNNI tiles walk two column
# streams and load each row's activation broadcast once for both (VNNI_TILE8_2). Run from the repository root.
set -e
here=docs/results/bench/2026-12-06-shared-bcast; w=$(mktemp -d); base=${BASE:-4dfe07d}  # the library before
mkdir -p "$w/old" "$w/new"
for f in qmatmul_kernels.c qmatmul_kernels.h fmatmul_kernels.c attn_kernels.c sample_kernels.c qmatmul_op.c; do
  git show "$base:unifork_rt/runtime/kernels/$f" > "$w/old/$f"; cp "unifork_rt/runtime/kernels/$f" "$w/new/$f"; done
for v in old new; do
  gcc -O3 -I"$w/$v" -o "$w/comp-$v" docs/results/bench/2026-12-06-two-chains/comp.c "$w/$v/qmatmul_kernels.c" -lm
  (cd "$w/$v" && gcc -O3 -std=gnu11 -fPIC -shared -o "$w/$v.so" qmatmul_kernels.c fmatmul_kernels.c attn_kernels.c \
     sample_kernels.c qmatmul_op.c -lm); done
# comp.txt: one core, an L2-resident matrix at 8 rows, best of 40 x 50 calls; 3 rounds, old and new alternately
for r in 1 2 3; do for shape in "896 1024" "3584 256"; do for bits in 8 4; do for v in old new; do
  printf "$v "; "$w/comp-$v" 8 $bits $shape; done; done; done; done | tee $here/comp.txt
# bits: the library before against this tree's on 16 cases (both ISAs) -> "bitwise equal"
python docs/results/bench/2026-12-03-streams/bitcmp.py "$w/old.so" | tee $here/bitcmp.txt
# draw-*.txt (printed before the comp runs above; 6 rounds, both libraries in one process):
#   python docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 6
# draw-n2-*.txt (the 4-row try, four-rows.diff applied for NEW.so with -DFOUR=1, OLD.so the same source with -DFOUR=0):
#   python docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 5 2
# split.py BUNDLE_PRECISION ROUNDS: a guided draw's time by graph and the rest, --n 1 and --n 4 (split-*.txt)
