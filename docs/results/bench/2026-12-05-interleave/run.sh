#!/usr/bin/env bash
# How the files in this folder were made (session 35, 2026-12-05, the AMD EPYC VM: Zen 4, 2 cores, AVX-512 VNNI).
# Run from the repository root with the bench's work folder of the earlier sessions (runs/bench3: the paper
# bundles, the llama.cpp build and GGUFs); nothing else running.
set -euo pipefail
D=docs/results/bench/2026-12-05-interleave

# full1/, full2/: the README's bench command, with the interleaved rounds (--interleave 4 is the default); vmstat beside
for run in full1 full2; do
  vmstat 10 > $D/$run/vmstat.txt & v=$!
  PATH=.venv/bin:$PATH unifork-rt bench --preset paper --task all \
    --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 --graphs ort --peers genai,llamacpp \
    --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --out $D/$run
  kill $v
done

# interleave-standalone.json: the interleaved unit alone, before it was in the bench (4 rounds, 4 pairings; llama.cpp
# only: benchmarks/interleave.py as of fc4ff05, whose run_unit this script calls)
PYTHONPATH=. .venv/bin/python $D/inter.py $D/interleave-standalone.json fp32,int8,int8-dynamic,int4 4

# micro/: our 1-row matmul tiles against the bench's 4-stream read probe, alternately, in one process (C, linked
# against the kernels' sources); p2: 16 buffers of 256 MB read in turn, 6 passes (does the state follow the buffer
# or the time?)
K=unifork_rt/runtime/kernels
cd $D/micro
gcc -O3 -std=gnu11 -march=native -I../../../../../$K mb.c ../../../../../$K/fmatmul_kernels.c -o /tmp/mb -lpthread -lm
gcc -O3 -std=gnu11 -march=native -I../../../../../$K mbq.c ../../../../../$K/qmatmul_kernels.c \
  ../../../../../$K/fmatmul_kernels.c -o /tmp/mbq -lpthread -lm
gcc -O3 -std=gnu11 -march=native -I../../../../../$K p2.c ../../../../../$K/fmatmul_kernels.c -o /tmp/p2 -lpthread
for i in $(seq 1 40); do date +%T; /tmp/mb 24 1 3 | tail -3; sleep 5; done > loop1.txt          # fp32
for i in 1 2 3 4 5 6; do /tmp/mbq 24 1 3 8 | tail -3; /tmp/mbq 24 1 3 4 | tail -3; done > mbq1.txt  # int8, int4
for i in $(seq 1 60); do /tmp/mbq 24 1 2 8 | tail -2 | sed 's/^/int8 /'; /tmp/mbq 24 1 2 4 | tail -2 | sed 's/^/int4 /'
  /tmp/mb 24 1 2 | tail -2 | sed 's/^/fp32 /'; done > loopq.txt
for i in 1 2 3; do /tmp/p2 1; echo; done > p2.txt

# convt_subpixel.txt: the paper decoder's largest ConvTranspose (128 -> 128 channels, k4 s2 p1, 128x128 -> 256x256)
# against an exact sub-pixel rewrite (one 2x2 Conv with 4x the channels, 4 slices, an interleave)
.venv/bin/python $D/convt_subpixel.py > $D/convt_subpixel.txt
