"""The TensorRT op checker on small ONNX graphs built with onnx.helper (no TensorRT needed).

The two "mirror" graphs use the op types our exported graphs use (docs/GRAPHS.md): a text
block (embedding gather, RMSNorm, RoPE, masked attention, SwiGLU/GELU) and an image block
(conv encoder, nearest-code ArgMin, transposed-conv decoder).
"""

from __future__ import annotations

import json

import numpy as np
import pytest


onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unifork_rt.engines import opcheck  # noqa: E402

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL


def init(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def model(nodes, inputs, outputs, inits=(), opset=18, functions=()):
    graph = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], functions=list(functions))
    m.ir_version = 9
    return m


def text_block():
    """x (2, 3, 8), ids (2, 3), pos (), start (2,) -> y (2, 3, 8): the ops of trunk/branches."""
    n = helper.make_node
    nodes = [
        n("Gather", ["E", "ids"], ["emb"]),                                  # (2, 3, 8)
        n("Add", ["x", "emb"], ["h"]),
        n("Pow", ["h", "two"], ["sq"]),                                      # RMSNorm
        n("ReduceMean", ["sq", "last"], ["ms"], keepdims=1),
        n("Add", ["ms", "eps"], ["mse"]),
        n("Sqrt", ["mse"], ["rms"]),
        n("Div", ["h", "rms"], ["hn"]),
        n("MatMul", ["hn", "W"], ["q"]),                                     # (2, 3, 8)
        n("Sigmoid", ["q"], ["sg"]), n("Mul", ["q", "sg"], ["silu"]),       # SwiGLU
        n("Erf", ["q"], ["erf"]), n("Tanh", ["q"], ["tanh"]),               # GELU variants
        n("Add", ["pos", "three"], ["lim"]),                                 # RoPE positions
        n("Range", ["pos", "lim", "one"], ["p"]),                           # (3,)
        n("Unsqueeze", ["p", "zero_axis"], ["p2"]),                         # (1, 3)
        n("Unsqueeze", ["start", "last_axis"], ["s2"]),                     # (2, 1)
        n("Sub", ["p2", "s2"], ["rel"]),                                     # (2, 3)
        n("Clip", ["rel", "zero_i"], ["relc"]),
        n("Cast", ["relc"], ["relf"], to=F),
        n("Unsqueeze", ["relf", "last_axis"], ["ang"]),                     # (2, 3, 1)
        n("Sin", ["ang"], ["sin"]), n("Cos", ["ang"], ["cos"]), n("Neg", ["q"], ["nq"]),
        n("Mul", ["q", "cos"], ["qc"]), n("Mul", ["nq", "sin"], ["qs"]), n("Add", ["qc", "qs"], ["rot"]),
        n("Less", ["p2", "s2"], ["pad"]), n("GreaterOrEqual", ["p2", "s2"], ["real"]),   # masks (2, 3)
        n("Equal", ["p2", "s2"], ["first"]), n("Not", ["pad"], ["notpad"]),
        n("And", ["real", "notpad"], ["keep"]), n("Unsqueeze", ["keep", "last_axis"], ["keep3"]),
        n("Expand", ["keep3", "shape3"], ["keepx"]),                        # (2, 3, 8)
        n("Where", ["keepx", "rot", "neg"], ["masked"]),
        n("Softmax", ["masked"], ["att"], axis=-1),
        n("Transpose", ["att"], ["attT"], perm=[0, 2, 1]),                  # (2, 8, 3)
        n("Reshape", ["attT", "flat"], ["attR"]),                           # (2, 24)
        n("Slice", ["attR", "s0", "s1", "last_axis"], ["sl"]),             # (2, 8)
        n("Unsqueeze", ["sl", "one_axis"], ["sl3"]),                        # (2, 1, 8)
        n("Concat", ["sl3", "silu"], ["cat"], axis=1),                      # (2, 4, 8)
        n("ReduceSum", ["cat", "one_axis"], ["red"], keepdims=0),          # (2, 8)
        n("Unsqueeze", ["red", "one_axis"], ["red3"]),
        n("Add", ["red3", "erf"], ["y0"]), n("Add", ["y0", "tanh"], ["y"]),
    ]
    inits = [init("E", np.ones((16, 8), np.float32)), init("W", np.eye(8, dtype=np.float32)),
             init("two", np.float32(2)), init("eps", np.float32(1e-6)), init("last", np.array([-1])),
             init("three", np.int64(3)), init("one", np.int64(1)), init("zero_axis", np.array([0])),
             init("last_axis", np.array([-1])), init("one_axis", np.array([1])), init("zero_i", np.int64(0)),
             init("shape3", np.array([2, 3, 8])), init("neg", np.float32(-1e9)), init("flat", np.array([2, 24])),
             init("s0", np.array([0])), init("s1", np.array([8]))]
    inputs = [helper.make_tensor_value_info("x", F, [2, 3, 8]), helper.make_tensor_value_info("ids", I64, [2, 3]),
              helper.make_tensor_value_info("pos", I64, []), helper.make_tensor_value_info("start", I64, [2])]
    return model(nodes, inputs, [helper.make_tensor_value_info("y", F, [2, 3, 8])], inits)


