"""unifork-rt's GroupQueryAttention kernel (runtime/kernels/attn_kernels.c, registered by qmatmul_op.c):
against a float64 NumPy reference written from the op's contract on both ISAs, against ONNX Runtime's own
kernel through a session, row by row independent of its batch, and its refusals."""

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
F32, I32, I64 = TensorProto.FLOAT, TensorProto.INT32, TensorProto.INT64
MASK = -65504.0


def reference(qkv, past_k, past_v, past, hq, hkv, cos=None, sin=None, pos_ids=None, bias=None):
    """GroupQueryAttention as our graphs use it, in float64: packed (B, T, (hq + 2 hkv) dh) input, the new
    keys (rotate_half rotary at pos_ids, or past[b] + t) and values written into copies of the caches at
    past[b] + t, query t of row b attending to keys 0 .. past[b] + t, bias added to the scaled scores."""
    B, T, width = qkv.shape
    dh = width // (hq + 2 * hkv)
    q = qkv[..., :hq * dh].reshape(B, T, hq, dh).astype(np.float64)
    k = qkv[..., hq * dh:(hq + hkv) * dh].reshape(B, T, hkv, dh).astype(np.float64)
    v = qkv[..., (hq + hkv) * dh:].reshape(B, T, hkv, dh).astype(np.float64)
    kc, vc = past_k.astype(np.float64), past_v.astype(np.float64)

    def rot(x, p):
        c, s = cos[p].astype(np.float64), sin[p].astype(np.float64)
        x1, x2 = x[: dh // 2], x[dh // 2:]
        return np.concatenate([x1 * c - x2 * s, x2 * c + x1 * s])

    out = np.zeros((B, T, hq, dh))
    for b in range(B):
        for t in range(T):
            p = int(pos_ids[b, t]) if pos_ids is not None else past[b] + t
            for h in range(hkv):
                kc[b, h, past[b] + t] = rot(k[b, t, h], p) if cos is not None else k[b, t, h]
                vc[b, h, past[b] + t] = v[b, t, h]
        for t in range(T):
            p = int(pos_ids[b, t]) if pos_ids is not None else past[b] + t
            n = past[b] + t + 1
            for h in range(hq):
                qh = rot(q[b, t, h], p) if cos is not None else q[b, t, h]
                g = h // (hq // hkv)
                s = kc[b, g, :n] @ qh / np.sqrt(dh)
                if bias is not None:
                    s = s + bias[b % bias.shape[0], h % bias.shape[1], t, :n]
                w = np.exp(s - s.max())
                out[b, t, h] = (w / w.sum()) @ vc[b, g, :n]
    return out.reshape(B, T, hq * dh), kc, vc


def gqa_model(hq, hkv, dh, cap, rotary, bias, bias_dims=("B", 1), **attrs):
    ins = [helper.make_tensor_value_info("qkv", F32, ["B", "T", (hq + 2 * hkv) * dh]),
           helper.make_tensor_value_info("pk", F32, ["B", hkv, cap, dh]),
           helper.make_tensor_value_info("pv", F32, ["B", hkv, cap, dh]),
           helper.make_tensor_value_info("seqlens", I32, ["B"]), helper.make_tensor_value_info("total", I32, []),
           helper.make_tensor_value_info("qlens", I32, ["B"])]
    names = ["qkv", "", "", "pk", "pv", "seqlens", "total"]
    if rotary:
        ins += [helper.make_tensor_value_info("cos", F32, ["P", dh // 2]),  # free: the kernel checks them
                helper.make_tensor_value_info("sin", F32, ["P2", dh // 2]),
                helper.make_tensor_value_info("pos", I64, ["B", "T"])]
        names += ["cos", "sin", "pos"]
    else:
        names += ["", "", ""]
    if bias:
        ins.append(helper.make_tensor_value_info("bias", F32, [*bias_dims, "T", "L"]))
    names += ["bias" if bias else "", "", "", "", "", "", "qlens"]
    node = helper.make_node("GroupQueryAttention", names, ["out", "prk", "prv"], domain="com.microsoft",
                            num_heads=hq, kv_num_heads=hkv, do_rotary=int(rotary), **attrs)
    outs = [helper.make_tensor_value_info("out", F32, ["B", "T", hq * dh]),
            helper.make_tensor_value_info("prk", F32, ["B", hkv, cap, dh]),
            helper.make_tensor_value_info("prv", F32, ["B", hkv, cap, dh])]
    graph = helper.make_graph([node], "gqa", ins, outs)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=10).SerializeToString()


def gqa_feeds(rng, hq, hkv, dh, cap, rotary, bias, B, T, pos):
    """Feeds as the graphs' preamble makes them: rows left-padded (start[b] slots hidden by the bias, rotary
    positions counted from start[b]), all rows at the same pos."""
    start = rng.integers(0, max(1, pos // 2), B) if bias else np.zeros(B, np.int64)
    feeds = {"qkv": rng.standard_normal((B, T, (hq + 2 * hkv) * dh), dtype=np.float32),
             "pk": rng.standard_normal((B, hkv, cap, dh), dtype=np.float32),
             "pv": rng.standard_normal((B, hkv, cap, dh), dtype=np.float32),
             "seqlens": np.full(B, pos + T - 1, np.int32), "total": np.array(pos + T, np.int32),
             "qlens": np.full(B, T, np.int32)}
    if rotary:
        ang = np.arange(cap)[:, None] / 10000 ** (np.arange(dh // 2) / (dh // 2))
        feeds.update(cos=np.cos(ang).astype(np.float32), sin=np.sin(ang).astype(np.float32),
                     pos=np.maximum(pos + np.arange(T)[None] - start[:, None], 0).astype(np.int64))
    if bias:
        b = np.zeros((B, 1, T, pos + T), np.float32)
        for r in range(B):
            b[r, :, :, :start[r]] = MASK
        feeds["bias"] = b
    return feeds


def gqa_session(model, lib, threads=2):
    """A CPU session of MODEL with our library registered when LIB."""
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if lib is not None:
        opts.register_custom_ops_library(str(lib))
    return ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])


def bind_shared(sess, feeds):
    """An IOBinding of FEEDS with each present output bound to its past input's memory, as the runtime binds
    them (so the caches in FEEDS are written in place); "out" first, so get_outputs()[0] is it."""
    io = sess.io_binding()
    io.bind_output("out", "cpu")
    for k, v in feeds.items():
        if k not in ("pk", "pv"):
            io.bind_cpu_input(k, v)
    for past, present in (("pk", "prk"), ("pv", "prv")):
        a = feeds[past]
        io.bind_input(past, "cpu", 0, a.dtype, list(a.shape), a.ctypes.data)
        io.bind_output(present, "cpu", 0, a.dtype, list(a.shape), a.ctypes.data)
    return io


def run_session(model, feeds, lib, shared):
    """out, present_k, present_v of one 2-thread session, our library registered when LIB; SHARED binds each
    present output to its past input's memory, as the runtime does."""
    sess = gqa_session(model, lib)
    feeds = {k: v.copy() for k, v in feeds.items()}
    if not shared:
        return sess.run(None, feeds)
    io = bind_shared(sess, feeds)
    sess.run_with_iobinding(io)
    return [io.get_outputs()[0].numpy(), feeds["pk"], feeds["pv"]]


def built():
    lib, why = qmatmul.build()
    assert lib is not None, why
    return lib


# (hq, hkv, dh, cap, rotary, bias, B, T, pos): paper's decoders (14/2 heads of 64) at a caption step, an
# 8-row draw step and a 300-token prompt; the depth head (no rotary, as many KV heads as query heads, dh 112,
# 4 slots); odd sizes (a key count and head size that are not whole vectors, a prompt that is not whole
# chunks of 16); groups of 4, 6 and 8 query heads (attn_kernels.c's GROUP_ROWS_W: groups of 2, 3, 4, 6, 7 and 8
# with head sizes of whole vectors), the last with the cache full (keys up to its last slot)
CASES = [(14, 2, 64, 512, True, True, 1, 1, 256), (14, 2, 64, 512, True, True, 8, 1, 270),
         (14, 2, 64, 320, True, True, 2, 300, 0), (32, 32, 112, 4, False, False, 8, 1, 3),
         (4, 4, 112, 4, False, False, 3, 1, 0), (6, 2, 48, 64, True, True, 3, 21, 10),
         (4, 2, 16, 40, True, False, 2, 1, 38), (8, 2, 32, 64, True, True, 3, 1, 40),
         (12, 2, 32, 64, True, False, 2, 5, 20), (16, 2, 16, 48, False, True, 2, 1, 47)]


@needs_cc
@pytest.mark.parametrize("case", CASES, ids=lambda c: "hq{}-hkv{}-dh{}-B{}-T{}-pos{}".format(*c[:3], *c[6:]))
def test_op_matches_reference_and_onnxruntime_kernel(case):
    hq, hkv, dh, cap, rotary, bias, B, T, pos = case
    lib = built()
    rng = np.random.default_rng(sum(case))
    model = gqa_model(hq, hkv, dh, cap, rotary, bias)
    feeds = gqa_feeds(rng, hq, hkv, dh, cap, rotary, bias, B, T, pos)
    ref = reference(feeds["qkv"], feeds["pk"], feeds["pv"], [pos] * B, hq, hkv, feeds.get("cos"), feeds.get("sin"),
                    feeds.get("pos"), feeds.get("bias"))
    L = pos + T
    for shared in (True, False):
        ours = run_session(model, feeds, lib, shared)
        theirs = run_session(model, feeds, None, shared)
        d_ref = float(np.abs(ours[0] - ref[0]).max())
        d_ort = float(np.abs(ours[0] - theirs[0]).max())
        d_ort_ref = float(np.abs(theirs[0] - ref[0]).max())
        print(f"{case} shared={shared}: max |ours - float64 reference| {d_ref:.2e}, |ours - ONNX Runtime| "
              f"{d_ort:.2e} (ONNX Runtime vs reference {d_ort_ref:.2e})")
        assert ours[0].shape == (B, T, hq * dh)
        assert d_ref < 2e-5 and d_ort < 2e-5
        for got, want in zip(ours[1:], ref[1:]):  # the caches: what was there, and the new keys/values
            assert np.abs(got[:, :, :L] - want[:, :, :L]).max() < 1e-5
            if shared:  # written in place: nothing past the new slots is touched
                assert np.array_equal(got[:, :, L:], want[:, :, L:].astype(np.float32))
            else:  # a present of its own: zeros there, as ONNX Runtime's kernel leaves them
                assert not got[:, :, L:].any()


@needs_cc
def test_head_sizes_onnxruntime_refuses_and_rows_alone_give_the_same_bits():
    """ONNX Runtime's CPU kernel takes head sizes that are multiples of 16 only; ours any (vector tails are
    scalar). A row's outputs do not depend on the rows batched with it, to the bit."""
    lib = built()
    hq, hkv, dh, cap, B, pos = 6, 2, 40, 48, 3, 30
    model = gqa_model(hq, hkv, dh, cap, True, True)
    feeds = gqa_feeds(np.random.default_rng(3), hq, hkv, dh, cap, True, True, B, 1, pos)
    ours = run_session(model, feeds, lib, True)
    ref = reference(feeds["qkv"], feeds["pk"], feeds["pv"], [pos] * B, hq, hkv, feeds["cos"], feeds["sin"],
                    feeds["pos"], feeds["bias"])
    print(f"head size 40: max |ours - reference| {float(np.abs(ours[0] - ref[0]).max()):.2e}")
    assert np.abs(ours[0] - ref[0]).max() < 2e-5
    with pytest.raises(Exception, match="head_size"):
        run_session(model, feeds, None, True)
    for r in range(B):
        alone = {k: (v if k in ("total", "cos", "sin") else v[r:r + 1]) for k, v in feeds.items()}
        got = run_session(model, alone, lib, True)
        assert np.array_equal(got[0], ours[0][r:r + 1])


class Attn(ctypes.Structure):  # uk_attn, qmatmul_kernels.h
    _fields_ = [(n, ctypes.c_int64) for n in ("b", "t", "hq", "hkv", "dh", "cap")] + [
        ("q", ctypes.c_void_p), ("k", ctypes.c_void_p), ("v", ctypes.c_void_p),
        ("q_stride", ctypes.c_int64), ("kv_stride", ctypes.c_int64), ("kc", ctypes.c_void_p), ("vc", ctypes.c_void_p),
        ("seqlens_k", ctypes.c_void_p), ("cos_cache", ctypes.c_void_p), ("sin_cache", ctypes.c_void_p),
        ("position_ids", ctypes.c_void_p), ("bias", ctypes.c_void_p), ("bias_b", ctypes.c_int64),
        ("bias_h", ctypes.c_int64), ("total", ctypes.c_int64), ("scale", ctypes.c_float), ("out", ctypes.c_void_p)]


def kernel_lib(isa):
    """The built library (ctypes), skipping where this CPU does not run ISA `isa` (1 AVX2, 2 AVX-512 VNNI)."""
    import platform

    lib = ctypes.CDLL(str(built()))
    if isa > lib.uk_isa() or platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip(f"this CPU does not run ISA {isa}")
    lib.uk_attn_scratch_floats.restype = ctypes.c_size_t
    return lib


def run_kernel(lib, isa, qkv, kc, vc, past, hq, hkv, cos=None, sin=None, bias=None, chunk=None):
    """uk_attn_write_kv then uk_attn_rows for every (row, KV head), tokens `chunk` at a time (all at once by default),
    as the op calls them: the output (B, T, hq dh); kc and vc are written in place."""
    B, T, width = qkv.shape
    dh, cap = width // (hq + 2 * hkv), kc.shape[2]
    seqlens_k = (np.asarray(past) + T - 1).astype(np.int32)  # GQA's input: the last key position after the step
    out = np.full((B, T, hq * dh), 7.0, np.float32)
    ptr = lambda a: None if a is None else a.ctypes.data  # noqa: E731
    a = Attn(B, T, hq, hkv, dh, cap, ptr(qkv), ptr(qkv) + hq * dh * 4, ptr(qkv) + (hq + hkv) * dh * 4, width, width,
             ptr(kc), ptr(vc), ptr(seqlens_k), ptr(cos), ptr(sin), None, ptr(bias),
             1 if bias is None else bias.shape[0], 1 if bias is None else bias.shape[1],
             0 if bias is None else bias.shape[3], 1 / np.sqrt(dh), ptr(out))
    lib.uk_attn_write_kv(ctypes.byref(a))
    scratch = np.full(lib.uk_attn_scratch_floats(ctypes.byref(a)), np.nan, np.float32)
    step = chunk or T
    for b in range(B):
        for h in range(hkv):
            for t0 in range(0, T, step):
                lib.uk_attn_rows(ctypes.byref(a), ctypes.c_int64(b), ctypes.c_int64(h), ctypes.c_int64(t0),
                                 ctypes.c_int64(min(t0 + step, T)), ctypes.c_void_p(ptr(scratch)), ctypes.c_int(isa))
    return out


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
def test_kernel_on_each_isa(isa):
    """The kernel itself, called on each ISA's code (whichever this CPU runs in sessions), against the reference;
    rows at different fill levels (past differs per row)."""
    lib = kernel_lib(isa)
    rng = np.random.default_rng(isa)
    for hq, hkv, dh, cap, T, rotary in ((14, 2, 64, 80, 1, True), (4, 2, 40, 40, 9, True), (8, 8, 112, 4, 1, False)):
        B = 3
        past = np.array([0, cap // 2 - T, cap - T], np.int64)
        qkv = rng.standard_normal((B, T, (hq + 2 * hkv) * dh), dtype=np.float32)
        kc = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
        vc = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
        ang = np.arange(cap)[:, None] / 10000 ** (np.arange(dh // 2) / (dh // 2))
        cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
        ref = reference(qkv, kc, vc, past, hq, hkv, cos if rotary else None, sin if rotary else None)
        out = run_kernel(lib, isa, qkv, kc, vc, past, hq, hkv, cos if rotary else None, sin if rotary else None)
        d = float(np.abs(out - ref[0]).max())
        print(f"isa {isa} hq {hq} hkv {hkv} dh {dh} T {T}: max |kernel - reference| {d:.2e}")
        assert d < 2e-5
        assert np.abs(kc - ref[1]).max() < 1e-5 and np.array_equal(vc, ref[2].astype(np.float32))


@needs_cc
@pytest.mark.parametrize("isa", [1, 2], ids=["avx2", "avx512"])
def test_grouped_heads(isa):
    """The kernel's grouped path (attn_kernels.c GROUP_ROWS_W: AVX-512 for head sizes of whole 16-float vectors,
    AVX2 of whole 8-float ones), called directly for every group it has, with head sizes that run its wide value
    pass and its one-vector leftovers, 1 and 3 new tokens, rows with no past, part of a cache and a full one (key
    counts that are and are not whole blocks), and a per-head bias that masks two heads of a group entirely in one
    row and puts a NaN in one head's row in another; a group of 5 and a head size of 36 take the per-head path on
    both ISAs, head sizes of 40 and 72 take it on AVX-512 and the grouped one on AVX2. Leftover value passes
    (vectors a head past a whole number of C): AVX2 at G = 2, 3, 4, 6 (72, 64, 40, 40), AVX-512 at G = 2, 3, 4, 6,
    7 and 8 (144, 64, 96, 80, 64, 16). Against the float64 reference;
    masked heads give zeros, the NaN head NaN, as ONNX Runtime's kernel."""
    lib = kernel_lib(isa)
    rng = np.random.default_rng(41)
    worst = 0.0
    for G, dh in ((2, 128), (3, 96), (4, 80), (6, 48), (7, 64), (8, 32), (8, 16), (5, 64), (4, 40), (6, 40), (2, 72),
                  (4, 36), (3, 64), (2, 144), (4, 96), (6, 80)):
        for T in (1, 3):
            hkv, cap, B = 2, 37, 3
            hq = G * hkv
            past = np.array([0, int(rng.integers(1, cap - T)), cap - T], np.int64)
            qkv = rng.standard_normal((B, T, (hq + 2 * hkv) * dh), dtype=np.float32)
            kc = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
            vc = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
            bias = rng.standard_normal((B, hq, T, cap)).astype(np.float32)
            bias[1, [0, 2]] = -np.inf  # a group with masked and live heads: 0 and 2 in one group, or (G = 2) one in each
            nan_head = hq - 1
            bias[2, nan_head, :, 0] = np.nan
            ref = reference(qkv, kc, vc, past, hq, hkv, bias=np.nan_to_num(bias, nan=0.0, neginf=0.0))
            out = run_kernel(lib, isa, qkv, kc, vc, past, hq, hkv, bias=bias, chunk=2)  # tokens in chunks, as prompts
            got = out.reshape(B, T, hq, dh)
            want = ref[0].reshape(B, T, hq, dh)
            masked = np.zeros((B, hq), bool)
            masked[1, [0, 2]] = True
            masked[2, nan_head] = True
            assert not got[1, :, [0, 2]].any(), "fully masked heads give zeros"
            assert np.isnan(got[2, :, nan_head]).all(), "a NaN score gives NaN"
            keep = ~masked[:, None, :].repeat(T, 1)  # (B, T, hq)
            d = float(np.abs(got[keep] - want[keep]).max())
            worst = max(worst, d)
            assert d < 2e-5, (G, dh, T, d)
    print(f"isa {isa} grouped heads, every group: max |kernel - reference| {worst:.2e}")


@needs_cc
@pytest.mark.parametrize("attrs,match", [({"softcap": 30.0}, "softcap"), ({"local_window_size": 16}, "local_window_size"),
                                         ({"rotary_interleaved": 1}, "rotary_interleaved")])
def test_op_refuses_what_it_cannot_run(attrs, match):
    """Attributes our graphs never set: a clear error at load naming the fix (the backend then loads that
    graph without our library, and says so)."""
    model = gqa_model(4, 2, 16, 8, True, False, **attrs)
    opts = ort.SessionOptions()
    opts.register_custom_ops_library(str(built()))
    with pytest.raises(Exception, match=f"{match}.*UNIFORK_RT_ATTENTION=0"):
        ort.InferenceSession(model, opts)


@needs_cc
def test_a_sequence_past_the_cache_as_onnxruntime():
    """A 9th position with a cache of 8: a present bound to the past's memory cannot hold it (ONNX Runtime says
    so, naming the shapes); a present of its own grows to total_sequence_length, as ONNX Runtime's does."""
    lib = built()
    model = gqa_model(4, 2, 16, 8, True, False)
    feeds = gqa_feeds(np.random.default_rng(0), 4, 2, 16, 16, True, False, 1, 1, 8)
    feeds["pk"], feeds["pv"] = feeds["pk"][:, :, :8].copy(), feeds["pv"][:, :, :8].copy()
    with pytest.raises(Exception, match="shape"):
        run_session(model, feeds, lib, True)
    ours, theirs = run_session(model, feeds, lib, False), run_session(model, feeds, None, False)
    assert [o.shape for o in ours] == [o.shape for o in theirs] and ours[1].shape[2] == 9
    assert all(np.abs(a - b).max() < 2e-5 for a, b in zip(ours, theirs))


@needs_cc
def test_edge_inputs_as_onnxruntime():
    """No new tokens with a present of its own (the past copied over); a bias broadcast over rows or over
    heads; a row whose every key is masked (zeros, as ONNX Runtime) and a NaN in the bias (NaN, as ONNX
    Runtime); all against ONNX Runtime's kernel."""
    lib = built()
    rng = np.random.default_rng(11)
    feeds = gqa_feeds(rng, 4, 2, 16, 16, True, False, 2, 0, 5)
    ours, theirs = run_session(gqa_model(4, 2, 16, 16, True, False), feeds, lib, False), \
        run_session(gqa_model(4, 2, 16, 16, True, False), feeds, None, False)
    assert ours[0].shape == (2, 0, 64) and np.array_equal(ours[1], theirs[1]) and np.array_equal(ours[2], theirs[2])
    for dims in ((1, 4), (1, 1), ("B", 4)):
        model = gqa_model(4, 2, 16, 32, True, True, bias_dims=dims)
        feeds = gqa_feeds(rng, 4, 2, 16, 32, True, True, 3, 2, 20)
        bias = rng.standard_normal((3 if dims[0] == "B" else 1, dims[1], 2, 22)).astype(np.float32)
        bias[..., :3] = MASK
        feeds["bias"] = bias
        got, want = run_session(model, feeds, lib, True)[0], run_session(model, feeds, None, True)[0]
        print(f"bias {bias.shape}: max |ours - ONNX Runtime| {float(np.abs(got - want).max()):.2e}")
        assert np.abs(got - want).max() < 2e-5
    model = gqa_model(4, 2, 16, 32, True, True)
    feeds = gqa_feeds(rng, 4, 2, 16, 32, True, True, 3, 1, 20)
    feeds["bias"][0] = -np.inf
    feeds["bias"][1] = np.finfo(np.float32).min
    feeds["bias"][2, 0, 0, 4] = np.nan
    got, want = run_session(model, feeds, lib, True)[0], run_session(model, feeds, None, True)[0]
    assert not got[:2].any() and not want[:2].any()
    assert np.isnan(got[2]).all() and np.isnan(want[2]).any()


@needs_cc
def test_inputs_of_mismatched_shapes_are_refused():
    """Shapes ONNX Runtime's kernel refuses must not be read past their end by ours."""
    lib = built()
    model = gqa_model(4, 2, 16, 64, True, False)
    feeds = gqa_feeds(np.random.default_rng(0), 4, 2, 16, 64, True, False, 1, 1, 40)
    bad = dict(feeds, sin=feeds["sin"][:1].copy())
    with pytest.raises(Exception, match="cos/sin caches of one shape"):
        run_session(model, bad, lib, False)


# (hq, hkv, dh, B, pos) for the same-bits test: paper's decoders (groups of 7 query heads of 64) and groups of 3 and
# 4 heads of 40 and 32 (head sizes of whole AVX2 vectors but not of whole AVX-512 ones: grouped on AVX2 only)
BITS_CASES = [(14, 2, 64, 3, 39), (6, 2, 40, 3, 30), (8, 2, 32, 4, 21)]


def thread_and_batch_mismatches():
    """The number of outputs, over BITS_CASES, that differ in any bit between 1, 2 and 3 threads, or between a row
    alone and the same row in its batch (run in this process's ISA; a child process runs it with AVX2 code)."""
    lib, bad = built(), 0
    for hq, hkv, dh, B, pos in BITS_CASES:
        model = gqa_model(hq, hkv, dh, 64, True, True)
        feeds = gqa_feeds(np.random.default_rng(dh), hq, hkv, dh, 64, True, True, B, 1, pos)
        outs = [gqa_session(model, lib, threads).run(None, {k: v.copy() for k, v in feeds.items()})[0]
                for threads in (1, 2, 3)]
        bad += sum(not np.array_equal(o, outs[0]) for o in outs)
        for r in range(B):
            alone = {k: (v if k in ("total", "cos", "sin") else v[r:r + 1]) for k, v in feeds.items()}
            bad += not np.array_equal(run_session(model, alone, lib, False)[0], outs[0][r:r + 1])
    return bad


@needs_cc
@pytest.mark.parametrize("isa", [None, "avx2"], ids=["native", "avx2"])
def test_outputs_do_not_depend_on_thread_count_or_batch(isa):
    """Each output row is one task's: 1, 2 or 3 threads, a row alone or in a batch, the same bits (40 keys: the
    16-key path and its tail), on this CPU's code and on the AVX2 code (UNIFORK_RT_ISA=avx2 in a child process)."""
    if isa is None:
        bad = thread_and_batch_mismatches()
    else:
        if ctypes.CDLL(str(built())).uk_isa() < 1:
            pytest.skip("this CPU does not run AVX2")
        bad = child_floats("import sys\n"
                           f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
                           "from test_attention_kernel import thread_and_batch_mismatches\n"
                           "print(thread_and_batch_mismatches())\n", isa, timeout=120)[-1]
    print(f"{isa or 'native'}: {bad:.0f} outputs differ across thread counts or batch")
    assert bad == 0


@needs_cc
def test_avx2_code_through_the_op():
    """The AVX2 code through a session (UNIFORK_RT_ISA=avx2 in a child process: the ISA is read once per
    process), on the paper shapes and an odd head size, against the float64 reference."""
    from pathlib import Path

    lib = ctypes.CDLL(str(built()))
    if lib.uk_isa() < 1:
        pytest.skip("this CPU does not run AVX2")
    script = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {str(Path(__file__).parent)!r})\n"
        "from test_attention_kernel import gqa_model, gqa_feeds, run_session, reference, built\n"
        "worst = 0\n"
        "for hq, hkv, dh, cap, B, T, pos in ((14, 2, 64, 320, 8, 1, 270), (14, 2, 64, 320, 1, 37, 0), (6, 2, 40, 48, 3, 1, 30)):\n"
        "    f = gqa_feeds(np.random.default_rng(dh + T), hq, hkv, dh, cap, True, True, B, T, pos)\n"
        "    got = run_session(gqa_model(hq, hkv, dh, cap, True, True), f, built(), True)[0]\n"
        "    ref = reference(f['qkv'], f['pk'], f['pv'], [pos] * B, hq, hkv, f['cos'], f['sin'], f['pos'], f['bias'])[0]\n"
        "    worst = max(worst, float(np.abs(got - ref).max()))\n"
        "print(worst)\n")
    worst = child_floats(script, "avx2", timeout=120)[-1]
    print(f"AVX2 through the op: max |ours - reference| {worst:.2e}")
    assert worst < 2e-5


@needs_cc
def test_env_keeps_onnxruntime_kernel(monkeypatch):
    """UNIFORK_RT_ATTENTION=0: the library registers no GroupQueryAttention, so ONNX Runtime's runs (it
    refuses a head size of 40, which ours takes)."""
    lib = built()
    model = gqa_model(4, 2, 40, 8, True, False)
    feeds = gqa_feeds(np.random.default_rng(0), 4, 2, 40, 8, True, False, 1, 1, 3)
    run_session(model, feeds, lib, True)
    monkeypatch.setenv("UNIFORK_RT_ATTENTION", "0")
    with pytest.raises(Exception, match="head_size"):
        run_session(model, feeds, lib, True)


@needs_cc
def test_int8_dynamic_ort_bundle_runs_our_attention_and_integer_matmuls(micro_model_dir, tmp_path, monkeypatch):
    """An int8-dynamic `--graphs ort` bundle (MatMulInteger, no MatMulNBits): its graphs with
    GroupQueryAttention load our library, and only they (the connector, whose optimized form holds
    MatMulIntegerToFloat without importing com.microsoft, fails to load with it): our attention, and (AVX2 or
    AVX-512 VNNI) our DynamicQuantizeMatMul / MatMulIntegerToFloat; every graph's outputs match ONNX
    Runtime's kernels on the same feeds. UNIFORK_RT_ATTENTION=0 leaves the attention to ONNX Runtime (and the
    whole graphs, where the integer ops do not run either)."""
    pytest.importorskip("torch")
    from conftest import compare_backend_graphs
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.bundle import load_bundle
    from unifork_rt.runtime.ort_backend import OrtBackend

    out = export_bundle(micro_model_dir, tmp_path / "int8-dynamic-ort", precision="int8-dynamic", progress=False,
                        variant="ort")
    bundle = load_bundle(out)
    with_gqa = {g for g, e in bundle.manifest["graphs"].items() if "GroupQueryAttention" in e["ops"]}
    assert with_gqa == {"trunk", "und_branch", "gen_branch", "rq_head"}, with_gqa
    assert all("MatMulInteger" in bundle.manifest["graphs"][g]["ops"] for g in with_gqa)
    integer_ops = qmatmul.integer_kernel(built())
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "1")
    # every session made at load (preload), under the settings of its backend: the library reads
    # UNIFORK_RT_ATTENTION when a session registers it
    ours = OrtBackend(load_bundle(out), threads=2, preload=True).load()
    monkeypatch.setenv("UNIFORK_RT_ATTENTION", "0")
    no_attention = OrtBackend(load_bundle(out), threads=2, preload=True).load()
    monkeypatch.setenv("UNIFORK_RT_QMATMUL", "0")
    plain = OrtBackend(load_bundle(out), threads=2, preload=True).load()
    assert ours.qmatmul is not None and ours._qmatmul_graphs == with_gqa
    assert no_attention._qmatmul_graphs == (with_gqa if integer_ops else frozenset())
    assert plain.qmatmul is None
    compared = compare_backend_graphs(ours, plain, "int8-dynamic ort")
    assert with_gqa | {"connector"} <= compared, compared
    assert ours.qmatmul_skipped == {}
    assert all(ours.our_kernels(g) == (g in with_gqa) for g in bundle.graphs)
    if integer_ops:
        assert with_gqa <= compare_backend_graphs(no_attention, plain, "int8-dynamic ort, ONNX Runtime's attention")
        assert no_attention.qmatmul_skipped == {}


@needs_cc
def test_prefetch_of_no_pair_reads_nothing():
    """uk_attn_prefetch_pair for a pair outside [0, b * hkv) returns before it reads anything: seqlens_k lies at the
    end of a page whose next page is unreadable, so reading seqlens_k[b] (a pair past the last) would crash the child
    process. The pairs inside are prefetched without fault."""
    script = f"""
import ctypes, mmap
import numpy as np
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_attention_kernel import Attn
lib = ctypes.CDLL({str(built())!r})
libc = ctypes.CDLL(None, use_errno=True)
libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
page = mmap.PAGESIZE
buf = mmap.mmap(-1, 2 * page)
base = ctypes.addressof(ctypes.c_char.from_buffer(buf))
assert libc.mprotect(base + page, page, 0) == 0  # PROT_NONE
B, hq, hkv, dh, cap, T = 2, 4, 2, 40, 5, 1  # 160-byte heads: not whole cache lines
seq = np.frombuffer(buf, np.int32, B, page - 4 * B)
seq[:] = [2, 4]
qkv = np.ones((B, T, (hq + 2 * hkv) * dh), np.float32)
kc, vc = np.zeros((B, hkv, cap, dh), np.float32), np.zeros((B, hkv, cap, dh), np.float32)
out = np.zeros((B, T, hq * dh), np.float32)
w = qkv.shape[2]
a = Attn(B, T, hq, hkv, dh, cap, qkv.ctypes.data, qkv.ctypes.data + hq * dh * 4, qkv.ctypes.data + (hq + hkv) * dh * 4,
         w, w, kc.ctypes.data, vc.ctypes.data, base + page - 4 * B, None, None, None, None, 1, 1, 0, 1.0, out.ctypes.data)
lib.uk_attn_prefetch_pair.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
for bh in (-1, -(2 ** 62), B * hkv, B * hkv + 7, 2 ** 62, *range(B * hkv)):
    for write in (0, 1):
        lib.uk_attn_prefetch_pair(ctypes.byref(a), bh, write)
print(1.0)
"""
    assert child_floats(script) == [1.0]
