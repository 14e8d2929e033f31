"""The int8 bundle's image decoder at batch 1 and 4: ms per image, 2 threads. python decb.py"""
import time, numpy as np, onnxruntime as ort
from unifork_rt.runtime.ort_backend import session_options
src = "runs/bench3/paper/bundle-int8-ort/vision_decoder.onnx"
s = ort.InferenceSession(src, session_options(ort, 2, spin=True), providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
for B in (1, 4, 1, 4):
    c = rng.integers(0, 1024, (B, 256, 4)).astype(np.int64)
    s.run(None, {"codes": c})
    t = time.perf_counter(); s.run(None, {"codes": c}); s.run(None, {"codes": c}); t = (time.perf_counter() - t) / 2
    print(B, f"{t*1e3/B:.1f} ms/image")
