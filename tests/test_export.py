"""Graph parity: every exported graph against its PyTorch entry point (micro, fp32)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TOL, assert_close

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from unifork_rt.model.checkpoint import load_model  # noqa: E402
from unifork_rt.runtime.bundle import GRAPHS, load_bundle  # noqa: E402


@pytest.fixture(scope="module")
def setup(micro_model_dir, micro_bundle):
    model = load_model(micro_model_dir)
    sessions = {g: ort.InferenceSession(str(micro_bundle / f"{g}.onnx"), providers=["CPUExecutionProvider"])
                for g in GRAPHS}
    return model, sessions, load_bundle(micro_bundle)


def _run(sess, **feeds):
    return sess.run(None, {k: v.numpy() for k, v in feeds.items()})


def check_attention_graph(model, sess, graph, B, S, label, tol_out, tol_kv):
    """Prefill, two decode steps and a chunk through one text graph against its PyTorch entry point."""
    t = model.cfg.text
    g = torch.Generator().manual_seed(B)
    fn = {"trunk": model.trunk_forward, "und_branch": model.und_logits, "gen_branch": model.gen_hidden}[graph]
    stack = {"trunk": model.trunk, "und_branch": model.und, "gen_branch": model.gen}[graph]
    kv = stack.empty_kv(B, S)
    start = torch.tensor([0, 2][:B])
    for pos, T in [(0, 7), (7, 1), (8, 1), (9, 4)]:  # prefill, two decode steps, a chunk
        x = torch.randn(B, T, t.hidden_size, generator=g)
        p = torch.tensor(pos)
        with torch.no_grad():
            want, want_kv = fn(x, kv, p, start)
        got, got_kv = _run(sess, **{"x" if graph == "trunk" else "h": x, "kv": kv, "pos": p, "start": start})
        assert_close(f"{label}{graph} B={B} pos={pos} T={T} out", got, want, tol_out)
        assert_close(f"{label}{graph} B={B} pos={pos} T={T} kv_new", got_kv, want_kv, tol_kv)
        kv[..., pos:pos + T, :] = want_kv


def check_rq_head(model, sess, B, g, label, tol_logits, tol_kv):
    """Every depth step of the depth head, its KV cache fed back, against PyTorch."""
    D = model.cfg.image.depth
    hidden = torch.randn(B, model.cfg.text.hidden_size, generator=g)
    codes = torch.randint(0, model.cfg.image.codebook_size, (B, D), generator=g)
    kv = model.head.empty_kv(B, D)
    for d in range(D):
        p = torch.tensor(d)
        with torch.no_grad():
            want, want_kv = model.head_logits(hidden, codes, kv, p)
        got, got_kv = _run(sess, hidden=hidden, codes=codes, kv=kv, pos=p)
        assert_close(f"{label}rq_head B={B} depth {d}", got, want, tol_logits)
        assert_close(f"{label}rq_head B={B} depth {d} kv_new", got_kv, want_kv, tol_kv)
        kv[..., d:d + 1, :] = want_kv


def check_image_graphs(model, sessions, pixels, label, tol_connector, one_cell=False):
    """vision_encoder (exact codes), connector and vision_decoder (always float) against PyTorch."""
    B = len(pixels)
    with torch.no_grad():
        codes = model.encode_image(pixels)
        (got,) = _run(sessions["vision_encoder"], pixels=pixels)
        assert np.array_equal(got, codes.numpy()), f"{label}vision_encoder codes differ"
        (emb,) = _run(sessions["connector"], codes=codes)
        assert_close(f"{label}connector B={B}", emb, model.image_embeds(codes), tol_connector)
        if one_cell:  # one cell, as in a draw step
            (emb1,) = _run(sessions["connector"], codes=codes[:, :1])
            assert_close(f"{label}connector B={B} one cell", emb1, model.image_embeds(codes[:, :1]), tol_connector)
        (pix,) = _run(sessions["vision_decoder"], codes=codes)
        assert_close(f"{label}vision_decoder B={B}", pix, model.decode_codes(codes), TOL["onnx_fp32_vision_decoder"])


def test_a_trace_depends_only_on_its_key(micro_model_dir, reuse_traced_graphs, tmp_path):
    """The premise of conftest's reuse_traced_graphs (the suite traces each micro graph once and copies it to every
    later export): torch.onnx writes the same bytes for the same key, a text graph and fp16 included; the cache hands
    back those bytes and nothing else beside them; and the key changes with any weight."""
    from conftest import trace_key

    from unifork_rt.export import onnx_export

    real = reuse_traced_graphs  # the unpatched trace_graph
    model = load_model(micro_model_dir).eval()

    def fresh(dtype):  # the same checkpoint loaded again: the cache meets equal weights in other model objects
        m = load_model(micro_model_dir).eval()
        return m.half() if dtype == torch.float16 else m

    cases = [(n, torch.float32) for n in ("connector", "trunk", "rq_head")] + [("connector", torch.float16)]
    for name, dtype in cases:
        a, b = (tmp_path / d / str(dtype) / f"{name}.onnx" for d in "ab")
        for path in (a, b):
            path.parent.mkdir(parents=True, exist_ok=True)
            real(fresh(dtype), name, path, 64, dtype)
        print(f"{name} {dtype}: two traces, {a.stat().st_size} bytes each: identical {a.read_bytes() == b.read_bytes()}")
        assert a.read_bytes() == b.read_bytes(), (name, dtype)
        assert not a.with_name(a.name + ".data").exists()
    a, c = tmp_path / "a" / "torch.float32" / "connector.onnx", tmp_path / "c" / "connector.onnx"
    c.parent.mkdir()
    for _ in range(2):  # through the cache: a miss or a hit, then surely a hit; a stale data file beside it goes
        c.with_name(c.name + ".data").write_bytes(b"stale")
        onnx_export.trace_graph(model, "connector", c, 64, torch.float32)
        assert c.read_bytes() == a.read_bytes() and not c.with_name(c.name + ".data").exists()
    key = trace_key(model, "rq_head", 64, torch.float32, "rq_head.onnx")
    assert key == trace_key(load_model(micro_model_dir).eval(), "rq_head", 64, torch.float32, "rq_head.onnx")
    assert key != trace_key(model, "rq_head", 65, torch.float32, "rq_head.onnx")
    assert key != trace_key(model, "rq_head", 64, torch.float16, "rq_head.onnx")
    assert key != trace_key(model, "gen_branch", 64, torch.float32, "rq_head.onnx")
    assert key != trace_key(model, "rq_head", 64, torch.float32, "other.onnx")
    assert key != trace_key(load_model(micro_model_dir).train(), "rq_head", 64, torch.float32, "rq_head.onnx")
    with torch.no_grad():
        model.head.blocks[-1].fc2.weight.view(-1)[-1] += 1e-6  # one weight, by 1e-6
    assert key != trace_key(model, "rq_head", 64, torch.float32, "rq_head.onnx")


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("graph", ["trunk", "und_branch", "gen_branch"])
def test_attention_graphs_prefill_and_steps(setup, graph, B):
    model, sessions, bundle = setup
    tol = TOL[f"onnx_fp32_{graph}"]
    check_attention_graph(model, sessions[graph], graph, B, bundle.max_seq, "", tol, tol)


@pytest.mark.parametrize("B", [1, 2])
def test_rq_head_steps(setup, B):
    model, sessions, _ = setup
    tol = TOL["onnx_fp32_rq_head"]
    check_rq_head(model, sessions["rq_head"], B, torch.Generator().manual_seed(B), "", tol, tol)


@pytest.mark.parametrize("W,A,attn_proj", [(32, 96, False), (48, 48, True)])
def test_rq_head_graph_folds_the_attention_projections(tmp_path, W, A, attn_proj):
    """A head whose attention has projections around it (paper, official: 896 -> 3584; the official
    head also at equal widths) is exported with proj_in composed into q/k/v and o_proj into proj_out:
    the same logits and K/V as the PyTorch head, from 4 matrices per block instead of 6 (4·W·A
    instead of 2·W·A + 4·A² weights), and the model keeps its own modules afterwards. Every head
    weight and bias is random here (the model's init zeroes biases, which would hide a bias error)."""
    import dataclasses

    import onnx

    from unifork_rt.config import HeadConfig, preset
    from unifork_rt.export.onnx_export import export_graph
    from unifork_rt.model.heads import HeadAttention
    from unifork_rt.model.unifork import UniFork

    cfg = preset("micro")
    head = HeadConfig(width=W, num_layers=2, num_heads=4, attn_width=A, mlp_dim=40, attn_proj=attn_proj)
    assert head.folds_attn_proj  # W < 2·A, and projections exist
    assert not dataclasses.replace(head, width=A, attn_proj=False).folds_attn_proj  # nothing to fold
    assert not dataclasses.replace(head, width=2 * A, attn_proj=True).folds_attn_proj  # folding would add weights
    torch.manual_seed(1)
    model = UniFork(dataclasses.replace(cfg, head=head)).eval()
    with torch.no_grad():
        for prm in model.head.parameters():
            prm.normal_(0, 0.05)
    path = tmp_path / "rq_head.onnx"
    export_graph(model, "rq_head", path, 64, torch.float32)
    assert all(type(b.attn) is HeadAttention for b in model.head.blocks)  # put back
    sizes = [int(np.prod(t.dims)) for t in onnx.load(str(path)).graph.initializer if len(t.dims) == 2]
    L = head.num_layers
    # no other matrix of the micro head has W·A or A·A elements at these widths
    assert sizes.count(W * A) == 4 * L and sizes.count(A * A) == (4 * L if W == A else 0), sizes
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    check_rq_head(model, sess, 2, torch.Generator().manual_seed(3), f"folded W={W} A={A} ", TOL["onnx_fp32_rq_head"],
                  TOL["onnx_fp32_rq_head"])


@pytest.mark.parametrize("B", [1, 2])
def test_image_graphs(setup, B):
    model, sessions, _ = setup
    im = model.cfg.image
    g = torch.Generator().manual_seed(B)
    pixels = torch.rand(B, 3, im.image_size, im.image_size, generator=g) * 2 - 1
    check_image_graphs(model, sessions, pixels, "", TOL["onnx_fp32_connector"], one_cell=True)


def test_manifest_records_the_contract(micro_bundle, micro_model_dir):
    m = json.loads((micro_bundle / "manifest.json").read_text())
    assert m["max_seq"] == 64 and m["precision"] == "fp32" and m["opset"] == 18
    trunk = m["graphs"]["trunk"]
    assert [i["name"] for i in trunk["inputs"]] == ["x", "kv", "pos", "start"]
    assert trunk["inputs"][1]["shape"] == [2, 2, "batch", 2, 64, 16]
    assert trunk["outputs"][1]["shape"][4] == "seq"
    assert m["graphs"]["und_branch"]["outputs"][0]["shape"] == ["batch", 384]
    assert m["graphs"]["rq_head"]["kv"] == {"layers": 1, "kv_heads": 4, "max_seq": 2, "head_dim": 16}
    for g in m["graphs"].values():  # standard ONNX ops only, no control flow
        assert not {"If", "Loop", "Scan"} & set(g["ops"])
        assert all(":" not in op for op in g["ops"])
    from unifork_rt.runtime.bundle import sha256_file

    assert m["weights_sha256"] == sha256_file(micro_model_dir / "model.safetensors")


def test_failed_export_keeps_previous_bundle(micro_model_dir, tmp_path):
    from unifork_rt.errors import InputError
    from unifork_rt.export.onnx_export import export_bundle

    out = tmp_path / "b"
    out.mkdir()
    (out / "manifest.json").write_text("{}")
    with pytest.raises(InputError, match="max-seq 10"):
        export_bundle(micro_model_dir, out, max_seq=10, progress=False)
    assert (out / "manifest.json").read_text() == "{}"
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary folder left behind


def test_reduced_precision_bundles(micro_model_dir, tmp_path):
    """fp16 (portable) passes the same checks at its own tolerance."""
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.pipeline import UniForkRuntime

    out = export_bundle(micro_model_dir, tmp_path / "fp16", precision="fp16", progress=False)
    model = load_model(micro_model_dir)
    b = load_bundle(out)
    assert b.precision == "fp16" and b.manifest["portable"] and b.manifest["quantization"] is None
    sess = ort.InferenceSession(str(out / "trunk.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, model.cfg.text.hidden_size, generator=g)
    kv = model.trunk.empty_kv(2, b.max_seq)
    start, pos = torch.tensor([0, 1]), torch.tensor(0)
    with torch.no_grad():
        want, _ = model.trunk_forward(x, kv, pos, start)
    got, _ = sess.run(None, {"x": x.numpy().astype(np.float16), "kv": kv.numpy().astype(np.float16),
                             "pos": pos.numpy(), "start": start.numpy()})
    assert_close("fp16 trunk", got, want, TOL["onnx_fp16"])
    with UniForkRuntime(out) as rt:  # and the whole pipeline runs on it
        codes = rt.draw_codes("a red circle", n=1, seed=0)
        assert codes.shape == (1, 16, 2) and codes.max() < model.cfg.image.codebook_size
        assert len(rt.caption_ids([np.zeros((3, 64, 64), np.float32)], max_new_tokens=3)[0]) <= 3


# --- quantized bundles (ONNX Runtime CPU only) -----------------------------------------------
QUANTIZED = ["int4", "int8", "int8-dynamic"]


@pytest.fixture(scope="module", params=QUANTIZED)
def quantized(request, micro_model_dir, micro_bundle):
    """(precision, its micro bundle, ORT sessions of its graphs), exported once per module."""
    from unifork_rt.export.onnx_export import export_bundle

    precision = request.param
    out = export_bundle(micro_model_dir, micro_model_dir.parent / f"bundle-{precision}", precision=precision,
                        progress=False)
    sessions = {g: ort.InferenceSession(str(out / f"{g}.onnx"), providers=["CPUExecutionProvider"]) for g in GRAPHS}
    return precision, out, sessions


def test_quantized_graphs_use_the_scheme(quantized):
    """Every weight MatMul of the text/head graphs is quantized, with the recorded scheme; the image
    tokenizer graphs stay float; the manifest says so and marks the bundle ORT-only."""
    import onnx

    from unifork_rt.export.quantize import QUANTIZED_GRAPHS, SCHEMES

    precision, out, _ = quantized
    m = json.loads((out / "manifest.json").read_text())
    q = m["quantization"]
    assert m["precision"] == precision and m["portable"] is False and q["graphs"] == list(QUANTIZED_GRAPHS)
    scheme = SCHEMES[precision]
    for name, entry in m["graphs"].items():
        g = onnx.load(str(out / entry["file"])).graph
        inits = {t.name for t in g.initializer}
        float_mm = [n.name for n in g.node if n.op_type in ("MatMul", "Gemm") and n.input[1] in inits]
        nbits = [n for n in g.node if n.op_type == "MatMulNBits"]
        if name not in QUANTIZED_GRAPHS:
            assert not nbits and "MatMulInteger" not in entry["ops"], name
            continue
        assert not float_mm, f"{name}: MatMuls left in float: {float_mm}"
        if q["method"] == "MatMulNBits":
            # blocks of 128 (faster at several rows, issue #16); genai's and llama.cpp's 32 by --block-size
            assert scheme.block_size == {"int4": 128, "int8": 128}[precision]
            assert q["bits"] == scheme.bits and q["block_size"] == scheme.block_size and q["symmetric"]
            assert q["accuracy_level"] == 4
            assert nbits and all(n.domain == "com.microsoft" for n in nbits)
            for n in nbits:
                attrs = {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
                assert (attrs["bits"], attrs["block_size"], attrs["accuracy_level"]) == (scheme.bits, scheme.block_size,
                                                                                         4), n.name
                assert len(n.input) == 3, f"{n.name}: symmetric blocks have no zero points"
        else:
            assert q["method"] == "dynamic" and "MatMulInteger" in entry["ops"] and not nbits
            assert q["per_channel"] and q["reduce_range"]
            for n in (n for n in g.node if n.op_type == "MatMulInteger" and n.input[1] in inits):
                w = next(t for t in g.initializer if t.name == n.input[1])
                scale = next(t for t in g.initializer if t.name == n.input[1].replace("_quantized", "_scale"))
                assert list(scale.dims) == [w.dims[1]], f"{n.name}: one weight scale per output column"
                assert len(n.input) == 3, f"{n.name}: symmetric weights, no weight zero point (the slow kernel)"
    und = onnx.load(str(out / "und_branch.onnx")).graph  # the tied lm_head (a Gemm in the export) is quantized too
    V, H = m["config"]["text"]["vocab_size"], m["config"]["text"]["hidden_size"]
    heads = [n for n in und.node if n.op_type in ("MatMulNBits", "MatMulInteger", "MatMul")
             and any(a.name == "N" and a.i == V for a in n.attribute)]
    assert q["method"] == "dynamic" or (len(heads) == 1 and any(a.name == "K" and a.i == H for a in heads[0].attribute))


def test_block_size_is_chosen_at_export(micro_model_dir, tmp_path):
    """`export --block-size` writes MatMulNBits blocks of that width and records them; a block size
    for a precision without blocks, or one the kernels do not take, is refused before any work."""
    import onnx

    from unifork_rt.errors import InputError
    from unifork_rt.export.onnx_export import export_bundle

    out = export_bundle(micro_model_dir, tmp_path / "b32", precision="int4", block_size=32, progress=False)
    m = json.loads((out / "manifest.json").read_text())
    assert m["quantization"]["block_size"] == 32 and m["quantization"]["bits"] == 4
    nbits = [n for n in onnx.load(str(out / "trunk.onnx")).graph.node if n.op_type == "MatMulNBits"]
    assert nbits and all(onnx.helper.get_attribute_value(a) == 32 for n in nbits for a in n.attribute
                         if a.name == "block_size")
    for precision, block, why in [("int8-dynamic", 32, "weight-only precisions"), ("fp32", 64, "weight-only"),
                                  ("int4", 48, "not one MatMulNBits takes")]:
        with pytest.raises(InputError, match=why):
            export_bundle(micro_model_dir, tmp_path / "bad", precision=precision, block_size=block, progress=False)
    assert not (tmp_path / "bad").exists() and not list(tmp_path.glob(".bad.*"))


def test_quantized_graphs_parity(setup, quantized):
    """Each quantized graph against the PyTorch fp32 entry point, same inputs as the fp32 tests."""
    model, _, bundle = setup
    precision, _, sessions = quantized
    tol, tol_logits = TOL[f"onnx_{precision}"], TOL[f"onnx_{precision}_logits"]
    im = model.cfg.image
    label = f"{precision} "
    for graph in ("trunk", "und_branch", "gen_branch"):
        for B in (1, 2):
            check_attention_graph(model, sessions[graph], graph, B, bundle.max_seq, label,
                                  tol_logits if graph == "und_branch" else tol, tol)
    for B in (1, 2):
        g = torch.Generator().manual_seed(B)
        check_rq_head(model, sessions["rq_head"], B, g, label, tol_logits, tol)
        pixels = torch.rand(B, 3, im.image_size, im.image_size, generator=g) * 2 - 1
        check_image_graphs(model, sessions, pixels, label, tol)  # the image tokenizer graphs stay float


def _teacher_forced_logits(rt, image, tokens: list[int]) -> np.ndarray:
    """The runtime's caption logits (steps, V): the prefill, then one step per given token."""
    codes = rt.encode_images([image])
    x = rt.caption_prefill(rt.backend.run("connector", {"codes": codes})["embeds"], rt.encode_text("describe"))
    caches = (rt.backend.new_cache("trunk", 1), rt.backend.new_cache("und_branch", 1))
    start = np.zeros(1, dtype=np.int64)
    out = [rt.step(x, caches, 0, start, "und_branch")[0]]
    for pos, tok in enumerate(tokens, start=x.shape[1]):
        out.append(rt.step(rt.embed[[tok]][None], caches, pos, start, "und_branch")[0])
    return np.stack(out)


def test_quantized_pipeline_captions_and_draws(quantized, micro_bundle):
    """The torch-free runtime runs a quantized bundle end to end; its greedy caption tokens are
    compared with fp32's, and, fed the same tokens, its logits at every step stay within the
    quantized logits tolerance."""
    from unifork_rt.runtime.pipeline import UniForkRuntime

    precision, out, _ = quantized
    image = np.random.default_rng(0).uniform(-1, 1, (3, 64, 64)).astype(np.float32)
    feed = [5, 17, 40, 3, 99, 250, 8]  # varied tokens: the random test model tends to repeat its last one
    with UniForkRuntime(micro_bundle) as rt:
        want = rt.caption_ids([image], max_new_tokens=8)[0]
        want_logits = _teacher_forced_logits(rt, image, feed)
    with UniForkRuntime(out) as rt:
        assert rt.bundle.precision == precision
        ids = rt.caption_ids([image], max_new_tokens=8)[0]
        assert isinstance(rt.caption([image], max_new_tokens=8)[0], str)
        images = rt.draw(["a red circle"], n=1, seed=0)
        assert len(images) == 1 and images[0].shape == (64, 64, 3) and images[0].dtype == np.uint8
        logits = _teacher_forced_logits(rt, image, feed)
    print(f"{precision}: greedy caption {ids} vs fp32 {want}")
    assert ids == want and len(ids) == 8
    assert_close(f"{precision} caption logits, teacher-forced", logits, want_logits, TOL[f"onnx_{precision}_logits"])
    assert np.array_equal(logits.argmax(-1), want_logits.argmax(-1)), "greedy tokens differ from fp32's"


def test_quantized_bundles_map_a_float16_embedding_table(quantized, micro_bundle):
    """Quantized bundles store the lookup table in float16; the runtime maps it (no copy in memory)
    and returns the fp32 bundle's rows to float16 precision."""
    from safetensors import safe_open

    from unifork_rt.runtime.bundle import load_bundle, load_embeddings

    _, out, _ = quantized
    with safe_open(str(out / "embeddings.safetensors"), framework="numpy") as f:
        assert f.get_slice("embed_tokens.weight").get_dtype() == "F16"
        assert f.get_slice("boi").get_dtype() == "F32"
    table, boi, _ = load_embeddings(load_bundle(out))
    ref, ref_boi, _ = load_embeddings(load_bundle(micro_bundle))
    assert isinstance(table._rows, np.memmap) and isinstance(ref._rows, np.memmap)
    ids = [0, 5, len(table) - 1, 5]
    rows = table[ids]
    assert rows.dtype == np.float32 and rows.shape == (4, table.shape[1])
    err = float(np.abs(rows - ref[ids]).max())
    print(f"float16 table vs fp32: max diff {err:.2e}")
    assert 0 < err <= 1e-3 * max(1.0, float(np.abs(ref[ids]).max()))
    np.testing.assert_array_equal(boi, ref_boi)


def test_large_graphs_keep_their_weights_in_a_data_file(quantized, micro_model_dir, tmp_path, monkeypatch):
    """Graphs above EXPORT's EXTERNAL_DATA_BYTES are written as NAME.onnx + NAME.onnx.data (ONNX
    Runtime then drops the unpacked weights once it has pre-packed them; docs/BENCHMARKS.md
    "Memory"). With the threshold lowered to 4 KB every quantized graph of the micro bundle is
    written that way, the bundle verifies, and it computes exactly what the inline bundle does."""
    from unifork_rt.export import onnx_export, quantize
    from unifork_rt.runtime.pipeline import UniForkRuntime

    precision, inline, _ = quantized
    monkeypatch.setattr(quantize, "EXTERNAL_DATA_BYTES", 4096)
    monkeypatch.setattr(onnx_export, "EXTERNAL_DATA_BYTES", 4096)
    out = onnx_export.export_bundle(micro_model_dir, tmp_path / "ext", precision=precision, progress=False)
    graphs = json.loads((out / "manifest.json").read_text())["graphs"]
    for name in quantize.QUANTIZED_GRAPHS:
        assert graphs[name]["data_file"] == f"{name}.onnx.data", name
        assert (out / f"{name}.onnx.data").stat().st_size > 0, name
    assert json.loads((inline / "manifest.json").read_text())["graphs"]["trunk"]["data_file"] is None
    image = np.random.default_rng(1).uniform(-1, 1, (3, 64, 64)).astype(np.float32)
    feed = [5, 17, 40, 3, 99]
    with UniForkRuntime(inline) as rt:
        want, want_logits = rt.caption_ids([image], max_new_tokens=6)[0], _teacher_forced_logits(rt, image, feed)
    with UniForkRuntime(out) as rt:  # verify=True: the data files' hashes are checked
        got, logits = rt.caption_ids([image], max_new_tokens=6)[0], _teacher_forced_logits(rt, image, feed)
    print(f"{precision}: external vs inline weights, logits max diff {np.abs(logits - want_logits).max():.1e}")
    assert got == want
    np.testing.assert_array_equal(logits, want_logits)


def test_exported_bundle_has_the_umask_modes(micro_bundle):
    """The bundle folder comes from mkdtemp (0700) and safetensors writes 0600: export gives the
    folder and every file the modes mkdir / open() would, so other users can read a shared bundle."""
    import os
    import stat

    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(os.stat(micro_bundle).st_mode) == 0o777 & ~umask
    for p in micro_bundle.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o666 & ~umask, p.name


def test_shipped_checkpoint_recommends_the_shipped_sampling():
    """Re-exporting the bundled checkpoint (say to int4) keeps the draw settings the shipped bundle
    records: without them the runtime's defaults drew 0.903 instead of 0.994 on ShapesBench."""
    from importlib.resources import files

    from unifork_rt.export.onnx_export import _prompting

    shapes = files("unifork_rt") / "assets" / "shapes"
    shipped = json.loads((shapes / "manifest.json").read_text())["sampling"]
    assert shipped and _prompting(shapes / "checkpoint")["sampling"] == shipped


def test_precision_lists_agree():
    """export's precisions, the CLI's --precision choices and the bench's precisions are one list."""
    from click.testing import CliRunner

    from unifork_rt.benchmarks import cli as bench_cli
    from unifork_rt.cli import main
    from unifork_rt.export.onnx_export import PRECISIONS

    from unifork_rt.export.quantize import BLOCK_SIZES

    params = {p.name: p for p in main.commands["export"].params}
    choices = params["precision"].type.choices
    # the bench adds int4-b32 / int8-b32: exported with --block-size 32
    from unifork_rt.export.quantize import NAMED_BLOCKS

    assert set(choices) == set(PRECISIONS) == set(bench_cli.PRECISIONS) - set(NAMED_BLOCKS)
    assert [int(b) for b in params["block_size"].type.choices] == list(BLOCK_SIZES)
    help_text = CliRunner().invoke(main, ["export", "--help"]).output
    assert all(p in help_text for p in PRECISIONS) and "--block-size" in help_text


def test_export_cli_refuses_a_block_size_in_one_line(micro_model_dir, tmp_path):
    """A block size for a precision without blocks: exit 2, one line naming the fix, nothing written."""
    from click.testing import CliRunner

    from unifork_rt.cli import main

    res = CliRunner().invoke(main, ["export", str(micro_model_dir), "--out", str(tmp_path / "b"), "--precision",
                                    "int8-dynamic", "--block-size", "64", "--quiet"])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and "--block-size" in lines[0] and "leave it out" in lines[0], res.output
    assert not list(tmp_path.iterdir())


def _float_constants(model):
    """Every float constant of an ONNX model: initializers and Constant nodes, in functions too."""
    from onnx import numpy_helper

    nodes = list(model.graph.node) + [n for f in model.functions for n in f.node]
    values = [numpy_helper.to_array(t) for t in model.graph.initializer]
    values += [numpy_helper.to_array(a.t) for n in nodes if n.op_type == "Constant" for a in n.attribute
               if a.name == "value"]
    values += [np.array(a.f) for n in nodes if n.op_type == "Constant" for a in n.attribute if a.name == "value_float"]
    return [v for v in values if v.dtype.kind == "f" and v.size]


def test_fp32_graphs_stay_finite_in_half_precision(micro_bundle):
    """TensorRT --fp16 runs a float32 graph in half precision, so no constant may overflow float16:
    the attention-mask fill was finfo(float32).min, -inf in fp16, and the fully masked padding rows
    of the unguided half then softmax to NaN (issue #14)."""
    import onnx

    for graph in ("trunk", "und_branch", "gen_branch", "rq_head"):
        consts = _float_constants(onnx.load(str(micro_bundle / f"{graph}.onnx")))
        assert consts, graph
        worst = max(float(np.abs(v).max()) for v in consts)
        assert worst <= np.finfo(np.float16).max, f"{graph}: a constant of magnitude {worst:.3g} is inf in fp16"


def test_mask_fill_is_finite_in_every_float_dtype():
    from unifork_rt.model.layers import grouped_attention, mask_fill

    for dt in (torch.float32, torch.float16, torch.bfloat16):
        assert torch.isfinite(torch.tensor(mask_fill(dt), dtype=torch.float16 if dt != torch.bfloat16 else dt))
    # a query row whose every key is masked (left padding) averages; in half precision too
    q, k = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 5, 4)
    mask = torch.ones(1, 1, 3, 5, dtype=torch.bool)
    mask[..., 0, :] = False
    for dt in (torch.float32, torch.float16):
        out = grouped_attention(q.to(dt), k.to(dt), k.to(dt), mask)
        assert torch.isfinite(out).all(), dt


def test_int8_dynamic_cannot_saturate_on_avx2(quantized):
    """u8 x s8 products are summed in pairs into a saturating int16 (VPMADDUBSW) on x86 CPUs
    without VNNI: the int8-dynamic weights must stay within 7 bits so 2 x 255 x |w| <= 32767, or
    the graphs compute different numbers on AVX2 and AVX-512 VNNI machines (issue #14)."""
    import onnx
    from onnx import numpy_helper

    precision, out, _ = quantized
    if precision != "int8-dynamic":
        pytest.skip("MatMulInteger only")
    m = json.loads((out / "manifest.json").read_text())
    assert m["quantization"]["reduce_range"] is True
    checked = 0
    for name in m["quantization"]["graphs"]:
        g = onnx.load(str(out / f"{name}.onnx")).graph
        inits = {t.name: t for t in g.initializer}
        for n in g.node:
            if n.op_type == "MatMulInteger" and n.input[1] in inits:
                w = numpy_helper.to_array(inits[n.input[1]])
                assert w.dtype == np.int8 and 2 * 255 * int(np.abs(w.astype(np.int32)).max()) <= 32767, n.name
                checked += 1
    assert checked >= 5