def image_block():
    """pixels (1, 3, 8, 8) -> codes (1, 4) and pixels (1, 3, 8, 8): the ops of the RQ-VAE graphs."""
    n = helper.make_node
    nodes = [
        n("Conv", ["pixels", "Wc"], ["f"], strides=[4, 4], kernel_shape=[4, 4]),     # (1, 4, 2, 2)
        n("Reshape", ["f", "cells"], ["fc"]),                                        # (1, 4, 4)
        n("Transpose", ["fc"], ["ft"], perm=[0, 2, 1]),                              # (1, 4 cells, 4 dims)
        n("Unsqueeze", ["ft", "axis2"], ["fu"]),                                     # (1, 4, 1, 4)
        n("Sub", ["fu", "book"], ["d"]),                                             # (1, 4, 5, 4)
        n("Mul", ["d", "d"], ["d2"]),
        n("ReduceSum", ["d2", "last"], ["dist"], keepdims=0),                        # (1, 4, 5)
        n("ArgMin", ["dist"], ["codes"], axis=-1, keepdims=0),                       # (1, 4) int64
        n("Gather", ["book", "codes"], ["q"]),                                       # (1, 4, 4)
        n("Transpose", ["q"], ["qt"], perm=[0, 2, 1]),
        n("Reshape", ["qt", "grid"], ["qg"]),                                        # (1, 4, 2, 2)
        n("ConvTranspose", ["qg", "Wd"], ["up"], strides=[4, 4], kernel_shape=[4, 4]),   # (1, 3, 8, 8)
        n("Clip", ["up", "lo", "hi"], ["out"]),
    ]
    inits = [init("Wc", np.ones((4, 3, 4, 4), np.float32)), init("cells", np.array([1, 4, 4])),
             init("axis2", np.array([2])), init("book", np.ones((5, 4), np.float32)), init("last", np.array([-1])),
             init("grid", np.array([1, 4, 2, 2])), init("Wd", np.ones((4, 3, 4, 4), np.float32)),
             init("lo", np.float32(-1)), init("hi", np.float32(1))]
    return model(nodes, [helper.make_tensor_value_info("pixels", F, [1, 3, 8, 8])],
                 [helper.make_tensor_value_info("codes", I64, [1, 4]),
                  helper.make_tensor_value_info("out", F, [1, 3, 8, 8])],
                 inits)


def one_op(op, in_type=F, out_type=F, domain="", **attrs):
    node = helper.make_node(op, ["a", "b"], ["c"], domain=domain, **attrs)
    m = model([node], [helper.make_tensor_value_info("a", in_type, [2]),
                       helper.make_tensor_value_info("b", in_type, [2])],
              [helper.make_tensor_value_info("c", out_type, [2])])
    if domain:
        m.opset_import.append(helper.make_opsetid(domain, 1))
    return m


def errors(problems):
    return [p for p in problems if p.severity == "error"]


# --- the table --------------------------------------------------------------------------------
def test_table_rows():
    t = opcheck.load_table()
    assert len(t) > 180
    assert t["MatMul"].supported and t["MatMul"].types == {"FP32", "FP16", "BF16"}
    assert not t["MatMulInteger"].supported and not t["DynamicQuantizeLinear"].supported
    assert "INT64" in t["ConstantOfShape"].types  # the upstream 'INF64' typo, read as INT64
    assert t["ReduceMean"].constant_inputs == ("axes",)
    assert t["Unsqueeze"].constant_inputs == ("axes",)
    assert t["CumSum"].constant_inputs == ("axis",)


# --- graphs that mirror ours pass ----------------------------------------------------------
@pytest.mark.parametrize("build", [text_block, image_block])
def test_mirror_graphs_are_valid_onnx_and_pass(build):
    m = build()
    onnx.checker.check_model(m, full_check=True)
    problems = opcheck.check_graph(m, "mirror")
    assert errors(problems) == [], "\n".join(map(str, problems))


