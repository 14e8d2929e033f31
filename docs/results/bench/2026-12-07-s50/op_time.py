"""One DynamicQuantizeMatMul of a paper MLP shape (K x N, 7-bit weights as our exports write them) at ROWS rows,
2 threads: ONNX Runtime's kernel against unifork-rt's library (the library of the checkout on PYTHONPATH),
interleaved, best and median of REPS calls each, ROUNDS rounds. UK_CHUNK (bytes) is read by the library once.

    python op_time.py 297 896 4864 [reps 20] [rounds 3]
"""
import statistics
import sys
import time

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from unifork_rt.runtime import qmatmul

rows, k, n = (int(x) for x in sys.argv[1:4])
reps, rounds = (int(sys.argv[4]) if len(sys.argv) > 4 else 20), (int(sys.argv[5]) if len(sys.argv) > 5 else 3)
rng = np.random.default_rng(0)
b = rng.integers(-64, 65, (k, n), dtype=np.int8)
bs = rng.uniform(0.001, 0.02, n).astype(np.float32)
g = helper.make_graph([helper.make_node("DynamicQuantizeMatMul", ["A", "B", "bs"], ["Y"], domain="com.microsoft")], "g",
                      [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["m", k])],
                      [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n])],
                      [numpy_helper.from_array(b, "B"), numpy_helper.from_array(bs, "bs")])
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
model = model.SerializeToString()
lib, _ = qmatmul.build()
plain, ours = ort.SessionOptions(), ort.SessionOptions()
plain.intra_op_num_threads = ours.intra_op_num_threads = 2
ours.register_custom_ops_library(str(lib))
s = {"ort": ort.InferenceSession(model, plain), "ours": ort.InferenceSession(model, ours)}
a = {"A": rng.standard_normal((rows, k)).astype(np.float32)}
assert np.allclose(s["ort"].run(None, a)[0], s["ours"].run(None, a)[0], rtol=1e-5, atol=1e-4)
for r in range(rounds):
    line = []
    for name in ("ort", "ours") if r % 2 == 0 else ("ours", "ort"):
        t = []
        for _ in range(reps):
            t0 = time.perf_counter()
            s[name].run(None, a)
            t.append(time.perf_counter() - t0)
        line.append(f"{name} best {min(t) * 1e3:.2f} median {statistics.median(t) * 1e3:.2f} ms")
    print(f"round {r + 1} rows {rows} K {k} N {n} library {qmatmul.source_digest()[:10]}: " + "; ".join(line))
