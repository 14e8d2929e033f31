"""unifork-rt's MatMulNBits kernels (runtime/qmatmul.py, runtime/kernels/): the packed integer GEMM
against an exact reference, on both ISAs; the ONNX Runtime op against ONNX Runtime's own kernel on the
same graphs; and the fallbacks."""

from __future__ import annotations

import ctypes
import shutil

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from conftest import compare_backend_graphs, outputs_per_task_split  # noqa: E402
from unifork_rt.errors import MissingDependencyError  # noqa: E402
from unifork_rt.runtime import qmatmul  # noqa: E402

needs_cc = pytest.mark.skipif(qmatmul._compiler() is None, reason="no C compiler: the kernels cannot be built here")


Shape = qmatmul.UkShape


def matmulnbits_weights(rng, k, n, bits, block):
    """Random MatMulNBits B [N, blocks, blob] and scales, and the unpacked integer weights [N, Kp]."""
    kp = -(-k // block) * block
    zp = 8 if bits == 4 else 128
    q = rng.integers(0, 1 << bits, size=(n, kp), dtype=np.uint8)
    q[:, k:] = zp  # MatMulNBits pads K with the zero point
    packed = (q[:, 0::2] | (q[:, 1::2] << 4)).astype(np.uint8) if bits == 4 else q.copy()
    scales = rng.uniform(0.001, 0.02, size=(n, kp // block)).astype(np.float32)
    return packed.reshape(n, kp // block, block * bits // 8), scales, q, zp


def same_quant_reference(a, q, zp, scales, block):
    """A . W^T with the activations quantized as the kernels (and MatMulNBits level 4) do: per row and
    block, scale max|a| / 127, round to nearest even; integer sums exact in float64."""
    m, k = a.shape
    kp = q.shape[1]
    ap = np.zeros((m, kp), np.float32)
    ap[:, :k] = a
    out = np.zeros((m, q.shape[0]))
    for b in range(kp // block):
        x = ap[:, b * block:(b + 1) * block]
        amax = np.abs(x).max(1)
        inv = np.where(amax > 0, np.float32(127) / np.where(amax > 0, amax, 1), 0).astype(np.float32)
        qa = np.rint(x * inv[:, None]).astype(np.float64)
        w = q[:, b * block:(b + 1) * block].astype(np.float64) - zp
        out += (qa @ w.T) * (amax / np.float32(127)).astype(np.float32)[:, None] * scales[:, b][None, :]
    return out


CASES = [  # bits, block, K, N, rows: paper shapes, a K that is not whole blocks, an N not a multiple of 16
    (4, 128, 896, 1152, 1), (4, 128, 3584, 896, 8), (4, 32, 896, 4864, 2), (4, 16, 896, 256, 13),
    (8, 32, 896, 1152, 1), (8, 32, 3584, 896, 8), (8, 128, 896, 512, 3), (4, 128, 200, 40, 13), (8, 32, 200, 40, 5),
    (4, 32, 96, 160, 1), (8, 32, 96, 160, 2), (4, 32, 96, 160, 4),  # 5 groups a share: ragged streams
    (4, 32, 96, 160, 2),  # the same for the 4-bit 2-row tile
    (4, 128, 896, 96, 37), (8, 32, 896, 96, 70), (4, 64, 192, 48, 15),  # row tiles 8 + 4 + 2 + 1, 8 x 8 + 4 + 2
    # (on AVX2 70 rows of 8 bits run 17 x 4 + 2: more than 16 rows stay in 4-row tiles)
    (8, 128, 896, 200, 11),  # 8-bit 8 + 2 + 1 (on AVX2 the 8-row tile up to 16 rows, 4-row tiles above)
    (8, 128, 896, 203, 17), (4, 16, 160, 45, 9),  # the other side of 16; N ending inside an 8-column half
]


def _kernel_lib(isa):
    """The built library (ctypes) with its size functions typed; skips where this CPU does not run ISA `isa`."""
    import platform

    lib_path, why = qmatmul.build()
    assert lib_path is not None, why
    lib = ctypes.CDLL(str(lib_path))
    if isa > lib.uk_isa() or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"this CPU does not run ISA {isa}")
    for f in ("uk_packed_bytes", "uk_packed_scales", "uk_scratch_bytes"):
        getattr(lib, f).restype = ctypes.c_size_t
    return lib


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512-vnni"])
@pytest.mark.parametrize("bits,block,k,n,m", CASES)
def test_kernel_matches_exact_reference(isa, bits, block, k, n, m):
    lib = _kernel_lib(isa)
    rng = np.random.default_rng(bits * 1000 + k + n + m)
    b, scales, q, zp = matmulnbits_weights(rng, k, n, bits, block)
    kp = q.shape[1]
    s = Shape(bits, block, k, n, kp, -(-n // 16) * 16)
    w = np.zeros(lib.uk_packed_bytes(ctypes.byref(s)), np.uint8)
    ws = np.zeros(lib.uk_packed_scales(ctypes.byref(s)), np.float32)
    ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    lib.uk_pack(ctypes.byref(s), ptr(b), ptr(scales), ptr(w), ptr(ws))
    a = rng.standard_normal((m, k)).astype(np.float32)
    bias = rng.standard_normal(n).astype(np.float32)
    scratch = np.zeros(lib.uk_scratch_bytes(ctypes.byref(s), ctypes.c_int64(m)), np.uint8)
    lib.uk_quantize(ctypes.byref(s), ptr(a), ctypes.c_int64(m), ptr(scratch))
    c = np.full((m, n), np.nan, np.float32)
    groups = s.np // 16
    for g0, g1 in ((0, groups // 2), (groups // 2, groups)):  # two shares, as two threads take them
        lib.uk_gemm(ctypes.byref(s), ptr(scratch), ctypes.c_int64(m), ptr(w), ptr(ws), ptr(bias), ptr(c),
                    ctypes.c_int64(g0), ctypes.c_int64(g1), ctypes.c_int(isa))
    ref = same_quant_reference(a, q, zp, scales, block) + bias
    err = float(np.abs(c - ref).max() / np.abs(ref).max())
    deq = a @ ((q[:, :k].astype(np.float64) - zp) * np.repeat(scales, block, 1)[:, :k]).T + bias
    err_float = float(np.abs(c - deq).max() / np.abs(deq).max())
    print(f"isa {isa} int{bits} block {block} {m}x{k} . {k}x{n}: max rel diff vs same-quant reference {err:.2e}, "
          f"vs float weights {err_float:.2e}")
    assert np.isfinite(c).all()
    assert err < 2e-6
    assert err_float < 3e-2



@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512-vnni"])
def test_a_row_gets_the_same_bits_in_any_batch(isa):
    """A row's outputs do not depend on the rows beside it: whatever row tile (1, 2, 4, 8 rows; at 8, two streams
    sharing each broadcast and a one-stream rest) and column share computes it, its bits are those it gets alone.
    A guided draw's rows run 8 at a time at --n 4 and 2 at --n 1, and a request's codes must not depend on
    which others share its batch."""
    lib = _kernel_lib(isa)
    ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    # 71, 56, 3 and 4 column groups, cut in two shares: odd and even shares, a share of one group, and shares of two
    # whose second stream is the last, partly filled group (N = 40, 56: 8 of its 16 columns)
    for bits, block, k, n in ((4, 128, 896, 1136), (8, 32, 896, 896), (4, 32, 200, 40), (8, 32, 3584, 1136),
                              (8, 32, 200, 40), (8, 32, 896, 56), (4, 128, 896, 56)):
        rng = np.random.default_rng(bits + k + n)
        b, scales, q, _ = matmulnbits_weights(rng, k, n, bits, block)
        s = Shape(bits, block, k, n, q.shape[1], -(-n // 16) * 16)
        w = np.zeros(lib.uk_packed_bytes(ctypes.byref(s)), np.uint8)
        ws = np.zeros(lib.uk_packed_scales(ctypes.byref(s)), np.float32)
        lib.uk_pack(ctypes.byref(s), ptr(b), ptr(scales), ptr(w), ptr(ws))
        bias = rng.standard_normal(n).astype(np.float32)
        groups = s.np // 16

        def run(a):
            m = a.shape[0]
            scratch = np.zeros(lib.uk_scratch_bytes(ctypes.byref(s), ctypes.c_int64(m)), np.uint8)
            lib.uk_quantize(ctypes.byref(s), ptr(a), ctypes.c_int64(m), ptr(scratch))
            c = np.full((m, n), np.nan, np.float32)
            for g0, g1 in ((0, groups // 2), (groups // 2, groups)):
                lib.uk_gemm(ctypes.byref(s), ptr(scratch), ctypes.c_int64(m), ptr(w), ptr(ws), ptr(bias), ptr(c),
                            ctypes.c_int64(g0), ctypes.c_int64(g1), ctypes.c_int(isa))
            return c

        a = rng.standard_normal((20, k)).astype(np.float32)
        alone = np.concatenate([run(np.ascontiguousarray(a[i:i + 1])) for i in range(20)])
        assert np.isfinite(alone).all()
        for m in (2, 8, 9, 13, 16, 17, 20):  # AVX2 8-bit: the 8-row tile up to 16 rows, 4-row tiles above
            got = run(np.ascontiguousarray(a[:m]))
            assert np.array_equal(got, alone[:m]), (bits, k, n, m, float(np.abs(got - alone[:m]).max()))

def matmulnbits_model(rng, k, n, bits, block, bias):
    b, scales, _, _ = matmulnbits_weights(rng, k, n, bits, block)
    inits = [numpy_helper.from_array(b, "B"), numpy_helper.from_array(scales.reshape(-1), "S")]
    inputs = ["A", "B", "S"]
    if bias:
        inits.append(numpy_helper.from_array(rng.standard_normal(n).astype(np.float32), "bias"))
        inputs += ["", "", "bias"]
    node = helper.make_node("MatMulNBits", inputs, ["Y"], domain="com.microsoft", K=k, N=n, bits=bits,
                            block_size=block, accuracy_level=4)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, ["b", "t", k])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, ["b", "t", n])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                   helper.make_opsetid("com.microsoft", 1)]).SerializeToString()


@needs_cc
@pytest.mark.parametrize("bits,block,k,n,bias", [(4, 128, 896, 1152, False), (4, 32, 896, 4864, True),
                                                 (8, 32, 3584, 896, False), (4, 128, 200, 40, True)])
def test_op_matches_onnxruntime_kernel(bits, block, k, n, bias):
    lib, why = qmatmul.build()
    assert lib is not None, why
    model = matmulnbits_model(np.random.default_rng(k + n), k, n, bits, block, bias)
    plain, ours = ort.SessionOptions(), ort.SessionOptions()
    plain.intra_op_num_threads = ours.intra_op_num_threads = 2
    ours.register_custom_ops_library(str(lib))
    s_plain, s_ours = ort.InferenceSession(model, plain), ort.InferenceSession(model, ours)
    rng = np.random.default_rng(1)
    for rows in (1, 2, 8, 50):
        a = rng.standard_normal((1, rows, k)).astype(np.float32)
        want, got = s_plain.run(None, {"A": a})[0], s_ours.run(None, {"A": a})[0]
        diff = float(np.abs(want - got).max() / np.abs(want).max())
        print(f"int{bits} block {block} {rows} rows: max rel diff, ours vs ONNX Runtime's MatMulNBits {diff:.2e}")
        assert got.shape == want.shape
        assert diff < 1e-5


@needs_cc
def test_op_split_into_any_number_of_tasks_gives_the_same_bits():
    """The op splits each matrix into one task per session thread (set_session_threads, read when the
    session's kernels are created); a task's range is cut into streams and a one-stream rest. However it
    is cut, every column is computed by the same sequence of operations: the outputs agree to the bit."""
    lib, why = qmatmul.build()
    assert lib is not None, why
    rng = np.random.default_rng(7)
    for bits, block, k, n in ((4, 128, 896, 1136), (8, 32, 200, 328)):  # 71 and 21 column groups
        model = matmulnbits_model(rng, k, n, bits, block, True)
        a = rng.standard_normal((1, 9, k)).astype(np.float32)  # row tiles 8 + 1
        outs = outputs_per_task_split(lib, model, [{"A": a[:, :r]} for r in (1, 2, 9)])
        for tasks, got in outs.items():
            assert np.array_equal(got, outs[1]), (bits, tasks, float(np.abs(got - outs[1]).max()))


@needs_cc
def test_op_refuses_what_it_cannot_run():
    """Float activations (accuracy level 0) are not what these kernels compute: a clear error at load."""
    lib, why = qmatmul.build()
    assert lib is not None, why
    rng = np.random.default_rng(0)
    b, scales, _, _ = matmulnbits_weights(rng, 64, 32, 4, 32)
    node = helper.make_node("MatMulNBits", ["A", "B", "S"], ["Y"], domain="com.microsoft", K=64, N=32, bits=4,
                            block_size=32, accuracy_level=0)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("A", TensorProto.FLOAT, [1, 64])],
                              [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 32])],
                              [numpy_helper.from_array(b, "B"), numpy_helper.from_array(scales.reshape(-1), "S")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)])
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(lib))
    with pytest.raises(Exception, match="accuracy_level=0.*UNIFORK_RT_QMATMUL=0"):
        ort.InferenceSession(model.SerializeToString(), opts)


def test_modes_and_fallbacks(monkeypatch, tmp_path):
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "0")
    assert qmatmul.library_for_sessions() is None
    # no compiler: auto keeps ONNX Runtime's kernel, 1 is an error that names the fix
    monkeypatch.setenv("UNIFORK_RT_CACHE", str(tmp_path))
    monkeypatch.setattr(qmatmul, "_built", {})
    monkeypatch.setattr(qmatmul, "_compiler", lambda: None)
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "auto")
    if qmatmul.platform.machine().lower() in ("x86_64", "amd64"):
        assert qmatmul.build() == (None, "no C compiler (cc, gcc or clang) to build them with")
    assert qmatmul.library_for_sessions() is None
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "1")
    with pytest.raises(MissingDependencyError, match="UNIFORK_RT_QMATMUL=1.*unset it"):
        qmatmul.library_for_sessions()


