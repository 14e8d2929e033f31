"""The ORT image-decoder rewrite on a copy of a bundle's vision_decoder.onnx (into /tmp/dec_rw, which dec_q8_rw.py reads): counts, max diff, time (alternating).  python try_rewrite.py DECODER.onnx CODEBOOK_SIZE CELLS DEPTH"""
import sys, shutil, time, numpy as np, onnxruntime as ort
from pathlib import Path
from unifork_rt.export.ort_image import ort_image_decoder
src = Path(sys.argv[1]); d = Path("/tmp/dec_rw"); d.mkdir(exist_ok=True)
for f in src.parent.glob(src.name + "*"): shutil.copy(f, d / f.name)
print(ort_image_decoder(d / src.name))
o = ort.SessionOptions(); o.intra_op_num_threads = 2
s0 = ort.InferenceSession(str(src), o, providers=["CPUExecutionProvider"])
s1 = ort.InferenceSession(str(d / src.name), o, providers=["CPUExecutionProvider"])
codes = np.random.default_rng(1).integers(0, int(sys.argv[2]), (1,) + tuple(int(x) for x in sys.argv[3:5])).astype(np.int64)
y0 = s0.run(None, {"codes": codes})[0]; y1 = s1.run(None, {"codes": codes})[0]
print("max |diff|", float(np.abs(y0 - y1).max()), "out range", float(y0.min()), float(y0.max()))
t = {0: [], 1: []}
for r in range(6):
    for i, s in ((0, s0), (1, s1)) if r % 2 == 0 else ((1, s1), (0, s0)):
        a = time.perf_counter(); s.run(None, {"codes": codes}); t[i].append(time.perf_counter() - a)
print("exported ms", [round(x * 1e3) for x in t[0]], "rewritten ms", [round(x * 1e3) for x in t[1]])
print("medians", round(np.median(t[0]) * 1e3, 1), round(np.median(t[1]) * 1e3, 1))