def test_mirror_graphs_cover_our_op_types():
    ops = set(opcheck.op_counts(text_block())) | set(opcheck.op_counts(image_block()))
    ours = {"MatMul", "Add", "Mul", "Softmax", "Where", "Gather", "Concat", "Reshape", "Transpose", "Cast", "Range",
            "Expand", "ReduceMean", "Sqrt", "Div", "Sigmoid", "Conv", "ConvTranspose", "ArgMin", "Equal", "Less",
            "GreaterOrEqual", "And", "Not", "Unsqueeze", "Slice", "Sin", "Cos", "Neg", "ReduceSum", "Pow", "Erf",
            "Tanh", "Clip", "Sub"}
    assert ours <= ops, ours - ops


def test_int64_clip_is_a_warning_not_an_error():
    # the table lists Clip for float types only; onnx-tensorrt's importer also takes INT32/INT64
    problems = opcheck.check_graph(text_block(), "trunk")
    assert [(p.op, p.severity) for p in problems] == [("Clip", "warning")]
    assert "INT64" in problems[0].message and "trunk" in str(problems[0])


# --- what fails ------------------------------------------------------------------------------
def test_made_up_op_is_an_error():
    (p,) = opcheck.check_graph(one_op("FusedEverything"), "g")
    assert p.severity == "error" and "not in TensorRT's ONNX operator table" in p.message


@pytest.mark.parametrize("op", ["MatMulInteger", "BitShift", "STFT"])
def test_n_marked_op_is_an_error(op):
    problems = errors(opcheck.check_graph(one_op(op, direction="LEFT") if op == "BitShift" else one_op(op), "g"))
    assert [p.op for p in problems] == [op] and "marked unsupported (N)" in problems[0].message


def test_custom_domain_op_is_an_error():
    (p,) = opcheck.check_graph(one_op("GroupQueryAttention", domain="com.microsoft"), "g")
    assert p.severity == "error" and p.op == "com.microsoft::GroupQueryAttention" and "plugin" in p.message


def test_double_is_an_error():
    problems = errors(opcheck.check_graph(one_op("Add", TensorProto.DOUBLE, TensorProto.DOUBLE), "g"))
    text = "\n".join(map(str, problems))
    assert "graph input 'a' is DOUBLE" in text and "input 'a' is DOUBLE, a type TensorRT does not have" in text


def test_cast_to_double_is_an_error():
    node = helper.make_node("Cast", ["a"], ["c"], to=TensorProto.DOUBLE)
    node2 = helper.make_node("Cast", ["c"], ["d"], to=F)
    m = model([node, node2], [helper.make_tensor_value_info("a", F, [2])], [helper.make_tensor_value_info("d", F, [2])])
    first, second = errors(opcheck.check_graph(m, "g"))
    assert first.op == "Cast" and "the cast target is DOUBLE" in first.message
    assert second.op == "Cast" and "input 'c' is DOUBLE" in second.message


def test_runtime_axes_is_an_error():
    n = helper.make_node
    nodes = [n("Shape", ["a"], ["s"]), n("Slice", ["s", "z", "o"], ["ax"]), n("Sub", ["ax", "o"], ["axes"]),
             n("ReduceSum", ["a", "axes"], ["c"])]
    m = model(nodes, [helper.make_tensor_value_info("a", F, [2, 3])], [helper.make_tensor_value_info("c", F, None)],
              [init("z", np.array([0])), init("o", np.array([1]))])
    (p,) = errors(opcheck.check_graph(m, "g"))
    assert p.op == "ReduceSum" and "'axes'" in p.message and "initializer or Constant" in p.message


def test_constant_node_axes_are_fine():
    n = helper.make_node
    nodes = [n("Constant", [], ["axes"], value=init("v", np.array([1]))), n("ReduceSum", ["a", "axes"], ["c"])]
    m = model(nodes, [helper.make_tensor_value_info("a", F, [2, 3])], [helper.make_tensor_value_info("c", F, None)])
    assert opcheck.check_graph(m, "g") == []


