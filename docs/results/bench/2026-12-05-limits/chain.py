"""60 chained MatMulNBits (12 x up 896->4864, down 4864->896, gate 896->4864, down 4864->896, o 896->896), int BITS,
on our kernels in a session like the runtime's (shared spinning pool of 2): ms per pass at 1, 2, 8 rows."""
import sys, time, numpy as np, onnxruntime as ort
from onnx import helper, numpy_helper, TensorProto
sys.path.insert(0, "tests")
from test_qmatmul import matmulnbits_weights
from unifork_rt.runtime.ort_backend import session_options, share_thread_pool
from unifork_rt.runtime.qmatmul import build, set_session_threads
bits = int(sys.argv[1]); pool = sys.argv[2] if len(sys.argv) > 2 else "shared"
rng = np.random.default_rng(0)
shapes = [(896, 4864), (4864, 896), (896, 4864), (4864, 896), (896, 896)] * 12
nodes, inits, x = [], [], "A"
for i, (k, n) in enumerate(shapes):
    b, s, _, _ = matmulnbits_weights(rng, k, n, bits, 128)
    inits += [numpy_helper.from_array(b, f"B{i}"), numpy_helper.from_array(s.reshape(-1), f"S{i}")]
    nodes.append(helper.make_node("MatMulNBits", [x, f"B{i}", f"S{i}"], [f"Y{i}"], domain="com.microsoft", K=k, N=n, bits=bits, block_size=128, accuracy_level=4))
    x = f"Y{i}"
g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["b", 896])], [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["b", 896])], inits)
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]).SerializeToString()
lib = str(build()[0])
if pool == "shared": share_thread_pool(ort, 2)
set_session_threads(build()[0], 2)
o = session_options(ort, 2, spin=True); o.register_custom_ops_library(lib)
sess = ort.InferenceSession(m, o, providers=["CPUExecutionProvider"])
for rnd in range(2):
    for rows in (1, 2, 8):
        a = (rng.standard_normal((rows, 896)) * 0.01).astype(np.float32)
        for _ in range(3): sess.run(None, {"A": a})
        ts = []
        for _ in range(10):
            t = time.perf_counter(); sess.run(None, {"A": a}); ts.append(time.perf_counter() - t)
        print(f"int{bits} {pool} pool rows {rows}: median {np.median(ts)*1e3:.2f} ms, min {min(ts)*1e3:.2f}", flush=True)
