"""The ORT variant's image-decoder rewrites (export/ort_image.py): transposed convolutions as sub-pixel Convs, GELUs
as one Gelu node. Each against ONNX Runtime running the graph as written, max difference printed; shapes the
rewrite does not take are left alone."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import assert_close

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unifork_rt.export.ort_image import fuse_gelus, subpixel_deconvs  # noqa: E402


def _model(nodes, inits, x_shape, out="y", opset=18):
    g = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape)],
                          [helper.make_tensor_value_info(out, TensorProto.FLOAT, None)],
                          [numpy_helper.from_array(v, k) for k, v in inits.items()])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)])


def _run(model, x):
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {"x": x})[0]


def _deconv(k, pads, cin=5, cout=3, bias=True, seed=0, **attrs):
    g = np.random.default_rng(seed)
    inits = {"w": g.standard_normal((cin, cout, k, k)).astype(np.float32)}
    inputs = ["x", "w"]
    if bias:
        inits["b"] = g.standard_normal(cout).astype(np.float32)
        inputs.append("b")
    attrs = {"kernel_shape": [k, k], "strides": [2, 2], **({"pads": pads} if pads is not None else {}), **attrs}
    return helper.make_node("ConvTranspose", inputs, ["y"], name="up", **attrs), inits


@pytest.mark.parametrize("k,pads", [(4, [1, 1, 1, 1]), (2, [0, 0, 0, 0])])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("hw", [(1, 1), (3, 5), (8, 8)])
def test_subpixel_equals_conv_transpose(k, pads, bias, hw):
    node, inits = _deconv(k, pads, bias=bias)
    x = np.random.default_rng(1).standard_normal((2, 5) + hw).astype(np.float32)
    m = _model([node], inits, [2, 5, *hw])
    want = _run(m, x)
    assert subpixel_deconvs(m) == 1
    ops = [n.op_type for n in m.graph.node]
    assert "ConvTranspose" not in ops and ops[-1] == "DepthToSpace" and "w" not in {t.name for t in m.graph.initializer}
    got = _run(m, x)
    assert got.shape == want.shape == (2, 3, 2 * hw[0], 2 * hw[1])
    assert_close(f"sub-pixel k={k} bias={bias} {hw}", got, want, 1e-5)


@pytest.mark.parametrize("k,pads,attrs", [
    (3, [1, 1, 1, 1], {}),  # another kernel
    (4, [0, 0, 0, 0], {}),  # kernel 4 without its pads
    (2, [1, 1, 1, 1], {}),  # kernel 2 with pads
    (4, [1, 1, 1, 1], {"strides": [1, 1]}),
    (4, [1, 1, 1, 1], {"group": 5}),  # grouped (cin = cout = 5 per group of 1)
    (4, [1, 1, 1, 1], {"output_padding": [1, 1]}),
    (4, [1, 1, 1, 1], {"output_shape": [8, 8]}),
    (4, None, {"auto_pad": "SAME_UPPER"}),
    (2, [0, 0, 0, 0], {"dilations": [2, 2]}),
])
def test_subpixel_leaves_other_shapes(k, pads, attrs):
    cout = 1 if "group" in attrs else 3
    node, inits = _deconv(k, pads, cout=cout, **attrs)
    m = _model([node], inits, [1, 5, 4, 4])
    before = m.SerializeToString()
    assert subpixel_deconvs(m) == 0
    assert m.SerializeToString() == before


def test_subpixel_leaves_another_domains_conv_transpose():
    node, inits = _deconv(4, [1, 1, 1, 1])
    node.domain = "example.custom"
    m = _model([node], inits, [1, 5, 4, 4])
    assert subpixel_deconvs(m) == 0


def test_subpixel_leaves_a_computed_bias_and_an_overridable_weight():
    """A bias that is not an initializer, or a weight that is also a graph input (a caller may feed another), is not
    folded into new weights."""
    node, inits = _deconv(2, [0, 0, 0, 0])
    bias = inits.pop("b")
    inits["b0"] = bias
    m = _model([helper.make_node("Identity", ["b0"], ["b"]), node], inits, [1, 5, 4, 4])
    assert subpixel_deconvs(m) == 0
    node, inits = _deconv(4, [1, 1, 1, 1])
    m = _model([node], inits, [1, 5, 4, 4])
    m.graph.input.append(helper.make_tensor_value_info("w", TensorProto.FLOAT, [5, 3, 4, 4]))
    assert subpixel_deconvs(m) == 0


def test_subpixel_keeps_a_shared_weight():
    """Two ConvTransposes on one weight: both rewritten, and a third reader of the weight keeps it."""
    node, inits = _deconv(4, [1, 1, 1, 1])
    second = helper.make_node("ConvTranspose", ["x", "w", "b"], ["y2"], name="up2", kernel_shape=[4, 4],
                              strides=[2, 2], pads=[1, 1, 1, 1])
    keep = helper.make_node("ReduceSum", ["w"], ["wsum"], keepdims=0)
    add = helper.make_node("Add", ["y", "y2"], ["y3"])
    out = helper.make_node("Add", ["y3", "wsum"], ["out"])
    m = _model([node, second, keep, add, out], inits, [1, 5, 3, 3], out="out")
    x = np.random.default_rng(4).standard_normal((1, 5, 3, 3)).astype(np.float32)
    want = _run(m, x)
    assert subpixel_deconvs(m) == 2
    assert "w" in {t.name for t in m.graph.initializer}
    assert_close("two sub-pixel rewrites of one weight", _run(m, x), want, 1e-5)


def _gelu_nodes(x="x", out="y", tag=""):
    """torch.onnx's exact GELU: x * (0.5 * (1 + erf(x / sqrt 2)))."""
    return [helper.make_node("Div", [x, "sqrt2"], [f"d{tag}"]), helper.make_node("Erf", [f"d{tag}"], [f"e{tag}"]),
            helper.make_node("Add", [f"e{tag}", "one"], [f"a{tag}"]),
            helper.make_node("Mul", ["half", f"a{tag}"], [f"h{tag}"]), helper.make_node("Mul", [x, f"h{tag}"], [out])]


