import numpy as np, onnx, onnxruntime as ort, time
from onnx import helper as h, TensorProto as T, numpy_helper as nh
rng = np.random.default_rng(0)
C, H = 128, 128
W = rng.standard_normal((C, C, 4, 4)).astype(np.float32) * 0.05   # ConvTranspose weight: (Cin, Cout, kh, kw)
b = rng.standard_normal(C).astype(np.float32)
x = rng.standard_normal((1, C, H, H)).astype(np.float32)
def sess(g):
    o = ort.SessionOptions(); o.intra_op_num_threads = 2; o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(h.make_model(g, opset_imports=[h.make_opsetid("", 17)]).SerializeToString(), o, providers=["CPUExecutionProvider"])
g1 = h.make_graph([h.make_node("ConvTranspose", ["x", "W", "b"], ["y"], strides=[2, 2], pads=[1, 1, 1, 1], kernel_shape=[4, 4])],
                  "ct", [h.make_tensor_value_info("x", T.FLOAT, [1, C, H, H])], [h.make_tensor_value_info("y", T.FLOAT, None)],
                  [nh.from_array(W, "W"), nh.from_array(b, "b")])
# sub-pixel: y[2i+a, 2j+c] = sum_{ci,u,v} x[ci, i+a-1+u? ...] -- derive: y[o] = sum_{i,k: o = 2i - 1 + k} x[i] W[k]
# output o = 2m + a: k = o + 1 - 2i = 2m + a + 1 - 2i, k in 0..3. For a=0: k = 1 + 2(m-i) -> i=m (k=1), i=m+1? k=-1 no; i=m-1 -> k=3. taps (i=m-1,k=3),(i=m,k=1)
# a=1: k = 2 + 2(m-i): i=m (k=2), i=m+1 (k=0). So with input padded by 1 (xp[t] = x[t-1]), phase a uses xp[m + s] for s in {0,1}:
#   a=0: s=0 -> i=m-1 (k=3), s=1 -> i=m (k=1);  a=1: s=0 -> i=m (k=2), s=1 -> i=m+1 (k=0) but that is xp[m+2]...
# so phase 1 needs window xp[m+1], xp[m+2]: a 2x2 conv over xp gives out[t] = sum_s xp[t+s] K[s]; phase 0 at t=m, phase 1 at t=m+1.
K = np.zeros((4 * C, C, 2, 2), np.float32)   # Conv weight (Cout*4, Cin, 2, 2); channel = (a*2+c)*C + co
tap = {0: {0: 3, 1: 1}, 1: {0: 2, 1: 0}}
for a in (0, 1):
    for c in (0, 1):
        for s in (0, 1):
            for t in (0, 1):
                K[(a * 2 + c) * C:(a * 2 + c + 1) * C, :, s, t] = W[:, :, tap[a][s], tap[c][t]].T
B4 = np.tile(b, 4)
# conv over x padded by 1: out (H+1, H+1); phase (a, c) = out[a:a+H, c:c+H]
nodes = [h.make_node("Conv", ["x", "K", "B4"], ["z"], pads=[1, 1, 1, 1], kernel_shape=[2, 2])]
outs = []
for a in (0, 1):
    for c in (0, 1):
        n = f"p{a}{c}"
        nodes.append(h.make_node("Slice", ["z", f"st{a}{c}", f"en{a}{c}", "ax"], [n]))
        outs.append(n)
inits = [nh.from_array(K, "K"), nh.from_array(B4, "B4"), nh.from_array(np.array([1, 2, 3], np.int64), "ax")]
for a in (0, 1):
    for c in (0, 1):
        ch = a * 2 + c
        inits += [nh.from_array(np.array([ch * C, a, c], np.int64), f"st{a}{c}"), nh.from_array(np.array([(ch + 1) * C, a + H, c + H], np.int64), f"en{a}{c}")]
# interleave: stack phases -> (1, 2(a), 2(c), C, H, H) -> (1, C, H, a, H, c) -> reshape (1, C, 2H, 2H)
nodes.append(h.make_node("Concat", outs, ["cat"], axis=0))                  # (4, C, H, H) order a*2+c
nodes.append(h.make_node("Reshape", ["cat", "s1"], ["r1"]))                   # (2, 2, C, H, H)
nodes.append(h.make_node("Transpose", ["r1"], ["tr"], perm=[2, 3, 0, 4, 1]))  # (C, H, a, H, c)
nodes.append(h.make_node("Reshape", ["tr", "s2"], ["y"]))
inits += [nh.from_array(np.array([2, 2, C, H, H], np.int64), "s1"), nh.from_array(np.array([1, C, 2 * H, 2 * H], np.int64), "s2")]
g2 = h.make_graph(nodes, "sp", [h.make_tensor_value_info("x", T.FLOAT, [1, C, H, H])], [h.make_tensor_value_info("y", T.FLOAT, None)], inits)
s1, s2 = sess(g1), sess(g2)
y1 = s1.run(None, {"x": x})[0]; y2 = s2.run(None, {"x": x})[0]
print("shapes", y1.shape, y2.shape, "max diff", float(np.abs(y1 - y2).max()), "max |y|", float(np.abs(y1).max()))
for rnd in range(3):
    for name, s in (("convT", s1), ("subpixel", s2)):
        ts = []
        for _ in range(5):
            t = time.perf_counter(); s.run(None, {"x": x}); ts.append(time.perf_counter() - t)
        print(rnd, name, "%.1f ms" % (np.median(ts) * 1e3))
