set -x
export PYTHONPATH=$PWD PATH=$PWD/.venv/bin:$PATH
for b in int8 int8-dynamic int4; do echo "== draw $b"; python docs/results/bench/2026-12-05-batching/draw_ab.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 4; done
for b in int4 int8; do echo "== caption $b"; python docs/results/bench/2026-12-05-intel/micro/ab_caption.py runs/bench3/paper/bundle-$b-ort OLD.so NEW.so 6; done