GELU_CONSTS = {"sqrt2": np.array(np.sqrt(2), np.float32), "one": np.array(1, np.float32),
               "half": np.array(0.5, np.float32)}


def test_gelu_fused_and_equal():
    nodes = _gelu_nodes(out="g1", tag="1") + _gelu_nodes(x="g1", out="y", tag="2")  # two, sharing the constants
    m = _model(nodes, dict(GELU_CONSTS), [4, 300])
    x = (np.random.default_rng(2).standard_normal((4, 300)) * 4).astype(np.float32)
    want = _run(m, x)
    assert fuse_gelus(m) == 2
    assert [(n.op_type, n.domain) for n in m.graph.node] == [("Gelu", "com.microsoft")] * 2
    assert not m.graph.initializer  # the constants only the GELUs read are gone
    assert_close("two GELUs fused", _run(m, x), want, 1e-6)


def test_gelu_not_fused_when_inside_is_read():
    """An inner value that another node reads, or that is a graph output, keeps the pattern as it is."""
    nodes = _gelu_nodes(out="g") + [helper.make_node("Add", ["g", "e"], ["y"])]
    m = _model(nodes, dict(GELU_CONSTS), [2, 8])
    assert fuse_gelus(m) == 0
    m = _model(_gelu_nodes(), dict(GELU_CONSTS), [2, 8])
    m.graph.output.append(helper.make_tensor_value_info("h", TensorProto.FLOAT, None))
    before = m.SerializeToString()
    assert fuse_gelus(m) == 0 and m.SerializeToString() == before


def test_gelu_of_another_operand_not_fused():
    """y * (0.5 * (1 + erf(x / sqrt 2))) with y not x is not a GELU."""
    nodes = [helper.make_node("Neg", ["x"], ["n"])] + _gelu_nodes(x="x")
    nodes[-1] = helper.make_node("Mul", ["n", "h"], ["y"])
    m = _model(nodes, dict(GELU_CONSTS), [2, 8])
    assert fuse_gelus(m) == 0


def test_gelu_constants_read_elsewhere_are_kept():
    """The chain's scalars go only where nothing else reads them: here `one` also feeds an Add, and `half` is also a
    graph output; other initializers are never touched."""
    nodes = _gelu_nodes(out="g") + [helper.make_node("Add", ["g", "one"], ["y"])]
    consts = {**GELU_CONSTS, "unused": np.zeros(3, np.float32)}
    m = _model(nodes, consts, [2, 8])
    m.graph.output.append(helper.make_tensor_value_info("half", TensorProto.FLOAT, []))
    x = np.linspace(-4, 4, 16, dtype=np.float32).reshape(2, 8)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    want = s.run(["y"], {"x": x})[0]
    assert fuse_gelus(m) == 1
    assert {t.name for t in m.graph.initializer} == {"one", "half", "unused"}
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    assert_close("GELU beside other readers", s.run(["y"], {"x": x})[0], want, 1e-6)


@pytest.mark.parametrize("const,value", [("sqrt2", 2.0), ("sqrt2", 1.41), ("half", 0.25), ("one", 2.0),
                                         ("half", np.full((1, 1, 1), 0.5, np.float32))])  # one value, more axes
def test_gelu_other_constants_not_fused(const, value):
    consts = {**GELU_CONSTS, const: np.asarray(value, np.float32)}
    m = _model(_gelu_nodes(), consts, [2, 8])
    assert fuse_gelus(m) == 0
