"""The paper decoder's four ConvTranspose layers (k 4, stride 2, pad 1) against the same maps as four 2x2 phase
Convs + Concat + DepthToSpace, alone in ONNX Runtime (2 threads, best of 5): python convt_phases.py"""
import time, numpy as np, onnxruntime as ort
from onnx import helper, TensorProto, numpy_helper
from unifork_rt.runtime.ort_backend import session_options
rng = np.random.default_rng(0)
def timeit(model, feeds, n=5):
    s = ort.InferenceSession(model, session_options(ort, 2), providers=["CPUExecutionProvider"])
    for _ in range(2): out = s.run(None, feeds)
    best = 1e9
    for _ in range(n):
        t = time.perf_counter(); s.run(None, feeds); best = min(best, time.perf_counter() - t)
    return best, out[0]
for cin, cout, H in ((512, 256, 16), (256, 256, 32), (256, 128, 64), (128, 128, 128)):
    W = (rng.standard_normal((cin, cout, 4, 4)) * 0.05).astype(np.float32)
    b = rng.standard_normal(cout).astype(np.float32)
    x = rng.standard_normal((1, cin, H, H)).astype(np.float32)
    inp = [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, cin, H, H])]
    out = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    g1 = helper.make_graph([helper.make_node("ConvTranspose", ["x", "W", "b"], ["y"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1])],
                           "g", inp, out, [numpy_helper.from_array(W, "W"), numpy_helper.from_array(b, "b")])
    m1 = helper.make_model(g1, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    # phases: a (rows) 0 -> taps (ky=3 at i-1, ky=1 at i): pad top 1; 1 -> (ky=2 at i, ky=0 at i+1): pad bottom 1
    taps = {0: [3, 1], 1: [2, 0]}
    nodes, inits = [], [numpy_helper.from_array(b, "b")]
    names = []
    for a in (0, 1):
        for c in (0, 1):
            K = W[:, :, taps[a], :][:, :, :, taps[c]]  # cin, cout, 2, 2
            Kc = np.ascontiguousarray(K.transpose(1, 0, 2, 3))
            inits.append(numpy_helper.from_array(Kc, f"K{a}{c}"))
            pads = [1 if a == 0 else 0, 1 if c == 0 else 0, 0 if a == 0 else 1, 0 if c == 0 else 1]
            nodes.append(helper.make_node("Conv", ["x", f"K{a}{c}", "b"], [f"y{a}{c}"], kernel_shape=[2, 2], pads=pads))
            names.append(f"y{a}{c}")
    nodes.append(helper.make_node("Concat", names, ["cat"], axis=1))
    nodes.append(helper.make_node("DepthToSpace", ["cat"], ["y"], blocksize=2, mode="DCR"))
    g2 = helper.make_graph(nodes, "g", inp, out, inits)
    m2 = helper.make_model(g2, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    t1, y1 = timeit(m1, {"x": x}); t2, y2 = timeit(m2, {"x": x})
    print(f"{cin}->{cout} at {H}x{H}: ConvTranspose {t1*1e3:.1f} ms, 4 phase convs {t2*1e3:.1f} ms, max diff {np.abs(y1 - y2).max():.2e}")
