#!/usr/bin/env bash
# How the files in this folder were made (session 35, 2026-12-05, the AMD EPYC VM: Zen 4, 2 cores, AVX-512 VNNI).
# Run from the repository root with the bench's work folder of the earlier sessions (runs/bench3: the paper
# bundles, the llama.cpp build and GGUFs); nothing else running.
set -euo pipefail
D=docs/results/bench/2026-12-05-interleave

# full1/ .. full5/: the README's bench command with the interleaved rounds (its default), vmstat beside.
# full1, full2 ran fc4ff05's interleave (llama.cpp only); full3 e4db9a8's (4 rounds of 2 runs, genai too); full4 the
# final code (f87d9cd: 8 rounds of 1 run, the same-state rule), full5 the final code again
for run in full1 full2 full3 full4 full5; do
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
# streams8.txt: the 1-row integer tiles walking 8 weight streams instead of 4 (streams8.patch, applied to a copy of
# qmatmul_kernels.c built as /tmp/mbq_new), old and new in turn, 45 rounds of each bit width (09:15)
for i in $(seq 1 45); do for b in 4 8; do /tmp/mbq 24 1 2 $b | tail -2 | sed "s/^/old$b /"
  /tmp/mbq_new 24 1 2 $b | tail -2 | sed "s/^/new$b /"; done; done > streams8.txt

# convt_subpixel.txt: the paper decoder's largest ConvTranspose (128 -> 128 channels, k4 s2 p1, 128x128 -> 256x256)
# against an exact sub-pixel rewrite (one 2x2 Conv with 4x the channels, 4 slices, an interleave)
.venv/bin/python $D/convt_subpixel.py > $D/convt_subpixel.txt

# llama-bench-load-mode.txt (08:13, before full3 started at 08:14): -lm mmap (its default) against -lm none, in turn
B=runs/bench3/llamacpp/0.3.36/build/bin/llama-bench; G=runs/bench3/peer-llamacpp/0.3.36
for r in 1 2 3; do for t in q4_0 f32; do for m in mmap none; do printf "%s %s " $t $m
  $B -m $G/peer-qwen2-$t.gguf -p 0 -n 32 -d 297 -t 2 -r 2 -lm $m -o json 2>/dev/null | python3 -c \
    "import json,sys; d=json.load(sys.stdin)[0]; print(' '.join('%.1f'%(s/1e6/32) for s in d['samples_ns']), 'ms/token')"
done; done; done > $D/llama-bench-load-mode.txt

# rss-int4-caption.txt: the int4 bundle's caption-only peak RSS (a random 256x256 PNG)
PATH=.venv/bin:$PATH /usr/bin/time -v unifork-rt caption /tmp/rnd.png --model runs/bench3/paper/bundle-int4-ort \
  --max-new-tokens 8 >> $D/rss-int4-caption.txt 2>&1

# full3/bench.reanalysed.md: full3/bench.json through the final commit's report code (the same-state rule)
PYTHONPATH=. .venv/bin/python $D/reanalyse.py $D/full3
