"""Prototype: ConvTranspose(k=4, s=2, p=1) -> 4 phase Convs (2x2) + Concat + DepthToSpace; time and diff."""
import sys, time, numpy as np, onnx, onnxruntime as ort
from onnx import helper, numpy_helper
src = sys.argv[1]
m = onnx.load(src)
inits = {t.name: t for t in m.graph.initializer}
nodes = []
for n in m.graph.node:
    if n.op_type != "ConvTranspose":
        nodes.append(n); continue
    a = {x.name: helper.get_attribute_value(x) for x in n.attribute}
    assert a["strides"] == [2, 2] and a["kernel_shape"] == [4, 4] and a["pads"] == [1, 1, 1, 1] and a.get("group", 1) == 1
    w = numpy_helper.to_array(inits[n.input[1]])  # (Cin, Cout, 4, 4)
    bias = n.input[2] if len(n.input) > 2 else ""
    # phase a (row offset) uses taps (k for x[m-1], k for x[m]) ; a=0: [w3, w1] pads (1,0); a=1: [w2, w0] pads (0,1)
    taps = {0: ([3, 1], (1, 0)), 1: ([2, 0], (0, 1))}
    outs = []
    for pa in (0, 1):
        for pb in (0, 1):
            ka, (ta, ba) = taps[pa]; kb, (tb, bb) = taps[pb]
            k = w[:, :, ka][:, :, :, kb].transpose(1, 0, 2, 3).copy()  # (Cout, Cin, 2, 2)
            wn = f"{n.name}.p{pa}{pb}.w"
            m.graph.initializer.append(numpy_helper.from_array(k, wn))
            o = f"{n.output[0]}.p{pa}{pb}"
            nodes.append(helper.make_node("Conv", [n.input[0], wn] + ([bias] if bias else []), [o], name=o,
                                          kernel_shape=[2, 2], pads=[ta, tb, ba, bb]))
            outs.append(o)
    cat = f"{n.output[0]}.cat"
    nodes.append(helper.make_node("Concat", outs, [cat], axis=1, name=cat))
    nodes.append(helper.make_node("DepthToSpace", [cat], [n.output[0]], blocksize=2, mode="DCR", name=f"{n.name}.d2s"))
    m.graph.initializer.remove(inits[n.input[1]])
m.graph.ClearField("node"); m.graph.node.extend(nodes)
onnx.save(m, "/tmp/dec_sub.onnx", save_as_external_data=True, location="dec_sub.onnx.data")
so = ort.SessionOptions(); so.intra_op_num_threads = 2
s0 = ort.InferenceSession(src, so, providers=["CPUExecutionProvider"])
s1 = ort.InferenceSession("/tmp/dec_sub.onnx", so, providers=["CPUExecutionProvider"])
rng = np.random.default_rng(0)
codes = rng.integers(0, 16384, (1, 256, 4)).astype(np.int64)
y0 = s0.run(None, {"codes": codes})[0]; y1 = s1.run(None, {"codes": codes})[0]
print("max |diff|", float(np.abs(y0 - y1).max()), "range", float(y0.min()), float(y0.max()))
for r in range(4):
    for name, s in (("convT", s0), ("subpixel", s1)):
        t = time.perf_counter()
        for _ in range(3): s.run(None, {"codes": codes})
        print(r, name, round((time.perf_counter() - t) / 3 * 1e3, 1), "ms", flush=True)
