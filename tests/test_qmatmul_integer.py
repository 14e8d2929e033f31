"""unifork-rt's com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat (runtime/kernels/qmatmul_op.c):
the ops ONNX Runtime fuses an int8-dynamic bundle's integer matmuls into, on our 8-bit tiles. Against ONNX
Runtime's own kernels on the same graphs, against a float64 reference written from the ops' contract, on
both ISAs (the tests run on this CPU's, and on a VNNI CPU the whole file again in a child process with
UNIFORK_RT_ISA=avx2); and what they refuse.

Weights: within [-64, 64] (what ONNX Runtime's quantizer writes with reduce_range, as our exports do) and
full-range int8, on every ISA (on AVX2 full-range weights take the tiles that split a into a >> 1 and a & 1;
ONNX Runtime's own AVX2 kernel saturates there, so those cases are checked against the float64 reference)."""

from __future__ import annotations

import itertools
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

def _isa() -> int:
    """The library's ISA here: 0 none (no compiler, not x86-64), 1 AVX2, 2 AVX-512 VNNI."""
    import ctypes

    lib = qmatmul.build()[0] if qmatmul._compiler() is not None else None
    return ctypes.CDLL(str(lib)).uk_isa() if lib is not None else 0


ISA = _isa()
needs_ops = pytest.mark.skipif(ISA == 0, reason="the library registers these ops on AVX2 and AVX-512 VNNI CPUs")
OPS = ("DynamicQuantizeMatMul", "MatMulIntegerToFloat")
# K, N, bias, a b_scale per column (else one), a b_zero_point input (zeros); 29 and 20 columns end inside the
# second or the first 8-column half of a group
CASES = [(896, 1152, False, True, False), (896, 4864, True, True, True), (4864, 896, True, False, False),
         (32, 20, True, True, True), (16, 29, True, True, False)]


def integer_model(op, rng, k, n, bias, per_col, bzp, bzp_value=0, bmax=64):
    """One OP node with constant int8 B in [-BMAX, BMAX] ([-128, 127] for 128); returns (serialized model, B,
    b_scale, bias or None)."""
    b = rng.integers(-bmax, min(bmax + 1, 128), (k, n), dtype=np.int8)
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


def check_ops_match(op, case, bmax):
    lib, why = qmatmul.build()
    assert lib is not None, why
    rng = np.random.default_rng(case[0] + case[1])
    model, b, bs, bias = integer_model(op, rng, *case, bmax=bmax)
    s_plain, s_ours = sessions(model, lib)
    # the tiles of 1, 2, 4 and 8 rows, and a prompt of more than 16 rows (4-row tiles on AVX2)
    for rows in (1, 2, 4, 8, 11, 50):
        f = feeds(op, rng, rows, case[0])
        want, got = s_plain.run(None, f)[0], s_ours.run(None, f)[0]
        ref = reference(op, f, b, bs, bias)
        diff = float(np.abs(want - got).max() / np.abs(want).max())
        diff_ref = float(np.abs(got - ref).max() / np.abs(ref).max())
        print(f"ISA {ISA} {op} K {case[0]} N {case[1]} |B| <= {bmax} {rows} rows: max rel diff vs ONNX Runtime "
              f"{diff:.2e}, vs the float64 reference {diff_ref:.2e}")
        assert got.shape == want.shape == (rows, case[1])
        assert diff_ref < 1e-6
        # ONNX Runtime's AVX2 kernel sums u8 x s8 pairs into a saturating int16: exact only with |B| <= 64
        assert diff < 1e-6 or (ISA == 1 and bmax == 128)


@needs_ops
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES)
def test_ops_match_onnxruntime_and_the_reference(op, case):
    check_ops_match(op, case, 64)


@needs_ops
@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("case", CASES)
def test_ops_match_with_full_range_weights(op, case):
    check_ops_match(op, case, 128)


@needs_ops
def test_matmulintegertofloat_row_bits_do_not_depend_on_the_batch():
    """MatMulIntegerToFloat's activations come quantized (one scale and zero point for the tensor), so a row's
    outputs are its own: in a batch of 4, 8, 9, 16 or 17 rows (the 8-row tile, on VNNI two streams sharing each
    broadcast and a one-stream rest for an odd share of column groups; on AVX2 4-row tiles past 16 rows) they are
    the bits the row gets alone."""
    lib, why = qmatmul.build()
    assert lib is not None, why
    # 71, 304, 2 and 4 column groups (4: two tasks of two groups on 2 CPUs, the second's last group 8 columns)
    for (k, n), bmax in itertools.product(((896, 1136), (896, 4864), (32, 20), (896, 56)), (64, 128)):
        rng = np.random.default_rng(k + n)
        model, _, _, _ = integer_model("MatMulIntegerToFloat", rng, k, n, True, True, False, bmax=bmax)
        _, s_ours = sessions(model, lib)
        f = feeds("MatMulIntegerToFloat", rng, 17, k)
        alone = np.concatenate([s_ours.run(None, {**f, "Aq": f["Aq"][i:i + 1]})[0] for i in range(17)])
        for rows in (4, 8, 9, 16, 17):
            got = s_ours.run(None, {**f, "Aq": f["Aq"][:rows]})[0]
            assert np.array_equal(got, alone[:rows]), (k, n, rows, float(np.abs(got - alone[:rows]).max()))