@needs_cc
def test_build_is_cached_and_atomic(monkeypatch, tmp_path):
    monkeypatch.setattr(qmatmul, "_built", {})
    lib, why = qmatmul.build(cache_dir=tmp_path)
    assert lib == tmp_path / "libunifork_qmatmul.so" and lib.is_file(), why
    assert [p.name for p in tmp_path.iterdir()] == ["libunifork_qmatmul.so"]  # no temporary left behind
    # a compiler that fails leaves nothing half-written and says why
    monkeypatch.setattr(qmatmul, "_built", {})
    bad = tmp_path / "bad"
    monkeypatch.setattr(qmatmul, "_compiler", lambda: shutil.which("false") or "false")
    got, why = qmatmul.build(cache_dir=bad)
    assert got is None and "could not build them" in why
    assert list(bad.iterdir()) == []


@needs_cc
@pytest.mark.parametrize("precision", ["int4"])  # int8's op is covered above; one export keeps CI short
def test_backend_runs_quantized_graphs_on_our_kernels(precision, micro_model_dir, tmp_path, monkeypatch):
    """An int4 / int8 bundle through OrtBackend: the MatMulNBits graphs load with our library (and only
    they: the image graphs, whose optimized forms hold FusedMatMul / FusedConv, load without it), and
    every graph's outputs match ONNX Runtime's own kernels on the same feeds."""
    pytest.importorskip("torch")
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.bundle import load_bundle
    from unifork_rt.runtime.ort_backend import OrtBackend

    out = export_bundle(micro_model_dir, tmp_path / precision, precision=precision, progress=False)
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "1")
    ours = OrtBackend(load_bundle(out), threads=2).load()
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "0")
    plain = OrtBackend(load_bundle(out), threads=2).load()
    assert ours.qmatmul is not None and plain.qmatmul is None
    compared = compare_backend_graphs(ours, plain, precision)
    assert {"trunk", "gen_branch", "und_branch", "connector"} <= compared, compared
    assert ours.qmatmul_skipped == {}


