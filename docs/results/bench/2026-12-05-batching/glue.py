"""Per-node cost of the trunk's glue ops at 1, 2, 8 rows: chains of 24 nodes, ORT CPU, 2 threads."""
import time, numpy as np, onnx, onnxruntime as ort
from onnx import helper as h, TensorProto as T
H, F, L = 896, 4864, 24
def chain(op, width, domain="com.microsoft"):
    nodes, inits = [], []
    x = "x"
    g = np.random.rand(width).astype(np.float32)
    inits.append(onnx.numpy_helper.from_array(g, "g"))
    for i in range(L):
        y = f"y{i}"
        if op == "SkipSimplifiedLayerNormalization":
            nodes.append(h.make_node(op, [x, "x", "g"], [y], domain=domain, epsilon=1e-6))
        elif op == "QuickGelu":
            nodes.append(h.make_node(op, [x], [y], domain=domain, alpha=1.0))
        elif op == "Mul":
            nodes.append(h.make_node("Mul", [x, "x"], [y]))
        elif op == "Add":
            nodes.append(h.make_node("Add", [x, "x"], [y]))
        x = y
    graph = h.make_graph(nodes, "c", [h.make_tensor_value_info("x", T.FLOAT, ["B", width])],
                         [h.make_tensor_value_info(x, T.FLOAT, ["B", width])], inits)
    m = h.make_model(graph, opset_imports=[h.make_opsetid("", 17), h.make_opsetid("com.microsoft", 1)])
    return m.SerializeToString()
so = ort.SessionOptions(); so.intra_op_num_threads = 2
for op, w in (("SkipSimplifiedLayerNormalization", H), ("QuickGelu", F), ("Mul", F), ("Add", H)):
    s = ort.InferenceSession(chain(op, w), so, providers=["CPUExecutionProvider"])
    res = []
    for rows in (1, 2, 8):
        x = (np.random.rand(rows, w).astype(np.float32) - 0.5) * 0.1
        for _ in range(50): s.run(None, {"x": x})
        ts = []
        for _ in range(200):
            t = time.perf_counter(); s.run(None, {"x": x}); ts.append(time.perf_counter() - t)
        res.append(f"{rows} rows {np.median(ts) / L * 1e6:.1f} us/node")
    print(f"{op:34s} width {w}: " + ", ".join(res), flush=True)
