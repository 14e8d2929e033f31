"""unifork-rt's com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat (runtime/kernels/qmatmul_op.c):
the ops ONNX Runtime fuses an int8-dynamic bundle's integer matmuls into, on our 8-bit tiles. Against ONNX
Runtime's own kernels on the same graphs, against a float64 reference written from the ops' contract, on
both ISAs; and what they refuse."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unifork_rt.runtime import qmatmul  # noqa: E402

needs_cc = pytest.mark.skipif(qmatmul._compiler() is None, reason="no C compiler: the kernels cannot be built here")


def _vnni() -> bool:
    import ctypes

    lib = qmatmul.build()[0] if qmatmul._compiler() is not None else None
    return lib is not None and ctypes.CDLL(str(lib)).uk_isa() == 2


needs_vnni = pytest.mark.skipif(not _vnni(), reason="the library registers these ops on AVX-512 VNNI CPUs only")
OPS = ("DynamicQuantizeMatMul", "MatMulIntegerToFloat")
# K, N, bias, a b_scale per column (else one), a b_zero_point input (zeros)
CASES = [(896, 1152, False, True, False), (896, 4864, True, True, True), (4864, 896, True, False, False),
         (32, 20, True, True, True)]


def integer_model(op, rng, k, n, bias, per_col, bzp, bzp_value=0):
    """One OP node with constant int8 B; returns (serialized model, B, b_scale, bias or None)."""
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    bs = rng.uniform(0.001, 0.02, n if per_col else 1).astype(np.float32)
    bias_v = rng.standard_normal(n).astype(np.float32) if bias else None
    inits = [numpy_helper.from_array(b, "B"), numpy_helper.from_array(bs, "bs")]
    if bzp:
        inits.append(numpy_helper.from_array(np.full(n if per_col else 1, bzp_value, np.int8), "bzp"))
    if bias:
        inits.append(numpy_helper.from_array(bias_v, "bias"))
    if op == "DynamicQuantizeMatMul":
        ins = ["A", "B", "bs", "bzp" if bzp else "", "bias" if bias else ""]
        a_in = [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["m", k])]
    else:
        ins = ["Aq", "B", "as", "bs", "azp", "bzp" if bzp else "", "bias" if bias else ""]
        a_in = [helper.make_tensor_value_info("Aq", TensorProto.UINT8, ["m", k]),
                helper.make_tensor_value_info("as", TensorProto.FLOAT, []),
                helper.make_tensor_value_info("azp", TensorProto.UINT8, [])]
    while ins[-1] == "":
        ins.pop()
    graph = helper.make_graph([helper.make_node(op, ins, ["Y"], domain="com.microsoft")], "g", a_in,
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["m", n])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    return model.SerializeToString(), b, bs, bias_v


def feeds(op, rng, rows, k):
    if op == "DynamicQuantizeMatMul":
        return {"A": (rng.standard_normal((rows, k)) * rng.uniform(0.1, 3)).astype(np.float32)}
    return {"Aq": rng.integers(0, 256, (rows, k), dtype=np.uint8),
            "as": np.array(rng.uniform(0.001, 0.05), np.float32), "azp": np.array(rng.integers(100, 156), np.uint8)}


def reference(op, f, b, bs, bias):
    """float64, from the contract: A quantized per tensor to uint8 over a range widened to include 0 (scale
    (max - min) / 255, or 1 for an all-zero A; zero point and values rounded half to even), then
    (A_q - zp) . B * a_scale * b_scale + bias."""
    if op == "DynamicQuantizeMatMul":
        a = f["A"]
        lo, hi = min(float(a.min()), 0.0), max(float(a.max()), 0.0)
        scale = np.float32(1.0) if hi == lo else np.float32((np.float32(hi) - np.float32(lo)) / np.float32(255))
        zp = np.rint(np.clip(np.float32(0) - np.float32(lo) / scale, 0, 255))
        q = np.clip(np.rint(a / scale) + zp, 0, 255)
    else:
        q, scale, zp = f["Aq"].astype(np.float64), f["as"], float(f["azp"])
    y = (q.astype(np.float64) - zp) @ b.astype(np.float64) * float(scale) * bs.astype(np.float64)
    return y + (bias if bias is not None else 0.0)


def sessions(model, lib):
    plain, ours = ort.SessionOptions(), ort.SessionOptions()
    plain.intra_op_num_threads = ours.intra_op_num_threads = 2
    ours.register_custom_ops_library(str(lib))
    return ort.InferenceSession(model, plain), ort.InferenceSession(model, ours)


@needs_vnni
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES)
def test_ops_match_onnxruntime_and_the_reference(op, case):
    lib, why = qmatmul.build()
    assert lib is not None, why
    rng = np.random.default_rng(case[0] + case[1])
    model, b, bs, bias = integer_model(op, rng, *case)
    s_plain, s_ours = sessions(model, lib)
    for rows in (1, 2, 8, 50):
        f = feeds(op, rng, rows, case[0])
        want, got = s_plain.run(None, f)[0], s_ours.run(None, f)[0]
        ref = reference(op, f, b, bs, bias)
        diff = float(np.abs(want - got).max() / np.abs(want).max())
        diff_ref = float(np.abs(got - ref).max() / np.abs(ref).max())
        print(f"{op} K {case[0]} N {case[1]} {rows} rows: max rel diff vs ONNX Runtime {diff:.2e}, "
              f"vs the float64 reference {diff_ref:.2e}")
        assert got.shape == want.shape == (rows, case[1])
        assert diff < 1e-6 and diff_ref < 1e-6



@needs_vnni
def test_matmulintegertofloat_row_bits_do_not_depend_on_the_batch():
    """MatMulIntegerToFloat's activations come quantized (one scale and zero point for the tensor), so a row's
    outputs are its own: in a batch of 8, 9 or 16 rows (the 8-row tile, two streams sharing each broadcast, and a
    one-stream rest for an odd share of column groups) they are the bits the row gets alone."""
    lib, why = qmatmul.build()
    assert lib is not None, why
    # 71, 304, 2 and 4 column groups (4: two tasks of two groups on 2 CPUs, the second's last group 8 columns)
    for k, n in ((896, 1136), (896, 4864), (32, 20), (896, 56)):
        rng = np.random.default_rng(k + n)
        model, _, _, _ = integer_model("MatMulIntegerToFloat", rng, k, n, True, True, False)
        _, s_ours = sessions(model, lib)
        f = feeds("MatMulIntegerToFloat", rng, 16, k)
        alone = np.concatenate([s_ours.run(None, {**f, "Aq": f["Aq"][i:i + 1]})[0] for i in range(16)])
        for rows in (8, 9, 16):
            got = s_ours.run(None, {**f, "Aq": f["Aq"][:rows]})[0]
            assert np.array_equal(got, alone[:rows]), (k, n, rows, float(np.abs(got - alone[:rows]).max()))

@needs_vnni
@pytest.mark.parametrize("k,n", [(64, 1), (4096, 16)])
def test_edges_as_onnxruntime(k, n):
    """An all-zero A (scale 1, zero point 0: exactly the bias), no rows, and an infinite A (ONNX Runtime's
    zero point 255). The column term (128 - zp) x colsum joins the integer sum before it is scaled: added in
    float, the two large terms cancelled (3.6e-4 relative at K 4096; hostile review, 2026-12-05)."""
    lib, _ = qmatmul.build()
    rng = np.random.default_rng(3)
    model, _, _, bias = integer_model("DynamicQuantizeMatMul", rng, k, n, True, True, False)
    s_plain, s_ours = sessions(model, lib)
    for a in (np.zeros((3, k), np.float32), rng.standard_normal((2, k)).astype(np.float32),
              np.zeros((0, k), np.float32)):
        want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(s_ours.run(None, {"A": np.zeros((3, k), np.float32)})[0], np.tile(bias, (3, 1)))
    a = rng.standard_normal((2, k)).astype(np.float32)
    a[1, 3] = -np.inf
    want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
    assert np.array_equal(np.isnan(want), np.isnan(got)) and np.array_equal(np.isinf(want), np.isinf(got))


@needs_vnni
def test_small_activations_far_from_the_middle():
    """uint8 activations 0..2 with zero point 0 (a post-activation input): the column term is as large as the
    sum; hostile review, 2026-12-05: 7.5e-6 relative when it was added in float."""
    lib, _ = qmatmul.build()
    rng = np.random.default_rng(7)
    model, b, bs, bias = integer_model("MatMulIntegerToFloat", rng, 1024, 64, False, True, False)
    s_plain, s_ours = sessions(model, lib)
    f = {"Aq": rng.integers(0, 3, (5, 1024), dtype=np.uint8), "as": np.array(0.01, np.float32),
         "azp": np.array(0, np.uint8)}
    want, got, ref = s_plain.run(None, f)[0], s_ours.run(None, f)[0], reference("MatMulIntegerToFloat", f, b, bs, bias)
    diff, diff_ref = float(np.abs(want - got).max() / np.abs(want).max()), float(np.abs(got - ref).max() / np.abs(ref).max())
    print(f"small activations: max rel diff vs ONNX Runtime {diff:.2e}, vs the float64 reference {diff_ref:.2e}")
    assert diff < 2e-7 and diff_ref < 2e-7


@needs_vnni
@pytest.mark.parametrize("op", OPS)
def test_ops_refuse_what_they_cannot_run(op):
    """A B zero point other than 0, or a K that is not a multiple of 16 or over 32768 (the int32 sums): a clear
    error at load (the runtime's
    backend then keeps ONNX Runtime's kernels for that graph)."""
    lib, _ = qmatmul.build()
    rng = np.random.default_rng(0)
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(lib))
    with pytest.raises(Exception, match="B zero point other than 0.*UNIFORK_RT_QMATMUL=0"):
        ort.InferenceSession(integer_model(op, rng, 64, 32, False, True, True, bzp_value=3)[0], opts)
    for k in (40, 32784):
        with pytest.raises(Exception, match=f"K {k} is not supported.*UNIFORK_RT_QMATMUL=0"):
            ort.InferenceSession(integer_model(op, rng, k, 16, False, True, False)[0], opts)
    # zero points of another length than one or N (ONNX Runtime fails at run)
    model = integer_model(op, rng, 64, 20, False, True, True)[0]
    m = onnx.load_from_string(model)
    for t in m.graph.initializer:
        if t.name == "bzp":
            t.CopyFrom(numpy_helper.from_array(np.zeros(3, np.int8), "bzp"))
    with pytest.raises(Exception, match="3 B zero points for 20 columns.*UNIFORK_RT_QMATMUL=0"):
        ort.InferenceSession(m.SerializeToString(), opts)
    # a zero point that is not an initializer: refused when it arrives (hostile review: it was ignored)
    m = onnx.load_from_string(model)
    keep = [t for t in m.graph.initializer if t.name != "bzp"]
    del m.graph.initializer[:]
    m.graph.initializer.extend(keep)
    m.graph.input.append(helper.make_tensor_value_info("bzp", TensorProto.INT8, [20]))
    s = ort.InferenceSession(m.SerializeToString(), opts)
    f = {**feeds(op, rng, 2, 64), "bzp": np.full(20, 9, np.int8)}
    with pytest.raises(Exception, match="computed B zero point.*UNIFORK_RT_QMATMUL=0"):
        s.run(None, f)


