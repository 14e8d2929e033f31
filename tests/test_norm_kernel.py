"""unifork-rt's SkipLayerNormalization kernel (runtime/kernels/norm_kernels.c, registered by qmatmul_op.c): against
a float64 NumPy reference written from the op's contract and against ONNX Runtime's own kernel through a session,
on both ISAs; rows independent of their batch and the threads; its refusals; and SkipSimplifiedLayerNormalization
left to ONNX Runtime."""

from __future__ import annotations

import ctypes
from pathlib import Path

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
from onnx import TensorProto, helper  # noqa: E402

from conftest import child_floats  # noqa: E402
from unifork_rt.runtime import qmatmul  # noqa: E402

needs_cc = pytest.mark.skipif(qmatmul._compiler() is None, reason="no C compiler: the kernels cannot be built here")
F32 = TensorProto.FLOAT
EPS = 1e-6


def reference(x, skip, gamma, beta=None, bias=None, eps=EPS):
    """The op: s = x + skip (skip repeated over x) + bias in float32, as the op adds them and writes s (its output
    3); then (s - mean) / sqrt(var + eps) * gamma + beta in float64. Returns (y, s)."""
    s = x + np.broadcast_to(skip, x.shape)
    if bias is not None:
        s = s + bias
    s = s.astype(np.float64)
    mean = s.mean(-1, keepdims=True)
    y = (s - mean) / np.sqrt(((s - mean) ** 2).mean(-1, keepdims=True) + eps) * gamma
    if beta is not None:
        y = y + beta
    return y, s


def norm_model(x_dims, skip_dims, h, beta=True, bias=False, op="SkipLayerNormalization", sum_out=True, eps=EPS):
    """One node: x, skip, gamma[, beta][, bias] -> y, and the sum as output 3 where SUM_OUT."""
    names = ["x", "skip", "gamma", "beta" if beta else "", "bias" if bias else ""]
    ins = [helper.make_tensor_value_info("x", F32, x_dims), helper.make_tensor_value_info("skip", F32, skip_dims),
           *(helper.make_tensor_value_info(n, F32, [h]) for n in ("gamma", "beta", "bias") if n in names)]
    outs = ["y", "", "", "sum"] if sum_out else ["y"]
    node = helper.make_node(op, names, outs, domain="com.microsoft", epsilon=eps)
    graph = helper.make_graph([node], "norm", ins, [helper.make_tensor_value_info(n, F32, None) for n in outs if n])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10).SerializeToString()


def norm_feeds(rng, x_shape, skip_shape, beta=True, bias=False):
    h = x_shape[-1]
    feeds = {"x": (rng.standard_normal(x_shape, dtype=np.float32) * 3 + 1).astype(np.float32),
             "skip": rng.standard_normal(skip_shape, dtype=np.float32),
             "gamma": rng.standard_normal(h, dtype=np.float32)}
    if beta:
        feeds["beta"] = rng.standard_normal(h, dtype=np.float32)
    if bias:
        feeds["bias"] = rng.standard_normal(h, dtype=np.float32)
    return feeds


def run(model, feeds, lib, threads=2):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if lib is not None:
        opts.register_custom_ops_library(str(lib))
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"]).run(None, feeds)


def built():
    lib, why = qmatmul.build()
    assert lib is not None, why
    return lib


class UkNorm(ctypes.Structure):
    """qmatmul_kernels.h's uk_norm."""
    _fields_ = [("x", ctypes.c_void_p), ("skip", ctypes.c_void_p), ("h", ctypes.c_int64), ("skip_size", ctypes.c_int64),
                ("gamma", ctypes.c_void_p), ("beta", ctypes.c_void_p), ("bias", ctypes.c_void_p), ("eps", ctypes.c_float),
                ("y", ctypes.c_void_p), ("sum", ctypes.c_void_p)]


