"""One SkipLayerNormalization / SkipSimplifiedLayerNormalization node (H = 896, epsilon 1e-6, as the depth head
and the decoders run them) in a 2-thread session, ONNX Runtime's kernel against ours (LIB), alternately: us a
session run (the run's own overhead, ~8-10 us, included; an Identity node beside them for it).
python norm_op.py LIB ROUNDS"""
import sys, time
import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper
F = TensorProto.FLOAT
lib, rounds = sys.argv[1], int(sys.argv[2])


def model(op, ins, outs):
    node = helper.make_node(op, ins, outs, domain="com.microsoft" if op.startswith("Skip") else "", epsilon=1e-6) \
        if op != "Identity" else helper.make_node(op, ins, outs)
    vi = [helper.make_tensor_value_info(n, F, ["B", 1, 896] if n in ("x", "skip") else [896]) for n in ins]
    g = helper.make_graph([node], "g", vi, [helper.make_tensor_value_info(n, F, None) for n in outs if n])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10).SerializeToString()


def session(m, with_lib):
    o = ort.SessionOptions()
    o.intra_op_num_threads = 2
    if with_lib:
        o.register_custom_ops_library(lib)
    return ort.InferenceSession(m, o, providers=["CPUExecutionProvider"])


ops = {"SkipLayerNormalization": (["x", "skip", "gamma", "beta"], ["y", "", "", "sum"]),
       "SkipSimplifiedLayerNormalization": (["x", "skip", "gamma"], ["y", "", "", "sum"]), "Identity": (["x"], ["y"])}
rng = np.random.default_rng(0)
res = {}
for r in range(rounds):
    for B in (1, 2, 8, 32):
        for op, (ins, outs) in ops.items():
            m = model(op, ins, outs)
            feeds = {n: rng.standard_normal((B, 1, 896) if n in ("x", "skip") else 896, dtype=np.float32) for n in ins}
            for who in (("onnxruntime", "ours") if op != "Identity" else ("onnxruntime",)):
                s = session(m, who == "ours")
                for _ in range(300):
                    s.run(None, feeds)
                t = time.perf_counter()
                for _ in range(3000):
                    s.run(None, feeds)
                res.setdefault((op, B, who), []).append((time.perf_counter() - t) / 3000 * 1e6)
    print(f"round {r} done", flush=True)
for op in ops:
    for B in (1, 2, 8, 32):
        print(f"{op:34s} {B:2d} rows: " + ", ".join(f"{who} {np.median(v):.1f} us ({', '.join(f'{x:.1f}' for x in v)})"
                                                   for (o, b, who), v in res.items() if o == op and b == B))
