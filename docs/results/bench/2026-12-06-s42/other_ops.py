"""Other row-dependent nodes of the depth head and decoders, alone in a 2-thread ONNX Runtime session (its kernels):
BiasGelu on (B, 1, 3584), QuickGelu (alpha 1) and Mul on (B, 1, 4864), LayerNormalization on (B, 1, 896), and an
Identity beside each for the run's own cost; us a session run, median of ROUNDS x 2000 runs.
python other_ops.py ROUNDS"""
import sys, time
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
F = TensorProto.FLOAT
rounds = int(sys.argv[1])


def model(node, shapes, ms=False):
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info(n, F, s) for n, s in shapes],
                          [helper.make_tensor_value_info("y", F, None)])
    ops = [helper.make_opsetid("", 23)] + ([helper.make_opsetid("com.microsoft", 1)] if ms else [])
    return helper.make_model(g, opset_imports=ops, ir_version=10).SerializeToString()


models = {
    "BiasGelu 3584": model(helper.make_node("BiasGelu", ["x", "b"], ["y"], domain="com.microsoft"),
                           [("x", ["B", 1, 3584]), ("b", [3584])], True),
    "Identity 3584": model(helper.make_node("Identity", ["x"], ["y"]), [("x", ["B", 1, 3584])]),
    "QuickGelu 4864": model(helper.make_node("QuickGelu", ["x"], ["y"], domain="com.microsoft", alpha=1.0),
                            [("x", ["B", 1, 4864])], True),
    "Mul 4864": model(helper.make_node("Mul", ["x", "z"], ["y"]), [("x", ["B", 1, 4864]), ("z", ["B", 1, 4864])]),
    "Identity 4864": model(helper.make_node("Identity", ["x"], ["y"]), [("x", ["B", 1, 4864])]),
    "LayerNormalization 896": model(helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1,
                                                     epsilon=1e-5), [("x", ["B", 1, 896]), ("g", [896]), ("b", [896])]),
}
o = ort.SessionOptions()
o.intra_op_num_threads = 2
rng = np.random.default_rng(0)
res = {}
for r in range(rounds):
    for B in (1, 2, 8):
        for name, m in models.items():
            s = ort.InferenceSession(m, o, providers=["CPUExecutionProvider"])
            f = {i.name: rng.standard_normal([B if d == "B" else d for d in i.shape], dtype=np.float32)
                 for i in s.get_inputs()}
            for _ in range(200):
                s.run(None, f)
            t = time.perf_counter()
            for _ in range(2000):
                s.run(None, f)
            res.setdefault((name, B), []).append((time.perf_counter() - t) / 2000 * 1e6)
for name in models:
    print(f"{name:24s} " + ", ".join(f"{B} rows {np.median(res[name, B]):.1f} us" for B in (1, 2, 8)))