@needs_ops
@pytest.mark.parametrize("bmax", (64, 128))
@pytest.mark.parametrize("k,n", [(64, 1), (4096, 16)])
def test_edges_as_onnxruntime(k, n, bmax):
    """An all-zero A (scale 1, zero point 0: exactly the bias), no rows, and an infinite A (ONNX Runtime's
    zero point 255). The column term (128 - zp) x colsum joins the integer sum before it is scaled: added in
    float, the two large terms cancelled (3.6e-4 relative at K 4096; hostile review, 2026-12-05)."""
    lib, _ = qmatmul.build()
    rng = np.random.default_rng(3)
    model, b, bs, bias = integer_model("DynamicQuantizeMatMul", rng, k, n, True, True, False, bmax=bmax)
    s_plain, s_ours = sessions(model, lib)
    for a in (np.zeros((3, k), np.float32), rng.standard_normal((2, k)).astype(np.float32),
              np.zeros((0, k), np.float32)):
        want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
        assert got.shape == want.shape
        if ISA == 1 and bmax == 128 and a.size:  # ONNX Runtime's AVX2 kernel saturates with full-range weights
            want = reference("DynamicQuantizeMatMul", {"A": a}, b, bs, bias)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)
    assert np.array_equal(s_ours.run(None, {"A": np.zeros((3, k), np.float32)})[0], np.tile(bias, (3, 1)))
    a = rng.standard_normal((2, k)).astype(np.float32)
    a[1, 3] = -np.inf
    want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
    if ISA == 1 and bmax == 128:  # ONNX Runtime's saturated integer sums (signs, zeros) decide its infinities there
        assert not np.isfinite(got).any()
    else:
        assert np.array_equal(np.isnan(want), np.isnan(got)) and np.array_equal(np.isinf(want), np.isinf(got))


@needs_ops
@pytest.mark.parametrize("bmax", (64, 128))
def test_small_activations_far_from_the_middle(bmax):
    """uint8 activations 0..2 with zero point 0 (a post-activation input): the column term is as large as the
    sum; hostile review, 2026-12-05: 7.5e-6 relative when it was added in float."""
    lib, _ = qmatmul.build()
    rng = np.random.default_rng(7)
    model, b, bs, bias = integer_model("MatMulIntegerToFloat", rng, 1024, 64, False, True, False, bmax=bmax)
    s_plain, s_ours = sessions(model, lib)  # activations 0..2: no int16 pair of ONNX Runtime's saturates
    f = {"Aq": rng.integers(0, 3, (5, 1024), dtype=np.uint8), "as": np.array(0.01, np.float32),
         "azp": np.array(0, np.uint8)}
    want, got, ref = s_plain.run(None, f)[0], s_ours.run(None, f)[0], reference("MatMulIntegerToFloat", f, b, bs, bias)
    diff, diff_ref = float(np.abs(want - got).max() / np.abs(want).max()), float(np.abs(got - ref).max() / np.abs(ref).max())
    print(f"small activations: max rel diff vs ONNX Runtime {diff:.2e}, vs the float64 reference {diff_ref:.2e}")
    assert diff < 2e-7 and diff_ref < 2e-7


@needs_ops
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


