"""unifork-rt's float kernel (runtime/kernels/fmatmul_kernels.c): the weight MatMuls of fp32 `--graphs ort`
bundles, written as com.microsoft TransposeMatMul. The packed GEMM against a float64 reference on both ISAs;
every row gets the same bits alone or in a batch, under any task split and on either ISA; the ONNX Runtime
op against ONNX Runtime's own TransposeMatMul; clear refusals; and an fp32 ort bundle through OrtBackend."""

from __future__ import annotations

import ctypes
import platform

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conftest import compare_backend_graphs, outputs_per_task_split  # noqa: E402
from unifork_rt.runtime import qmatmul  # noqa: E402

needs_cc = pytest.mark.skipif(qmatmul._compiler() is None or platform.machine().lower() not in ("x86_64", "amd64"),
                              reason="no C compiler or not x86-64: the kernels cannot be built here")
F = ctypes.POINTER(ctypes.c_float)


def _lib():
    path, why = qmatmul.build()
    assert path is not None, why
    lib = ctypes.CDLL(str(path))
    lib.uk_f32_packed_floats.restype = ctypes.c_size_t
    lib.uk_f32_packed_floats.argtypes = [ctypes.c_int64, ctypes.c_int64]
    lib.uk_f32_pack.argtypes = [ctypes.c_int64, ctypes.c_int64, F, F]
    lib.uk_f32_gemm.argtypes = [F, ctypes.c_int64, ctypes.c_int64, F, ctypes.c_int64, ctypes.c_float, F,
                                ctypes.c_int64, ctypes.c_int64, ctypes.c_int]
    lib.uk_f32_gemm_kc.argtypes = [*lib.uk_f32_gemm.argtypes, ctypes.c_int64]
    return lib


def op_library():
    """The library path, for the tests of its TransposeMatMul op; skips where it does not register that op
    (a CPU without AVX2 and FMA, or UNIFORK_RT_FLOAT_KERNEL=0: kernels/qmatmul_op.c uk_float_kernel)."""
    path, why = qmatmul.build()
    assert path is not None, why
    if not qmatmul.float_kernel(path):
        pytest.skip("the float op is not registered here (no AVX2 and FMA, or UNIFORK_RT_FLOAT_KERNEL=0)")
    return path


@needs_cc
def test_float_op_is_registered_wherever_the_tiles_run(monkeypatch):
    """AVX2 CPUs run it too since session 45 (they kept ONNX Runtime's SGEMM before); UNIFORK_RT_FLOAT_KERNEL=0
    keeps ONNX Runtime's, read when sessions are made."""
    path, why = qmatmul.build()
    assert path is not None, why
    monkeypatch.delenv("UNIFORK_RT_FLOAT_KERNEL", raising=False)
    assert qmatmul.float_kernel(path) == (ctypes.CDLL(str(path)).uk_isa() != 0)
    monkeypatch.setenv("UNIFORK_RT_FLOAT_KERNEL", "0")
    assert not qmatmul.float_kernel(path)
    monkeypatch.setenv("UNIFORK_RT_FLOAT_KERNEL", "1")
    assert qmatmul.float_kernel(path) == (ctypes.CDLL(str(path)).uk_isa() != 0)


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(F)


def packed(lib, b: np.ndarray) -> np.ndarray:
    k, n = b.shape
    raw = np.empty(lib.uk_f32_packed_floats(k, n) + 16, np.float32)
    off = (-raw.ctypes.data % 64) // 4  # the tiles load 64-byte aligned panels
    w = raw[off:off + lib.uk_f32_packed_floats(k, n)]
    lib.uk_f32_pack(k, n, _ptr(np.ascontiguousarray(b)), _ptr(w))
    return w


