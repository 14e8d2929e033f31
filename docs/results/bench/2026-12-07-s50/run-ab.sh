#!/bin/bash
# Session 50: HEAD's library (OLD, /work/main) against a worktree's (NEW), alternate processes, the order swapped
# in every even round; natively (this session's host is an AVX2-only AMD EPYC), bundles of runs/bench3.
#   run-ab.sh step|draw "int8-dynamic int8" ROUNDS [NEW] [ARG]
# step: session 46's step_prefill.py (decode step at position 300 and a 297-row prefill, 30 rounds a process);
# draw: session 46's draw_time.py (guided --n 1 and --n 4 draws, best of 2 a process; ARG: of ARG).
cd /work/main
export PATH=/work/main/.venv/bin:$PATH
what=$1 precisions=$2 rounds=${3:-3} OLD=/work/main NEW=${4:-/tmp/wt50}
S=docs/results/bench/2026-12-07-s46 B=runs/bench3/paper
case $what in step) script=step_prefill.py arg=30 ;; draw) script=draw_time.py arg=2 ;;
  *) echo "step or draw" >&2; exit 2 ;; esac
arg=${5:-$arg}  # session 51: the rounds inside a process (draw_time.py) or steps (step_prefill.py)
for r in $(seq 1 "$rounds"); do for p in $precisions; do
  if [ $((r % 2)) = 0 ]; then order="$NEW $OLD"; else order="$OLD $NEW"; fi
  for pp in $order; do
    echo "round $r $p $([ $pp = $OLD ] && echo old || echo new) $(cd /tmp && PYTHONPATH=$pp python /work/main/$S/$script /work/main/$B/bundle-$p-ort $arg | tail -1)"
  done
done; done
