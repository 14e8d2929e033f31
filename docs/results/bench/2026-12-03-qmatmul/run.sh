# Our MatMulNBits kernels (runtime/qmatmul.py) against ONNX Runtime's, 2026-12-03 (session 26)
cd "$(dirname "$0")/../../../.." && source .venv/bin/activate
R=docs/results/bench/2026-12-03-qmatmul
LIB=$(python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
# the MatMul chain alone                                                                      # chain.txt
python $R/chain.py $LIB 8 32; python $R/chain.py $LIB 8 128; python $R/chain.py $LIB 4 128
# one draw cell by part, B = 2 and B = 8, ours (UNIFORK_RT_QMATMUL=1) then ONNX Runtime's (=0)  # rows.txt (e69db86..d77274b)
for b in int4-ort int8-ort; do for q in 1 0; do
  UNIFORK_RT_QMATMUL=$q python docs/results/bench/2026-12-03-sampler/rows.py runs/bench3/paper/bundle-$b; done; done
# the caption decode step, interleaved                                                         # ab_decode.txt
python $R/ab_decode.py runs/bench3/paper/bundle-int4-ort 30; python $R/ab_decode.py runs/bench3/paper/bundle-int8-ort 30
# the bench, ours (ours/: quiet, steal 0) and ONNX Runtime's (mlas-noisy/: a 156-s test ran beside it)
unifork-rt bench --preset paper --task all --backends ort-cpu:int8,ort-cpu:int4 --graphs ort --peers none \
    --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --no-profile --out runs/s26/ours2
UNIFORK_RT_QMATMUL=0 unifork-rt bench --preset paper --task all --backends ort-cpu:int8,ort-cpu:int4 --graphs ort \
    --peers none --work runs/bench3 --repeats 2 --step-repeats 10 --image-budget 150 --no-profile --out runs/s26/mlas
# caption-only RSS, ours then ONNX Runtime's                                                    # caption-rss/
for q in 1 0; do UNIFORK_RT_QMATMUL=$q unifork-rt bench --preset paper --task caption --backends ort-cpu:int4,ort-cpu:int8 \
    --graphs ort --peers none --work runs/bench3 --repeats 2 --no-profile --out runs/s26/cap-q$q; done
# the chain on AVX2 kernels (CPUID masked)                                                      # chain-avx2.txt
for a in "4 128" "8 32"; do PYTHON=python bash tests/avx2only/run.sh python $R/chain.py $LIB $a; done
# all four precisions with the peers: full-noisy/ (12:56, steal 7% median) and full/ (13:50, steal 2% median)
unifork-rt bench --preset paper --task all --backends ort-cpu:fp32,ort-cpu:int8,ort-cpu:int8-dynamic,ort-cpu:int4 \
    --graphs ort --peers genai,llamacpp --peer-threads 2 --work runs/bench3 --repeats 2 --step-repeats 10 \
    --image-budget 150 --out runs/s26/full2
