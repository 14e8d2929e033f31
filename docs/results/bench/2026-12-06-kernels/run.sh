#!/usr/bin/env bash
# Session 37 (2026-12-06): the A/B of the VPDPBUSD broadcast (OLD.so / NEW.so built as README.md here says), then
# the two full runs. Run from the repository root.
set -x
export PYTHONPATH=$PWD PATH=$PWD/.venv/bin:$PATH
for b in int8 int8-dynamic int4; do echo "== draw $b"; python docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 4; done
for b in int4 int8; do echo "== caption $b"; python docs/results/bench/2026-12-05-intel/micro/ab_caption.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 6; done
# ab-rate-asm.txt (run by hand after the part above; not in ab-asm.txt's trace)
for r in 8 2 1; do python docs/results/bench/2026-12-06-kernels/ab_rate.py OLD.so NEW.so 6 $r; done
# the two full runs (full1 00:44, full2 01:12, with 69827fd's kernels: NEW), vmstat 10 beside each, nothing
# else running; runs/bench3 built by session 36's --quick run
for r in full1 full2 full3; do  # full3 (02:17) with b2d4730's kernels (HEAD)
  mkdir -p "runs/s37/$r"
  vmstat 10 > "runs/s37/$r/vmstat.txt" & v=$!
  unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
    --image-budget 150 --out "runs/s37/$r"
  kill $v
done
