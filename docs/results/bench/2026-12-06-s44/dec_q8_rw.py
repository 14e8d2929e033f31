"""The rewritten paper decoder (ort_image) fp32 against static int8 QDQ Convs (per channel, 7-bit weights), time."""
import sys, time, numpy as np, onnxruntime as ort, logging
logging.disable(logging.WARNING)
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
src = "/tmp/dec_rw/vision_decoder.onnx"
class R(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.it = iter([{"codes": rng.integers(0, 16384, (1, 256, 4)).astype(np.int64)} for _ in range(8)])
    def get_next(self): return next(self.it, None)
for rr in (True, False):
    quantize_static(src, f"/tmp/dec_rw_q8_{rr}.onnx", R(), quant_format=QuantFormat.QDQ, per_channel=True, reduce_range=rr,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv"],
                use_external_data_format=True)
codes = np.random.default_rng(1).integers(0, 16384, (1, 256, 4)).astype(np.int64)
ss = {}
for name, p in [("fp32", src), ("q8_rr", "/tmp/dec_rw_q8_True.onnx"), ("q8", "/tmp/dec_rw_q8_False.onnx")]:
    o = ort.SessionOptions(); o.intra_op_num_threads = 2
    ss[name] = ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
res = {k: s.run(None, {"codes": codes})[0] for k, s in ss.items()}
t = {k: [] for k in ss}
for r in range(6):
    for k, s in ss.items():
        a = time.perf_counter(); s.run(None, {"codes": codes}); t[k].append(time.perf_counter() - a)
for k in ss:
    print(k, "median ms", round(np.median(t[k]) * 1e3, 1), "max diff vs fp32", float(np.abs(res[k] - res["fp32"]).max()), "out std", float(res["fp32"].std()))