def test_unwritable_cache_falls_back(monkeypatch, tmp_path):
    """A cache folder that cannot be created is a reason, not a crash: auto mode keeps ONNX Runtime's kernel."""
    monkeypatch.setattr(qmatmul, "_built", {})
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    got, why = qmatmul.build(cache_dir=blocker / "kernels")
    if qmatmul.platform.machine().lower() not in ("x86_64", "amd64"):
        pytest.skip("the kernels are x86-64 only")
    assert got is None and "not writable" in why and "UNIFORK_RT_CACHE" in why


@needs_cc
def test_op_with_weights_in_a_mapped_data_file(tmp_path):
    """Weights in NAME.onnx.data (as the paper bundles keep them) are mapped by ONNX Runtime; after packing,
    the op drops those pages (qmatmul_op.c release_if_file_backed). The results stay ONNX Runtime's, run
    after run, and with a second session on the same file."""
    lib, why = qmatmul.build()
    assert lib is not None, why
    rng = np.random.default_rng(3)
    model = onnx.load_from_string(matmulnbits_model(rng, 896, 4864, 4, 128, True))
    path = tmp_path / "mm.onnx"
    onnx.save_model(model, str(path), save_as_external_data=True, location="mm.onnx.data", size_threshold=0)
    plain, ours = ort.SessionOptions(), ort.SessionOptions()
    ours.register_custom_ops_library(str(lib))
    s_plain = ort.InferenceSession(str(path), plain)
    s_ours = [ort.InferenceSession(str(path), ours) for _ in range(2)]
    for rows in (1, 8):
        a = rng.standard_normal((1, rows, 896)).astype(np.float32)
        want = s_plain.run(None, {"A": a})[0]
        for s in s_ours + s_ours:
            got = s.run(None, {"A": a})[0]
            diff = float(np.abs(want - got).max() / np.abs(want).max())
            print(f"external weights, {rows} rows: max rel diff {diff:.2e}")
            assert diff < 1e-5
