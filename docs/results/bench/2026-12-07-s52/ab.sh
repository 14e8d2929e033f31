#!/bin/bash
# ab.sh ROUNDS "LIBS" "CASES(bits:m:k:n:L:T:reps;...)" : alternate libs (order swapped each round), print each
R=$1; LIBS=($2); IFS=';' read -ra CASES <<< "$3"
for c in "${CASES[@]}"; do IFS=: read b m k n L T reps <<< "$c"
  declare -A all; for l in "${LIBS[@]}"; do all[$l]=""; done
  for ((r=0;r<R;r++)); do
    if ((r%2)); then order=$(printf "%s\n" "${LIBS[@]}" | tac); else order=$(printf "%s\n" "${LIBS[@]}"); fi
    for l in $order; do v=$(/tmp/s52/hb2 /tmp/s52/libs/$l.so $b $m $k $n $L $T $reps | awk '{print $1}'); all[$l]="${all[$l]} $v"; done
  done
  for l in "${LIBS[@]}"; do echo "bits $b m $m k $k n $n L $L T $T  $l:${all[$l]}"; done
  unset all
done
