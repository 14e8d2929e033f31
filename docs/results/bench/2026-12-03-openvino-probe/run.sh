# OpenVINO 2026.4.1 as a kernel for int4 batching: a probe, not adopted (docs/BENCHMARKS.md, "OpenVINO").
# Scripts write and read /work/ovprobe; the OpenVINO venv is separate (openvino + numpy only).
cd "$(dirname "$0")/../../../.."
python3 -m venv /work/ovenv && /work/ovenv/bin/pip install openvino==2026.4.1 numpy
.venv/bin/python docs/results/bench/2026-12-03-openvino-probe/build.py 20        # 20 x 2 paper MLP MatMuls per format
cd /work/ovprobe
/work/ovenv/bin/python time_ov.py fp32 int4 int8 int8-dynamic                     # OpenVINO defaults (bf16 on AMX)
OVCFG='{"INFERENCE_PRECISION_HINT": "f32"}' /work/ovenv/bin/python time_ov.py fp32 int4
export OVCFG='{"INFERENCE_PRECISION_HINT": "f32", "DYNAMIC_QUANTIZATION_GROUP_SIZE": "128"}'
/work/ovenv/bin/python time_ov.py int4 int8
/work/main/.venv/bin/python time_ort.py fp32 int4 int8 int8-dynamic
PYTHON=/work/main/.venv/bin/python bash /work/main/tests/avx2only/run.sh /work/ovenv/bin/python time_ov.py int4 int8 fp32
PYTHON=/work/main/.venv/bin/python bash /work/main/tests/avx2only/run.sh /work/main/.venv/bin/python time_ort.py int4 int8 int8-dynamic
# whole decode graphs: a portable int4 bundle of the bench's paper model (OpenVINO cannot take the ort graphs' shared KV buffer)
/work/main/.venv/bin/unifork-rt export /work/main/runs/bench3/paper/model --precision int4 --graphs portable --max-seq 512 --out /work/ovprobe/bundle-int4-portable
/work/main/.venv/bin/python feeds.py bundle-int4-portable
/work/ovenv/bin/python graphs_ov.py bundle-int4-portable ov
/work/main/.venv/bin/python graphs_ov.py bundle-int4-portable ort
