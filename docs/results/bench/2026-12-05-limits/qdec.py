"""The image decoder with its Conv / ConvTranspose statically quantized to int8 (onnxruntime.quantization, 4 random
code grids for calibration), QOperator and QDQ forms, against the fp32 graph: ms per image, 2 threads, and how far
the pixels move (random codes: a speed probe, not a quality check). python qdec.py"""
import time, numpy as np, onnxruntime as ort, onnx
from onnxruntime.quantization import quantize_static, CalibrationDataReader, QuantFormat, QuantType
src = "runs/bench3/paper/bundle-int8-ort/vision_decoder.onnx"
rng = np.random.default_rng(0)
codes = [rng.integers(0, 1024, (1, 256, 4)).astype(np.int64) for _ in range(4)]
class R(CalibrationDataReader):
    def __init__(s): s.it = iter([{"codes": c} for c in codes])
    def get_next(s): return next(s.it, None)
from onnxruntime.quantization.shape_inference import quant_pre_process
m = onnx.load(src); onnx.save(m, "/tmp/vd_pre.onnx")
for fmt in ("qop", "qdq"):
    quantize_static("/tmp/vd_pre.onnx", f"/tmp/vd_{fmt}.onnx", R(), quant_format=QuantFormat.QOperator if fmt == "qop" else QuantFormat.QDQ,
                    op_types_to_quantize=["Conv", "ConvTranspose"], activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, per_channel=True,
                    extra_options={"ActivationSymmetric": False})
so = ort.SessionOptions(); so.intra_op_num_threads = 2
for p in (src, "/tmp/vd_qop.onnx", "/tmp/vd_qdq.onnx"):
    s = ort.InferenceSession(p, so, providers=["CPUExecutionProvider"])
    outs = [s.run(None, {"codes": c})[0] for c in codes]
    t = time.perf_counter(); [s.run(None, {"codes": c}) for c in codes]; t = (time.perf_counter() - t) / 4
    if p == src: ref = outs
    d = max(float(np.abs(a - b).max()) for a, b in zip(outs, ref))
    lo, hi = float(min(o.min() for o in outs)), float(max(o.max() for o in outs))
    spread = float(np.mean([o.std() for o in outs]))
    print(p, f"{t*1e3:.1f} ms/image, max diff vs fp32 {d:.4f} (pixels {lo:.3f}..{hi:.3f}, std {spread:.4f})", flush=True)
