"""A chain of 80 x 2 MatMulNBits (896x3584, 3584x896, Tanh between; 257 MB at int4, past the 105 MB L3)
run by our kernel library in ONNX Runtime, at 1 / 2 / 8 rows, 2 threads, spinning off: min of 7 runs.

    python chain.py LIBRARY BITS [BLOCK]      # LIBRARY: python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])"
"""
import numpy as np, onnxruntime as ort, sys, time
from onnx import helper, TensorProto, numpy_helper
rng = np.random.default_rng(0)
def model(K, N, bits, block, bias=False):
    kp = -(-K // block) * block; nb = kp // block
    q = rng.integers(0, 1 << bits, size=(N, kp), dtype=np.uint8)
    B = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8) if bits == 4 else q
    B = B.reshape(N, nb, block * bits // 8)
    S = rng.uniform(0.001, 0.02, size=(N * nb,)).astype(np.float32)
    inits = [numpy_helper.from_array(B, "B"), numpy_helper.from_array(S, "S")]
    ins = ["A", "B", "S"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(N).astype(np.float32), "bias")); ins += ["", "", "bias"]
    node = helper.make_node("MatMulNBits", ins, ["Y"], domain="com.microsoft", K=K, N=N, bits=bits, block_size=block, accuracy_level=4)
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["b", "t", K])],
                          [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["b", "t", N])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return m.SerializeToString()

from onnx import helper, TensorProto, numpy_helper
lib = sys.argv[1]
def chain(L=20, bits=4, block=128):
    nodes, inits = [], []
    x = "A"
    for l in range(L):
        for (K, N) in ((896, 3584), (3584, 896)):
            kp = K; nb = kp // block
            q = rng.integers(0, 1 << bits, size=(N, kp), dtype=np.uint8)
            B = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8) if bits == 4 else q
            B = B.reshape(N, nb, block * bits // 8)
            S = rng.uniform(0.001, 0.002, size=(N * nb,)).astype(np.float32)
            bn, sn, y = f"B{l}_{K}", f"S{l}_{K}", f"Y{l}_{K}"
            inits += [numpy_helper.from_array(B, bn), numpy_helper.from_array(S, sn)]
            nodes.append(helper.make_node("MatMulNBits", [x, bn, sn], [y], domain="com.microsoft", K=K, N=N, bits=bits, block_size=block, accuracy_level=4))
            x = y
        nodes.append(helper.make_node("Tanh", [x], [f"T{l}"])); x = f"T{l}"
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["b", 896])],
                          [helper.make_tensor_value_info(x, TensorProto.FLOAT, ["b", 896])], inits)
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)]).SerializeToString()
bits = int(sys.argv[2])
blk = int(sys.argv[3]) if len(sys.argv) > 3 else (128 if bits == 4 else 32); mb = chain(L=80, bits=bits, block=blk)
for spin in ("0",):
    sess = {}
    for name in ("ours",):
        o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.add_session_config_entry("session.intra_op.allow_spinning", spin)
        if name == "ours": o.register_custom_ops_library(lib)
        sess[name] = ort.InferenceSession(mb, o)
    for M in (1, 2, 8):
        a = rng.standard_normal((M, 896)).astype(np.float32)
        res = {}
        for name, s in sess.items():
            s.run(None, {"A": a}); ts = []
            for r in range(7 if M < 100 else 2):
                t0 = time.perf_counter(); s.run(None, {"A": a}); ts.append(time.perf_counter() - t0)
            res[name] = min(ts) * 1e3
        print(f"spin={spin} bits={bits} M={M}: ours {res['ours']:.2f} ms (per 80x2 chain)")