def gemm(lib, a, w, n, isa, tasks=1, alpha=1.0, kblock=None):
    m, k = a.shape
    c = np.full((m, n), np.nan, np.float32)
    panels = -(-n // 16)
    for t in range(tasks):
        args = (_ptr(a), m, k, _ptr(w), n, alpha, _ptr(c), panels * t // tasks, panels * (t + 1) // tasks, isa)
        if kblock is None:
            lib.uk_f32_gemm(*args)
        else:
            lib.uk_f32_gemm_kc(*args, kblock)
    return c


# K, N, rows: paper shapes, N not a multiple of 16, K of one, panels that do not divide into streams, prompt rows;
# on AVX2, k in blocks where there are several row groups (at 3-4 rows row pairs on the 2-stream tile in blocks of 64,
# an odd row's group on the 1-row tile (37, 50, 3); at 5-16 rows a first pair, then even groups of up to 6 rows on the
# one-stream tiles: 5 = 2 + 3, 6 = 2 + 4, 8 = 2 + 6, 9 = 2 + 4 + 3, 10 = 2 + 4 + 4, 13 = 2 + 6 + 5, 14 = 2 + 6 + 6,
# 15 = 2 + 5 + 4 + 4, 16 = 2 + 5 + 5 + 4; above 16 rows 6-row groups in blocks of 512, (1000, 40, 20)): whole blocks
# (4864, 8), last part blocks with a last part panel (300, 33, 9), (1000, 40, 20), (200, 48, 13), (130, 33, 15)
CASES = [(896, 1152, 1), (896, 4864, 2), (4864, 896, 8), (37, 50, 3), (1, 17, 5), (130, 97, 19), (64, 16 * 7, 4),
         (200, 48, 13), (96, 160, 297), (300, 33, 9), (1000, 40, 20), (70, 33, 6), (100, 97, 10), (300, 50, 14),
         (130, 33, 15), (200, 40, 16)]


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
@pytest.mark.parametrize("k,n,m", CASES)
def test_kernel_matches_float64_reference(isa, k, n, m):
    lib = _lib()
    if isa > lib.uk_isa():
        pytest.skip(f"this CPU does not run ISA {isa}")
    rng = np.random.default_rng(k * 7 + n + m)
    b = rng.standard_normal((k, n)).astype(np.float32)
    a = rng.standard_normal((m, k)).astype(np.float32)
    w = packed(lib, b)
    ref = a.astype(np.float64) @ b.astype(np.float64)
    for tasks in (1, 3):
        c = gemm(lib, a, w, n, isa, tasks)
        err = float(np.abs(c - ref).max() / np.abs(ref).max())
        print(f"isa {isa} {m}x{k} . {k}x{n}, {tasks} task(s): max rel diff vs float64 {err:.2e}")
        assert np.isfinite(c).all()
        assert err < 1e-5 * max(1.0, np.sqrt(k) / 8)
    # one float sum over k in order per output: each row alone gives the bits it gets in the batch
    alone = np.concatenate([gemm(lib, a[r:r + 1], w, n, isa) for r in range(m)])
    assert np.array_equal(alone, c)
    # alpha scales the sums
    assert np.array_equal(gemm(lib, a, w, n, isa, alpha=0.5), c * np.float32(0.5))


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
def test_k_blocks_give_the_same_bits(isa):
    """k in blocks of any size (the AVX2 tiles take 64 or 512 where a product has several row groups; the AVX-512
    ones one block, but take blocks alike): the sums wait in C between blocks and alpha scales them after the last,
    so every block size gives the bits of one pass, on both ISAs, in one task or three, for whole and part panels."""
    lib = _lib()
    if isa > lib.uk_isa():
        pytest.skip(f"this CPU does not run ISA {isa}")
    rng = np.random.default_rng(11)
    for k, n, m in ((300, 33, 9), (257, 40, 20), (64, 16, 1), (130, 97, 3), (150, 50, 16)):
        b, a = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal((m, k)).astype(np.float32)
        w = packed(lib, b)
        for alpha, tasks in ((1.0, 1), (0.5, 3)):
            one = gemm(lib, a, w, n, isa, tasks, alpha, kblock=k)
            assert np.isfinite(one).all()
            for kb in (1, 7, 64, 256, k - 1):
                if kb > 0:
                    assert np.array_equal(gemm(lib, a, w, n, isa, tasks, alpha, kblock=kb), one), (k, n, m, kb, alpha)
            assert np.array_equal(gemm(lib, a, w, n, isa, tasks, alpha), one), (k, n, m, alpha)  # the kernel's choice


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
def test_each_task_writes_its_own_columns_only(isa):
    """A task's panel range [g0, g1) alone, into NaN: its columns get the batch's bits, every other column and the
    bytes past C stay NaN (the tests above run the tasks in order into one C, where a stray write into a later
    task's columns would be overwritten). A row count of each kind of AVX2 row grouping: 1-2 rows, pairs (3), a pair
    then one-stream groups (8, 11 = 2 + 5 + 4, 16 = 2 + 5 + 5 + 4), 6-row groups (17+)."""
    lib = _lib()
    if isa > lib.uk_isa():
        pytest.skip(f"this CPU does not run ISA {isa}")
    rng = np.random.default_rng(3)
    for k, n, m in ((130, 97, 1), (200, 33, 2), (70, 120, 3), (300, 81, 8), (65, 50, 11), (64, 40, 16), (90, 70, 17)):
        b, a = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal((m, k)).astype(np.float32)
        w = packed(lib, b)
        whole = gemm(lib, a, w, n, isa)
        panels = -(-n // 16)
        for tasks in (2, 3, 5):
            for t in range(tasks):
                g0, g1 = panels * t // tasks, panels * (t + 1) // tasks
                buf = np.full(m * n + 64, np.nan, np.float32)
                lib.uk_f32_gemm(_ptr(a), m, k, _ptr(w), n, 0.5, _ptr(buf), g0, g1, isa)
                c, mine = buf[:m * n].reshape(m, n), np.zeros(n, bool)
                mine[16 * g0:min(16 * g1, n)] = True
                assert np.array_equal(c[:, mine], whole[:, mine] * np.float32(0.5)), (k, n, m, tasks, t)
                assert np.isnan(c[:, ~mine]).all() and np.isnan(buf[m * n:]).all(), (k, n, m, tasks, t)


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
@pytest.mark.parametrize("m", [1, 8, 20])
def test_k_of_zero_stores_zeros(isa, m):
    """K = 0: every output is an empty sum, 0 (also where the AVX2 tiles would take k in blocks)."""
    lib = _lib()
    if isa > lib.uk_isa():
        pytest.skip(f"this CPU does not run ISA {isa}")
    a, w = np.zeros((m, 0), np.float32), np.zeros(16, np.float32)
    c = gemm(lib, a, w, 20, isa)
    assert np.array_equal(c, np.zeros((m, 20), np.float32))


@needs_cc
def test_kernel_gives_the_same_bits_on_both_isas():
    lib = _lib()
    if lib.uk_isa() < 2:
        pytest.skip("needs an AVX-512 CPU to compare its tiles with the AVX2 ones")
    rng = np.random.default_rng(5)
    for k, n, m in ((896, 1152, 1), (130, 97, 19), (4864, 96, 8), (300, 33, 9), (1000, 40, 20)):  # AVX2's in k blocks
        b, a = rng.standard_normal((k, n)).astype(np.float32), rng.standard_normal((m, k)).astype(np.float32)
        w = packed(lib, b)
        assert np.array_equal(gemm(lib, a, w, n, 1), gemm(lib, a, w, n, 2)), (k, n, m)


def tmm_model(b: np.ndarray, a_shape, **attrs) -> bytes:
    node = helper.make_node("TransposeMatMul", ["A", "B"], ["Y"], domain="com.microsoft", **attrs)
    out = list(a_shape[:-1]) + [b.shape[1]]
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, a_shape)],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, out)],
                              [numpy_helper.from_array(b, "B")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)]).SerializeToString()


