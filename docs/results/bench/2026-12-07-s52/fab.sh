#!/bin/bash
# fab.sh ROUNDS "LIBS": fb.c's 1-row fp32 GEMV (24 x 896 x 4864 and 24 x 4864 x 896, 2 threads, best of 5) per
# library in /tmp/s52/libs, the order rotated each round; prints gemv ms per library per shape, then read4 ms
R=$1; LIBS=($2); n=${#LIBS[@]}
for ((r=0;r<R;r++)); do
  for ((j=0;j<n;j++)); do l=${LIBS[$(((j+r)%n))]}
    a=$(/tmp/s52/fb /tmp/s52/libs/$l.so 896 4864 24 2 5 ${M:-1} | awk '{print $2, $7}')
    b=$(/tmp/s52/fb /tmp/s52/libs/$l.so 4864 896 24 2 5 ${M:-1} | awk '{print $2, $7}')
    echo "round $r $l  896x4864: gemv/read4 $a   4864x896: $b"
  done
done