def direct(feeds):
    """Our kernel called straight (uk_skip_norm_rows, this CPU's ISA), not through ONNX Runtime: (y, sum)."""
    lib = ctypes.CDLL(str(built()))
    x = np.ascontiguousarray(feeds["x"])
    vecs = {k: np.ascontiguousarray(feeds[k]) for k in ("skip", "gamma", "beta", "bias") if k in feeds}
    y, total = np.empty_like(x), np.empty_like(x)
    ptr = lambda k: vecs[k].ctypes.data if k in vecs else None  # noqa: E731
    p = UkNorm(x.ctypes.data, ptr("skip"), x.shape[-1], vecs["skip"].size, ptr("gamma"), ptr("beta"), ptr("bias"),
               EPS, y.ctypes.data, total.ctypes.data)
    lib.uk_skip_norm_rows(ctypes.byref(p), ctypes.c_int64(0), ctypes.c_int64(x.size // x.shape[-1]),
                          ctypes.c_int(lib.uk_isa()))
    return y, total


# (x shape, skip shape, beta, bias): the depth head's 8-row step (896), one row, a 300-token prompt (split over
# the threads), sizes that are not whole vectors (17, 33, 1), a 2-D input, and skips repeated over the batch
# ((1, S, H) and (S, H)), as ONNX Runtime reads them
CASES = [((8, 1, 896), (8, 1, 896), True, False), ((1, 1, 896), (1, 1, 896), True, True),
         ((2, 300, 896), (2, 300, 896), False, False), ((3, 5, 17), (3, 5, 17), True, True),
         ((4, 1, 33), (4, 1, 33), False, True), ((2, 3, 1), (2, 3, 1), True, False),
         ((6, 896), (6, 896), True, False), ((4, 3, 40), (1, 3, 40), True, True),
         ((4, 3, 40), (3, 40), True, False), ((2, 1, 3584), (1, 1, 3584), False, False)]


def case_model(case):
    xs, ss, beta, bias = case
    h = xs[-1]
    return norm_model([f"d{i}" for i in range(len(xs) - 1)] + [h], [f"s{i}" for i in range(len(ss) - 1)] + [h], h,
                      beta, bias)


@needs_cc
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{'x'.join(map(str, c[0]))}-skip{'x'.join(map(str, c[1]))}"
                         f"{'-beta' if c[2] else ''}{'-bias' if c[3] else ''}")
def test_op_matches_reference_and_onnxruntime_kernel(case):
    xs, ss, beta, bias = case
    feeds = norm_feeds(np.random.default_rng(xs[-1] + len(xs)), xs, ss, beta, bias)
    model = case_model(case)
    ours, ort_y = run(model, feeds, built()), run(model, feeds, None)
    ref_y, ref_s = reference(feeds["x"], feeds["skip"], feeds["gamma"], feeds.get("beta"), feeds.get("bias"))
    scale = float(np.abs(ref_y).max())
    d_ref, d_ort = float(np.abs(ours[0] - ref_y).max()), float(np.abs(ours[0] - ort_y[0]).max())
    d_ort_ref = float(np.abs(ort_y[0] - ref_y).max())
    print(f"{case}: max |ours - float64| {d_ref:.2e}, |ours - ONNX Runtime| {d_ort:.2e}, "
          f"|ONNX Runtime - float64| {d_ort_ref:.2e} (outputs up to {scale:.1f})")
    assert np.isfinite(ours[0]).all()
    # the op ran our kernel: the same bits as a direct call of it (ONNX Runtime's kernel rounds otherwise)
    assert all(np.array_equal(a, b) for a, b in zip(ours, direct(feeds)))
    assert d_ref <= 4e-6 * scale and d_ort <= 4e-6 * scale
    # the sum output is the same float adds as ONNX Runtime's: the same bits
    assert np.array_equal(ours[1], ort_y[1]) and np.array_equal(ours[1], ref_s.astype(np.float32))