@needs_cc
def test_avx2_cpus_keep_onnxruntime_kernels():
    """On AVX2 CPUs (UNIFORK_RT_ISA=avx2, in a child process: the ISA is read once per process) the library
    does not register these ops (its AVX2 8-bit tile needs activations in [-127, 127]; a - 128 reaches
    -128): both sessions run ONNX Runtime's kernels, to the bit."""
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import numpy as np, test_qmatmul_integer as t\n"
              "from unifork_rt.runtime import qmatmul\n"
              "import ctypes\n"
              "lib, _ = qmatmul.build(); assert ctypes.CDLL(str(lib)).uk_isa() == 1\n"
              "rng = np.random.default_rng(5); worst = 0.0\n"
              "for op in t.OPS:\n"
              "    for case in t.CASES:\n"
              "        model, b, bs, bias = t.integer_model(op, rng, *case)\n"
              "        s_plain, s_ours = t.sessions(model, lib)\n"
              "        for rows in (1, 3, 8):\n"
              "            f = t.feeds(op, rng, rows, case[0])\n"
              "            want, got = s_plain.run(None, f)[0], s_ours.run(None, f)[0]\n"
              "            worst = max(worst, float(np.abs(want - got).max() / np.abs(want).max()))\n"
              "print(worst)\n")
    env = {**os.environ, "UNIFORK_RT_ISA": "avx2"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    worst = float(r.stdout.strip().splitlines()[-1])
    print(f"AVX2: max rel diff between the sessions with and without the library {worst:.2e}")
    assert worst == 0