@needs_cc
@pytest.mark.parametrize("a_shape,alpha", [(["b", "t", 896], 1.0), (["m", 200], 0.25), ([200], 1.0)])
def test_op_matches_onnxruntime_kernel(a_shape, alpha):
    lib = op_library()
    rng = np.random.default_rng(len(a_shape))
    k = a_shape[-1]
    b = (rng.standard_normal((k, 328)) * 0.05).astype(np.float32)  # 21 panels, the last half full
    model = tmm_model(b, a_shape, alpha=alpha)
    plain, ours = ort.SessionOptions(), ort.SessionOptions()
    plain.intra_op_num_threads = ours.intra_op_num_threads = 2
    ours.register_custom_ops_library(str(lib))
    s_plain, s_ours = ort.InferenceSession(model, plain), ort.InferenceSession(model, ours)
    klib = _lib()
    w = packed(klib, b)
    for rows in (1, 2, 8, 50):
        shape = {3: (1, rows, k), 2: (rows, k), 1: (k,)}[len(a_shape)]
        a = rng.standard_normal(shape).astype(np.float32)
        want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
        diff = float(np.abs(want - got).max() / np.abs(want).max())
        print(f"TransposeMatMul A {shape} alpha {alpha}: max rel diff, ours vs ONNX Runtime's {diff:.2e}")
        assert got.shape == want.shape
        assert diff < 1e-5
        # our kernel ran, not ONNX Runtime's: the op's bits are the packed GEMM's
        direct = gemm(klib, np.ascontiguousarray(a.reshape(-1, k)), w, b.shape[1], klib.uk_isa(), alpha=alpha)
        assert np.array_equal(got.reshape(direct.shape), direct)
        if len(a_shape) == 1:
            break


