"""fp32 MatMul chain (12 x the paper layer shapes: qkv 896x1152, o 896x896, gate+up 896x9728, down 4864x896; 716 MB)
in ONNX Runtime, 2 threads: ONNX Runtime's MatMul, or com.microsoft TransposeMatMul run by LIBRARY (our float kernel).

    python chain.py 12 TransposeMatMul "" 1,2,8,297          ONNX Runtime's kernel
    python chain.py 12 TransposeMatMul LIBRARY 1,2,8,297     ours (LIBRARY: unifork_rt.runtime.qmatmul.build()[0])
    python chain.py 2 TransposeMatMul LIBRARY 1,2,8 lm       2 lm_head matrices instead of 12 layers
    (OP MatMul: ONNX Runtime's MatMul; any other OP is written as com.microsoft OP)
"""
import os, sys, tempfile, time, numpy as np, onnx, onnxruntime as ort
PATH = os.path.join(tempfile.gettempdir(), "unifork-fchain.onnx")
from onnx import helper, TensorProto, numpy_helper
L = int(sys.argv[1]) if len(sys.argv) > 1 else 12
op = sys.argv[2] if len(sys.argv) > 2 else "MatMul"
lib = sys.argv[3] if len(sys.argv) > 3 else ""
ms = [int(v) for v in (sys.argv[4] if len(sys.argv) > 4 else "1,2,4,8").split(",")]
rng = np.random.default_rng(0)
nodes, inits = [], []
x = "x"
# LAYERS=lm: L copies of the paper lm_head (896 x 151936, 545 MB each) instead of the layer matrices
lm = len(sys.argv) > 5 and sys.argv[5] == "lm"
shapes = [(896, 151936)] if lm else [(896, 1152), (896, 896), (896, 9728), (4864, 896)]
outs = []
for l in range(L):
    for j, (k, n) in enumerate(shapes):
        w = (rng.standard_normal((k, n), dtype=np.float32) * 0.02)
        inits.append(numpy_helper.from_array(w, f"w{l}_{j}"))
        src = "x" if k == 896 else f"h{l}"  # down takes the first 4864 of gate+up
        y = f"y{l}_{j}"
        if op == "MatMul":  # else TransposeMatMul (ours with LIBRARY, ONNX Runtime's without)
            nodes.append(helper.make_node("MatMul", [src, f"w{l}_{j}"], [y]))
        else:
            nodes.append(helper.make_node(op, [src, f"w{l}_{j}"], [y], domain="com.microsoft"))
        if j == 2 and not lm:
            nodes.append(helper.make_node("Slice", [y, "s0", "s1", "ax"], [f"h{l}"]))
        outs.append(y)
inits += [numpy_helper.from_array(np.array([0], np.int64), "s0"), numpy_helper.from_array(np.array([4864], np.int64), "s1"),
          numpy_helper.from_array(np.array([-1], np.int64), "ax")]
# sum of the last elements so that every output is needed
red = []
for i, y in enumerate(outs):
    nodes.append(helper.make_node("ReduceSum", [y], [f"r{i}"], keepdims=0))
    red.append(f"r{i}")
nodes.append(helper.make_node("Sum", red, ["out"]))
g = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["m", 896])],
                      [helper.make_tensor_value_info("out", TensorProto.FLOAT, [])], inits)
model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
import os
for f in (PATH, PATH + ".data"):
    os.path.exists(f) and os.unlink(f)
onnx.save(model, PATH, save_as_external_data=True, location=os.path.basename(PATH) + ".data")
so = ort.SessionOptions(); so.intra_op_num_threads = 2
if lib:
    import ctypes; ctypes.CDLL(lib).uk_set_session_threads(2)
    so.register_custom_ops_library(lib)
s = ort.InferenceSession(PATH, so, providers=["CPUExecutionProvider"])
mb = sum(k * n for k, n in shapes) * L * 4 / 1e6
for m in ms:
    xv = rng.standard_normal((m, 896), dtype=np.float32)
    s.run(None, {"x": xv})
    ts = []
    for _ in range(15):
        t = time.perf_counter(); r = s.run(None, {"x": xv}); ts.append(time.perf_counter() - t)
    t = sorted(ts)[2]
    print(f"{op:12s} m={m}: {t*1e3:.2f} ms, {mb/t/1e3:.1f} GB/s  out={float(r[0]):.6f}")
