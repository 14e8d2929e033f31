"""The paper decoder with static int8 QDQ convolutions (per channel; random codes to calibrate) against fp32: time and
largest difference. python decoder_int8.py (reads runs/bench3/paper/bundle-int4-ort)"""
import time, numpy as np, onnxruntime as ort
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
src = "runs/bench3/paper/bundle-int4-ort/vision_decoder.onnx"
class R(CalibrationDataReader):
    def __init__(self):
        rng = np.random.default_rng(0)
        self.it = iter([{"codes": rng.integers(0, 16384, (1, 256, 4)).astype(np.int64)} for _ in range(4)])
    def get_next(self): return next(self.it, None)
t = time.time()
quantize_static(src, "/tmp/dec_q8.onnx", R(), quant_format=QuantFormat.QDQ, per_channel=True,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, op_types_to_quantize=["Conv", "ConvTranspose"],
                use_external_data_format=True)
print("quantized in", time.time() - t)
codes = np.random.default_rng(1).integers(0, 16384, (1, 256, 4)).astype(np.int64)
res = {}
for name, p in [("fp32", src), ("int8", "/tmp/dec_q8.onnx")]:
    o = ort.SessionOptions(); o.intra_op_num_threads = 2
    s = ort.InferenceSession(p, o, providers=["CPUExecutionProvider"])
    for _ in range(3): y = s.run(None, {"codes": codes})[0]
    ts = []
    for _ in range(8):
        t0 = time.perf_counter(); s.run(None, {"codes": codes}); ts.append(time.perf_counter() - t0)
    res[name] = y
    print(name, "median ms", np.median(ts) * 1e3, "min", min(ts) * 1e3)
d = np.abs(res["fp32"] - res["int8"])
print("max diff", d.max(), "mean", d.mean(), "range", res["fp32"].min(), res["fp32"].max())
