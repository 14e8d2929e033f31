#!/usr/bin/env bash
# The new 8-row tiles' inner loops (first to last VPDPBUSD): stack references (spills), VPDPBUSDs, broadcasts; and
# whether every other tile compiles to the same instructions as the library before (BASE). Run from the repository root.
set -e
base=${BASE:-4dfe07d}; w=$(mktemp -d)
git show "$base:unifork_rt/runtime/kernels/qmatmul_kernels.c" > "$w/old.c"
cp unifork_rt/runtime/kernels/qmatmul_kernels.h "$w/"
gcc -O3 -std=gnu11 -fPIC -I"$w" -c -o "$w/old.o" "$w/old.c"
gcc -O3 -std=gnu11 -fPIC -c -o "$w/new.o" unifork_rt/runtime/kernels/qmatmul_kernels.c
fn() { objdump -d --no-show-raw-insn "$1" | awk "/<$2>:/,/ret/"; }
norm() { fn "$1" "$2" | sed 1d | cut -f2- | sed -E 's/[0-9a-f]+ <[^>]*>/J/; s/<[^>]*>//'; }
gcc --version | head -1
for f in vnni4_8_2 vnni8_8_2 vnni8_8_2_c; do
  fn "$w/new.o" $f > "$w/f.s"; a=$(grep -n vpdpbusd "$w/f.s" | head -1 | cut -d: -f1); b=$(grep -n vpdpbusd "$w/f.s" | tail -1 | cut -d: -f1)
  echo "$f: inner loop $((b - a + 1)) instructions, $(sed -n "${a},${b}p" "$w/f.s" | grep -c vpdpbusd) vpdpbusd," \
       "$(sed -n "${a},${b}p" "$w/f.s" | grep -c vpbroadcastd) vpbroadcastd, $(sed -n "${a},${b}p" "$w/f.s" | grep -c '(%rsp)') stack references"
done
for f in $(objdump -t "$w/old.o" | grep ' F .text' | awk '$NF ~ /^(vnni|avx2)/ {print $NF}' | sort -u); do
  if diff -q <(norm "$w/old.o" $f) <(norm "$w/new.o" $f) > /dev/null; then echo "$f: same instructions"; else echo "$f: DIFFERS"; fi
done
