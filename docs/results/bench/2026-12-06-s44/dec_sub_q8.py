"""ConvTranspose -> 4 phase convs (s42 subpixel_proto's rewrite), then static int8 QDQ of every Conv: time and diff."""
import sys, time, numpy as np, onnx, onnxruntime as ort, collections, json, subprocess
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
src = sys.argv[1]
subprocess.run([sys.executable, "docs/results/bench/2026-12-06-s42/subpixel_proto.py", src], check=True, stdout=subprocess.DEVNULL)
class R(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.it = iter([{"codes": rng.integers(0, 16384, (1, 256, 4)).astype(np.int64)} for _ in range(8)])
    def get_next(self): return next(self.it, None)
for pc in (True,):
    quantize_static("/tmp/dec_sub.onnx", "/tmp/dec_sub_q8.onnx", R(), quant_format=QuantFormat.QDQ, per_channel=pc,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                use_external_data_format=True)
codes = np.random.default_rng(1).integers(0, 16384, (1, 256, 4)).astype(np.int64)
res = {}
for name, p in [("fp32", src), ("sub", "/tmp/dec_sub.onnx"), ("sub_q8", "/tmp/dec_sub_q8.onnx")]:
    o = ort.SessionOptions(); o.intra_op_num_threads = 2
    o.enable_profiling = True; o.profile_file_prefix = f"/tmp/decprof_{name}"
    s = ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
    for _ in range(2): res[name] = s.run(None, {"codes": codes})[0]
    ts = []
    for _ in range(6):
        t = time.perf_counter(); s.run(None, {"codes": codes}); ts.append(time.perf_counter() - t)
    f = s.end_profiling()
    ev = [e for e in json.load(open(f)) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    by = collections.defaultdict(float)
    for e in ev: by[e["args"]["op_name"]] += e["dur"] / 8e3
    print(name, "median ms", round(np.median(ts) * 1e3, 1), {k: round(v, 1) for k, v in sorted(by.items(), key=lambda x: -x[1])[:8]})
y = res["fp32"]
for k in ("sub", "sub_q8"):
    d = np.abs(res[k] - y); print(k, "max diff", d.max(), "mean", d.mean(), "out range", y.min(), y.max(), "std", y.std())
