#!/bin/bash
# The AVX2 1-row integer tiles (uk_gemm, main's library) on weights in cache, from C (session 52's hb2.c):
# 1 thread over 896 x 1024 (0.9 MB int8 / 0.46 MB int4), 2 threads over 896 x 4864 (4.4 / 2.2 MB); best of REPS
# passes, a thread start per pass on 2 threads. Prints the command and hb2's line (ms, G multiply-adds a second).
L=/tmp/s52/libs/s53main.so  # main's library, built from 0000325
for r in 1 2 3; do
  for c in "8 1 896 1024 1 1 2000" "4 1 896 1024 1 1 2000" "8 1 896 4864 1 2 200" "4 1 896 4864 1 2 200"; do
    echo "round $r: hb2 main.so $c -> $(/tmp/s52/hb2 $L $c)"
  done
done