@needs_cc
def test_op_bits_do_not_depend_on_the_task_split():
    lib = op_library()
    rng = np.random.default_rng(8)
    b = rng.standard_normal((300, 1136)).astype(np.float32)
    model = tmm_model(b, ["m", 300])  # 71 panels
    a = rng.standard_normal((9, 300)).astype(np.float32)
    outs = outputs_per_task_split(lib, model, [{"A": a[:r]} for r in (1, 2, 9)])
    klib = _lib()
    assert np.array_equal(outs[1][-9:], gemm(klib, a, packed(klib, b), 1136, klib.uk_isa()))  # ours ran
    for tasks, got in outs.items():
        assert np.array_equal(got, outs[1]), (tasks, float(np.abs(got - outs[1]).max()))
    assert np.array_equal(outs[1][:1], outs[1][1:2])  # row 0 alone, and in a batch of two


@needs_cc
@pytest.mark.parametrize("attrs,computed,match", [({"transB": 1}, False, "transB=1 is not supported"),
                                                  ({"transBatchA": 1}, False, "transBatchA=1 is not supported"),
                                                  ({}, True, "must be an initializer")])
def test_op_refuses_what_it_cannot_run(attrs, computed, match):
    lib = op_library()
    b = np.ones((8, 16), np.float32)
    if computed:  # B comes out of another node
        nodes = [helper.make_node("Identity", ["B0"], ["B"]),
                 helper.make_node("TransposeMatMul", ["A", "B"], ["Y"], domain="com.microsoft")]
        inits = [numpy_helper.from_array(b, "B0")]
    else:
        nodes = [helper.make_node("TransposeMatMul", ["A", "B"], ["Y"], domain="com.microsoft", **attrs)]
        inits = [numpy_helper.from_array(b, "B")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [2, 8])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # keep the Identity
    opts.register_custom_ops_library(str(lib))
    with pytest.raises(Exception, match=f"{match}.*UNIFORK_RT_QMATMUL=0"):
        ort.InferenceSession(model.SerializeToString(), opts)


@needs_cc
def test_fp32_ort_bundle_runs_its_weight_matmuls_on_our_kernel(micro_model_dir, tmp_path, monkeypatch):
    """`export --graphs ort` in fp32 writes the decoders' and the depth head's weight MatMuls as
    TransposeMatMul; OrtBackend loads those graphs with our library (the image graphs without it), and
    every graph's outputs match ONNX Runtime's own kernel on the same feeds."""
    pytest.importorskip("torch")
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.bundle import load_bundle
    from unifork_rt.runtime.ort_backend import OrtBackend

    out = export_bundle(micro_model_dir, tmp_path / "fp32-ort", precision="fp32", progress=False, variant="ort")
    bundle = load_bundle(out)
    with_op = {g for g, e in bundle.manifest["graphs"].items() if "TransposeMatMul" in e["ops"]}
    assert with_op == {"trunk", "und_branch", "gen_branch", "rq_head"}, with_op
    assert not any("MatMul" in e["ops"] for g, e in bundle.manifest["graphs"].items() if g in with_op)
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "1")
    ours = OrtBackend(load_bundle(out), threads=2).load()
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "0")
    plain = OrtBackend(load_bundle(out), threads=2).load()
    lib, why = qmatmul.build()
    assert lib is not None, why
    # the same graphs hold GroupQueryAttention: where the float op is off (UNIFORK_RT_FLOAT_KERNEL=0) they get the
    # library for it alone, and ONNX Runtime's own TransposeMatMul (SGEMM) runs their weights
    assert ours.qmatmul is not None and plain.qmatmul is None
    assert ours._qmatmul_graphs == with_op
    compared = compare_backend_graphs(ours, plain, "fp32 ort")
    assert with_op <= compared, compared
    assert ours.qmatmul_skipped == {}


@needs_cc
def test_read_streams_probe_sums_what_it_reads():
    """The roofline's 4-stream read probe (uk_read_streams) reads every float once, in 4 parts or 1, tail
    included; benchmarks/roofline.py takes it into the best of its probes."""
    from unifork_rt.benchmarks.roofline import _read_streams_fn

    fn = _read_streams_fn()
    if fn is None:
        pytest.skip("the kernel library is off here (UNIFORK_RT_QMATMUL=0 or UNIFORK_RT_ISA=none)")
    for n in (0, 5, 64, 1000, 4099):
        x = np.arange(n, dtype=np.float32) % 7
        for streams in (1, 4):
            assert fn(x, streams) == pytest.approx(float(x.sum()), rel=1e-6), (n, streams)