@needs_cc
@pytest.mark.parametrize("isa", ["native", "avx2"])
def test_rows_of_equal_or_nearly_equal_values(isa):
    """Rows whose variance is 0 or tiny beside their mean: a float sum of s * s less mean * mean can come out below
    zero there (a first version gave NaN for a row of 3.4s, which ONNX Runtime normalizes to beta). Ours: beta
    exactly for equal values, as ONNX Runtime's kernel gives, and the float64 reference's values otherwise."""
    code = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_norm_kernel import norm_model, run, reference, built\n"
        "rng = np.random.default_rng(5)\n"
        "worst = theirs_worst = 0.0\n"
        "for h in (1, 7, 896, 3584):\n"
        "    for c in (3.3, -7.0, 100.0, 1234.5, 0.0, 123456.7, 1e6):\n"
        "        x = np.full((3, 1, h), c, np.float32)\n"
        "        x[2] += rng.standard_normal(h).astype(np.float32) * np.float32(abs(c) * 1e-3 + 1e-3)\n"
        "        f = {'x': x, 'skip': np.full((3, 1, h), 0.1, np.float32),\n"
        "             'gamma': rng.standard_normal(h).astype(np.float32), 'beta': rng.standard_normal(h).astype(np.float32)}\n"
        "        m = norm_model(['B', 1, h], ['B', 1, h], h)\n"
        "        y, theirs = run(m, f, built())[0], run(m, f, None)[0]\n"
        "        assert np.isfinite(y).all(), (h, c)\n"
        "        assert np.array_equal(y[:2], np.broadcast_to(f['beta'], (2, 1, h))), (h, c)\n"
        "        assert np.array_equal(theirs[:2], y[:2]), (h, c)\n"
        "        ref = reference(f['x'], f['skip'], f['gamma'], f['beta'])[0]\n"
        "        worst = max(worst, float(np.abs(y - ref).max() / max(np.abs(ref).max(), 1.0)))\n"
        "        theirs_worst = max(theirs_worst, float(np.abs(theirs - ref).max() / max(np.abs(ref).max(), 1.0)))\n"
        "print(theirs_worst)\n"
        "print(worst)\n")
    if isa == "avx2" and ctypes.CDLL(str(built())).uk_isa() < 1:
        pytest.skip("this CPU does not run AVX2")
    theirs, worst = child_floats(code, "avx2" if isa == "avx2" else None)[-2:]
    print(f"{isa}: rows of equal or nearly equal values, max |ours - float64| / max(|y|, 1) {worst:.2e} "
          f"(ONNX Runtime's {theirs:.2e})")
    # the nearly equal rows' spread is 1e-3 of their mean: a float's rounding of the mean (6e-8) becomes 6e-5 of
    # the normalized values, so the float output step cannot do much better than 2e-4 here (ONNX Runtime: 3.7e-4 to
    # 4.6e-4 in the runs printed)
    assert worst < 2e-4


@needs_cc
def test_rows_do_not_depend_on_batch_or_threads():
    """A row's bits alone, in a batch of 8, and in a 300-row prompt split over 1 or 2 threads are the same: each
    row goes through the same code whatever the task it lands in."""
    rng = np.random.default_rng(3)
    model = norm_model(["B", "S", 896], ["B", "S", 896], 896)
    feeds = norm_feeds(rng, (1, 300, 896), (1, 300, 896))
    whole = {t: run(model, feeds, built(), threads=t)[0] for t in (1, 2)}
    assert np.array_equal(whole[1], whole[2])
    for lo, n in ((0, 1), (17, 8), (290, 10)):
        part = {**feeds, "x": feeds["x"][:, lo:lo + n], "skip": feeds["skip"][:, lo:lo + n]}
        assert np.array_equal(run(model, part, built())[0], whole[2][:, lo:lo + n])


@needs_cc
def test_avx2_code_through_the_op():
    """The AVX2 code through a session (UNIFORK_RT_ISA=avx2 in a child process: the ISA is read once per
    process), against the float64 reference."""
    if ctypes.CDLL(str(built())).uk_isa() < 1:
        pytest.skip("this CPU does not run AVX2")
    script = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_norm_kernel import CASES, case_model, norm_feeds, run, reference, built\n"
        "worst = 0\n"
        "for case in CASES:\n"
        "    f = norm_feeds(np.random.default_rng(case[0][-1]), *case)\n"
        "    y = run(case_model(case), f, built())[0]\n"
        "    ref = reference(f['x'], f['skip'], f['gamma'], f.get('beta'), f.get('bias'))[0]\n"
        "    worst = max(worst, float(np.abs(y - ref).max() / np.abs(ref).max()))\n"
        "print(worst)\n")
    worst = child_floats(script, "avx2")[-1]
    print(f"AVX2 through the op: max |ours - float64| / max |y| {worst:.2e}")
    assert worst < 4e-6