@needs_ops
@pytest.mark.parametrize("bmax", (64, 128))
def test_the_largest_sums(bmax):
    """K 32768 (the most the ops take) with every product at its largest: uint8 A all 255 or all 0, zero point 0
    or 255, B all at one end of its range. The sums reach 255 x 128 x 32768 = 2^30 - 2^23; exact integers
    both ways (a float32 of them rounds once: compared with the float64 reference)."""
    lib, _ = qmatmul.build()
    k, n = 32768, 24
    lo, hi = (-64, 64) if bmax == 64 else (-128, 127)
    for bval, a, zp in ((lo, 255, 0), (hi, 255, 0), (lo, 0, 255), (hi, 0, 255)):
        rng = np.random.default_rng(1)
        model, _, _, _ = integer_model("MatMulIntegerToFloat", rng, k, n, False, True, False)
        m = onnx.load_from_string(model)
        b = np.full((k, n), bval, np.int8)
        b[:, 1] = -b[:, 1] if bval != -128 else 127  # a column of the other sign
        bs = np.full(n, 0.001, np.float32)
        for t in m.graph.initializer:
            if t.name == "B":
                t.CopyFrom(numpy_helper.from_array(b, "B"))
            if t.name == "bs":
                t.CopyFrom(numpy_helper.from_array(bs, "bs"))
        opts = ort.SessionOptions()
        opts.register_custom_ops_library(str(lib))
        s = ort.InferenceSession(m.SerializeToString(), opts)
        f = {"Aq": np.full((3, k), a, np.uint8), "as": np.array(0.5, np.float32), "azp": np.array(zp, np.uint8)}
        got, ref = s.run(None, f)[0], reference("MatMulIntegerToFloat", f, b, bs, None)
        assert np.abs(ref).max() > 1e5  # the sums are as large as intended
        np.testing.assert_allclose(got, ref, rtol=1e-6, atol=0, err_msg=f"B {bval}, A {a}, zero point {zp}")


@needs_ops
def test_integer_kernel_off_switch(monkeypatch):
    """UNIFORK_RT_INTEGER_KERNEL=0: the library does not register the two ops, and ONNX Runtime's kernels run them.
    Told apart by a K our ops refuse (40, not a multiple of 16): with them registered the session fails to load,
    without them it loads and gives ONNX Runtime's bits. The runtime's backend asks the same function."""
    lib, _ = qmatmul.build()
    assert qmatmul.integer_kernel(lib)
    rng = np.random.default_rng(2)
    model, _, _, _ = integer_model("DynamicQuantizeMatMul", rng, 40, 24, True, True, False)
    f = feeds("DynamicQuantizeMatMul", rng, 3, 40)
    with pytest.raises(Exception, match="K 40 is not supported"):
        sessions(model, lib)
    monkeypatch.setenv("UNIFORK_RT_INTEGER_KERNEL", "0")
    assert not qmatmul.integer_kernel(lib)
    s_plain, s_off = sessions(model, lib)
    assert np.array_equal(s_off.run(None, f)[0], s_plain.run(None, f)[0])


@pytest.mark.skipif(ISA != 2, reason="needs an AVX-512 VNNI CPU to compare its tiles with the AVX2 ones")
def test_avx2_and_vnni_tiles_give_the_same_bits(tmp_path):
    """The AVX2 tiles (a child process with UNIFORK_RT_ISA=avx2) and the VNNI ones compute the same integer per
    column and scale it the same way: the same output bits, both ops, 1-17 rows, weights within [-64, 64] and
    full-range."""
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
              "import numpy as np, test_qmatmul_integer as t\n"
              "assert t.ISA == 1\n"
              "np.save(sys.argv[1], t.outputs_for_bits())\n")
    env = {**os.environ, "UNIFORK_RT_ISA": "avx2"}
    r = subprocess.run([sys.executable, "-c", script, str(tmp_path / "avx2.npy")], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    avx2, vnni = np.load(tmp_path / "avx2.npy"), outputs_for_bits()
    print(f"{vnni.size} outputs; differing bits: {int((avx2.view(np.int32) != vnni.view(np.int32)).sum())}")
    assert avx2.shape == vnni.shape and np.array_equal(avx2.view(np.int32), vnni.view(np.int32))


def outputs_for_bits() -> np.ndarray:
    """Every op, weight range and row count of test_avx2_and_vnni_tiles_give_the_same_bits, concatenated."""
    lib, _ = qmatmul.build()
    outs = []
    for op, bmax in itertools.product(OPS, (64, 128)):
        rng = np.random.default_rng(bmax)
        model, _, _, _ = integer_model(op, rng, 896, 200, True, True, False, bmax=bmax)
        _, s_ours = sessions(model, lib)
        for rows in (1, 2, 3, 4, 8, 9, 17):
            outs.append(s_ours.run(None, feeds(op, rng, rows, 896))[0].ravel())
    return np.concatenate(outs)


@pytest.mark.skipif(ISA != 2, reason="this CPU runs the AVX2 tiles natively: the tests above ran them")
def test_the_file_again_on_the_avx2_tiles():
    """On a VNNI CPU the tests above ran the VNNI tiles: this runs the whole file again in a child process with
    UNIFORK_RT_ISA=avx2 (the ISA is read once per process), on the AVX2 tiles, which must pass too."""
    env = {**os.environ, "UNIFORK_RT_ISA": "avx2"}
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", __file__, "-k",
                        "not test_the_file_again"], capture_output=True, text=True, env=env, timeout=600,
                       cwd=Path(__file__).parent)
    tail = r.stdout[-3000:]
    print(tail)
    assert r.returncode == 0, tail + r.stderr[-2000:]
    assert " passed" in tail
