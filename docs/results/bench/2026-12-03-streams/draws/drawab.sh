#!/bin/bash
# Interleaved rounds, one process each: OLD = the package at 62c0116 (git worktree add /tmp/oldwt 62c0116; its
# kernel library builds from its own sources), NEW = the working tree. B=bundle (default: the paper int4 ort bundle
# of `unifork-rt bench --work runs/bench3`). Outputs: drawab-int4-c.txt, drawab-int8-c.txt; summary.py reads them.
cd /work/main
B=${B:-runs/bench3/paper/bundle-int4-ort}
for r in 1 2 3; do
  for v in OLD NEW; do
    if [ $v = OLD ]; then P=/tmp/oldwt; else P=/work/main; fi
    echo "round $r $v $B"
    PYTHONPATH=$P .venv/bin/python docs/results/bench/2026-12-03-ort-head/drawparts.py $B 1 2>&1 | grep -v "^cells"
  done
done