@needs_cc
def test_without_the_sum_output_and_a_skip_batch_that_does_not_divide():
    """Output 3 not named: the same y. A skip of 2 batches over an input of 3 (ONNX Runtime takes it, reading skip
    at offset % its size): the same values as ONNX Runtime's."""
    lib = built()
    rng = np.random.default_rng(2)
    feeds = norm_feeds(rng, (8, 1, 896), (8, 1, 896), True, True)
    with_sum = run(norm_model(["B", 1, 896], ["B", 1, 896], 896, bias=True), feeds, lib)
    without = run(norm_model(["B", 1, 896], ["B", 1, 896], 896, bias=True, sum_out=False), feeds, lib)
    assert len(without) == 1 and np.array_equal(without[0], with_sum[0])
    model = norm_model(["B", "S", 8], ["T", "S", 8], 8)
    feeds = norm_feeds(rng, (3, 2, 8), (2, 2, 8))
    ours, theirs = run(model, feeds, lib), run(model, feeds, None)
    print(f"skip of 2 batches over 3: max |ours - ONNX Runtime| {float(np.abs(ours[0] - theirs[0]).max()):.2e}")
    assert np.allclose(ours[0], theirs[0], rtol=1e-5, atol=1e-5) and np.array_equal(ours[1], theirs[1])


@needs_cc
def test_inputs_it_cannot_take_are_refused():
    lib = built()
    rng = np.random.default_rng(0)
    # a skip whose last size differs from the input's
    model = norm_model(["B", 1, 8], ["B", 1, "H"], 8)
    feeds = norm_feeds(rng, (2, 1, 8), (2, 1, 8))
    with pytest.raises(Exception, match="skip"):
        run(model, {**feeds, "skip": feeds["skip"][..., :4]}, lib)
    # a skip whose second-to-last size differs from the input's (ONNX Runtime refuses it too)
    model = norm_model(["B", "S", 8], ["B", "T", 8], 8)
    feeds = norm_feeds(rng, (2, 3, 8), (2, 1, 8))
    with pytest.raises(Exception, match="last two dimensions .1, 8. must be the input's .3, 8."):
        run(model, feeds, lib)
    with pytest.raises(Exception):
        run(model, feeds, None)
    # a negative epsilon, when the session is made
    with pytest.raises(Exception, match="epsilon=-0.5 must be 0 or more"):
        run(norm_model(["B", 1, 8], ["B", 1, 8], 8, eps=-0.5), norm_feeds(rng, (2, 1, 8), (2, 1, 8)), lib)
    # gamma of the wrong size
    model = norm_model(["B", 1, 8], ["B", 1, 8], "G")
    feeds = norm_feeds(rng, (2, 1, 8), (2, 1, 8))
    with pytest.raises(Exception, match="gamma must have one dimension of 8"):
        run(model, {**feeds, "gamma": feeds["gamma"][:5]}, lib)
    # a 4-D input
    model = norm_model(["A", "B", 1, 8], ["A", "B", 1, 8], 8)
    feeds = norm_feeds(rng, (1, 2, 1, 8), (1, 2, 1, 8))
    with pytest.raises(Exception, match="2 or 3 dimensions"):
        run(model, feeds, lib)


@needs_cc
def test_env_keeps_onnxruntime_kernel(monkeypatch):
    """UNIFORK_RT_NORM=0: the library does not register the op, so ONNX Runtime's kernel runs it (its message for a
    4-D input, not ours); SkipSimplifiedLayerNormalization is ONNX Runtime's either way."""
    lib = built()
    model = norm_model(["A", "B", 1, 8], ["A", "B", 1, 8], 8)
    feeds = norm_feeds(np.random.default_rng(1), (1, 2, 1, 8), (1, 2, 1, 8))
    with pytest.raises(Exception, match="unifork-rt: layer norm input"):
        run(model, feeds, lib)
    rms = norm_model(["A", "B", 1, 8], ["A", "B", 1, 8], 8, beta=False, op="SkipSimplifiedLayerNormalization")
    with pytest.raises(Exception) as e:
        run(rms, {k: v for k, v in feeds.items() if k != "beta"}, lib)
    assert "unifork-rt" not in str(e.value)
    monkeypatch.setenv("UNIFORK_RT_NORM", "0")
    with pytest.raises(Exception) as e:
        run(model, feeds, lib)
    assert "unifork-rt" not in str(e.value)
