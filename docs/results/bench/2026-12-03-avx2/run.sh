set -e
cd /work/main; . .venv/bin/activate
L=runs/bench3/llamacpp/0.3.36/build-avx2/bin/llama-bench
M=runs/bench3/peer-llamacpp/0.3.36/peer-qwen2-q4_0.gguf
mkdir -p runs/avx2cmp
export PYTHON=python
bash tests/avx2only/run.sh unifork-rt bench --preset paper --task caption --backends ort-cpu:int4,ort-cpu:int4-b32 --graphs ort --peers none --repeats 3 --step-repeats 20 --no-profile --work runs/bench3 --out runs/avx2cmp/ours > runs/avx2cmp/ours.log 2>&1
uptime > runs/avx2cmp/llama.load
bash tests/avx2only/run.sh $L -m $M -p 297 -n 0 -t 2 -r 3 -o json > runs/avx2cmp/llama-prefill.json 2> runs/avx2cmp/llama-prefill.err
bash tests/avx2only/run.sh $L -m $M -p 0 -n 64 -d 297 -t 2 -r 3 -o json > runs/avx2cmp/llama-decode.json 2> runs/avx2cmp/llama-decode.err
uptime >> runs/avx2cmp/llama.load
echo done