def test_local_functions_and_subgraphs_are_checked():
    fn_bad = helper.make_function("local", "Quant", ["x"], ["y"],
                                  [helper.make_node("MatMulInteger", ["x", "x"], ["y"])], [helper.make_opsetid("", 18)])
    fn_ok = helper.make_function("local", "Double", ["x"], ["y"], [helper.make_node("Add", ["x", "x"], ["y"])],
                                 [helper.make_opsetid("", 18)])
    vi = [helper.make_tensor_value_info("a", F, [2])], [helper.make_tensor_value_info("c", F, [2])]
    good = model([helper.make_node("Double", ["a"], ["c"], domain="local")], *vi, functions=[fn_ok])
    good.opset_import.append(helper.make_opsetid("local", 1))
    assert errors(opcheck.check_graph(good, "g")) == []
    bad = model([helper.make_node("Quant", ["a"], ["c"], domain="local")], *vi, functions=[fn_bad])
    bad.opset_import.append(helper.make_opsetid("local", 1))
    assert [p.op for p in errors(opcheck.check_graph(bad, "g"))] == ["MatMulInteger"]

    def branch(op):
        return helper.make_graph([helper.make_node(op, ["a", "a"], ["r"])], op, [],
                                 [helper.make_tensor_value_info("r", F, [2])])

    cond = helper.make_node("If", ["flag"], ["c"], then_branch=branch("Add"), else_branch=branch("MatMulInteger"))
    m = model([cond], [helper.make_tensor_value_info("flag", B, []), vi[0][0]], vi[1])
    assert [p.op for p in errors(opcheck.check_graph(m, "g"))] == ["MatMulInteger"]


def test_opset_beyond_the_table_is_a_warning():
    problems = opcheck.check_graph(one_op("Add"), "g")
    assert problems == []
    m = one_op("Add")
    m.opset_import[0].version = 21
    (p,) = opcheck.check_graph(m, "g")
    assert p.severity == "warning" and "opset 21" in p.message


def test_check_graph_reads_a_path(tmp_path):
    path = tmp_path / "trunk.onnx"
    onnx.save(one_op("MatMulInteger"), str(path))
    (p,) = opcheck.check_graph(path)
    assert p.graph == "trunk" and str(p).startswith("error: trunk: MatMulInteger")
    with pytest.raises(opcheck.UniforkError, match="does not exist"):
        opcheck.check_graph(tmp_path / "missing.onnx")


# --- bundles ----------------------------------------------------------------------------------
def fake_bundle(tmp_path, graphs: dict, manifest_extra=None):
    """A Bundle object over hand-made graphs (only what opcheck reads: names, paths, manifest)."""
    from unifork_rt.config import preset
    from unifork_rt.runtime.bundle import Bundle, GraphSpec

    specs = {}
    for name, m in graphs.items():
        onnx.save(m, str(tmp_path / f"{name}.onnx"))
        specs[name] = GraphSpec(name, tmp_path / f"{name}.onnx", "0" * 64, (), (), None)
    manifest = {"format": 1, "precision": "fp32", **(manifest_extra or {})}
    return Bundle(tmp_path, manifest, preset("micro"), specs)


def test_check_bundle_and_require_supported(tmp_path):
    bundle = fake_bundle(tmp_path, {"trunk": text_block(), "vision_decoder": image_block()})
    reports = opcheck.check_bundle(bundle)
    assert all(r.ok for r in reports.values())
    assert reports["vision_decoder"].ops["ConvTranspose"] == 1
    text = opcheck.format_report(reports)
    assert "trunk: ok, 1 warning(s)" in text and "ConvTranspose×1" in text
    assert opcheck.require_supported(bundle) == reports

    q = fake_bundle(tmp_path, {"trunk": one_op("MatMulInteger"), "connector": one_op("Add")},
                    {"precision": "int8", "portable": False})
    with pytest.raises(opcheck.UniforkError) as e:
        opcheck.require_supported(q)
    msg = str(e.value)
    assert "trunk: MatMulInteger: marked unsupported" in msg and "connector" not in msg
    assert "export an fp32 or fp16 bundle" in msg
    # weight-only int4/int8 (MatMulNBits, a com.microsoft contrib op) is refused the same way
    q4 = fake_bundle(tmp_path, {"trunk": one_op("MatMulNBits", domain="com.microsoft", bits=4, block_size=32)},
                     {"precision": "int4", "portable": False})
    with pytest.raises(opcheck.UniforkError, match=r"(?s)com\.microsoft::MatMulNBits: custom-domain op.*'int4'.*"
                                                   r"export an fp32 or fp16 bundle"):
        opcheck.require_supported(q4)


def test_real_micro_bundle_passes(request):
    """The exported micro bundle (fixture from the export tests, where present) has no errors."""
    try:
        bundle = request.getfixturevalue("micro_bundle")
    except pytest.FixtureLookupError:
        pytest.skip("no micro_bundle fixture in this checkout (the exporter's conftest provides it)")
    from unifork_rt.runtime.bundle import load_bundle

    reports = opcheck.check_bundle(load_bundle(bundle))
    print(opcheck.format_report(reports))
    assert all(r.ok for r in reports.values()), json.dumps({n: [str(p) for p in r.errors] for n, r in reports.items()})
