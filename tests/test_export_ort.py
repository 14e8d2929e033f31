"""The ORT-optimized graph variant (`export --graphs ort`, export/ort_graphs.py) against PyTorch and
the portable graphs: micro, prefill / decode / chunk, left-padded batches, the KV buffer written in
place through IOBinding; the runtime end to end (caption, guided draw) token for token."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import TOL, assert_close

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from unifork_rt.errors import InputError  # noqa: E402
from unifork_rt.model import reference  # noqa: E402
from unifork_rt.model.checkpoint import load_model  # noqa: E402
from unifork_rt.runtime.backend import get_backend  # noqa: E402
from unifork_rt.runtime.bundle import DECODERS, load_bundle  # noqa: E402
from unifork_rt.runtime.pipeline import DrawSettings, UniForkRuntime  # noqa: E402
from unifork_rt.runtime.sampling import Sampling  # noqa: E402

# (pos, T) steps: a prefill, two decode steps, a chunk with past, one more decode step
STEPS = [(0, 7), (7, 1), (8, 1), (9, 4), (13, 1)]
# rows' first real slots: one row; two rows, one left-padded (guidance); three, unordered
STARTS = [[0], [0, 2], [3, 0, 5]]


@pytest.fixture(scope="module")
def ort_bundle(micro_model_dir):
    from unifork_rt.export.onnx_export import export_bundle

    return export_bundle(micro_model_dir, micro_model_dir.parent / "bundle-ort", progress=False, variant="ort")


@pytest.fixture(scope="module")
def model(micro_model_dir):
    return load_model(micro_model_dir)


def _valid_rows(out: np.ndarray, pos: int, start: list[int]) -> np.ndarray:
    """The outputs of real (not left-padding) positions: (B, T, H) -> (n, H); (B, V) as is."""
    if out.ndim == 2:
        return out
    T = out.shape[1]
    return out[(pos + np.arange(T))[None, :] >= np.array(start)[:, None]]


def _valid_slots(kv: np.ndarray, stop: int, start: list[int]) -> np.ndarray:
    """KV slots [start[b], stop) of every row: (L, 2, B, Hkv, S, Dh) -> (n, L, 2, Hkv, Dh)."""
    slots = np.arange(kv.shape[4])
    valid = (slots[None, :] >= np.array(start)[:, None]) & (slots[None, :] < stop)  # (B, S)
    return kv.transpose(2, 4, 0, 1, 3, 5)[valid]


@pytest.mark.parametrize("graph", DECODERS)
def test_ort_graph_matches_pytorch_and_portable(model, micro_bundle, ort_bundle, graph):
    """Each step through the ORT graph (KV written in place) against the PyTorch entry point and the
    portable graph. Left-padding positions compute nothing anyone reads (every real query masks them)
    and are left out: GroupQueryAttention averages them over other keys than the portable mask."""
    fn = {"trunk": model.trunk_forward, "und_branch": model.und_logits, "gen_branch": model.gen_hidden}[graph]
    stack = {"trunk": model.trunk, "und_branch": model.und, "gen_branch": model.gen}[graph]
    first = "x" if graph == "trunk" else "h"
    tol = TOL[f"onnx_fp32_{graph}"]
    with get_backend("ort-cpu", load_bundle(ort_bundle)) as fast, \
            get_backend("ort-cpu", load_bundle(micro_bundle)) as ref:
        for start in STARTS:
            B = len(start)
            g = torch.Generator().manual_seed(B)
            kv = stack.empty_kv(B, fast.bundle.max_seq)
            c_fast, c_ref = fast.new_cache(graph, B), ref.new_cache(graph, B)
            st = np.array(start, dtype=np.int64)
            for pos, T in STEPS:
                x = torch.randn(B, T, model.cfg.text.hidden_size, generator=g)
                with torch.no_grad():
                    want, want_kv = fn(x, kv, torch.tensor(pos), torch.from_numpy(st))
                kv[..., pos:pos + T, :] = want_kv
                feeds = {first: x.numpy(), "pos": np.array(pos, dtype=np.int64), "start": st}
                got = next(iter(fast.run(graph, feeds, c_fast).values()))
                port = next(iter(ref.run(graph, feeds, c_ref).values()))
                label = f"ort {graph} B={B} start={start} pos={pos} T={T}"
                got, want, port = (_valid_rows(a, pos, start) for a in (got, want.numpy(), port))
                assert_close(f"{label} out vs torch", got, want, tol)
                assert_close(f"{label} out vs portable", got, port, tol)
                assert_close(f"{label} kv vs torch", _valid_slots(c_fast.buf, pos + T, start),
                             _valid_slots(kv.numpy(), pos + T, start), tol)
            assert np.isfinite(c_fast.buf).all()  # padding slots too: finite garbage, never NaN
            assert not c_fast.buf[..., pos + T:, :].any()  # nothing written past the last position


@pytest.mark.parametrize("B", [1, 3])
def test_ort_head_matches_pytorch_and_portable(model, micro_bundle, ort_bundle, B):
    """The depth head's ORT graph (GroupQueryAttention, its K/V written in place in the shared buffer)
    against the PyTorch step and the portable graph: three cells of D steps each, the buffer reused
    across cells as the pipeline does (slots past pos hold the previous cell's K/V and must not count)."""
    D = model.cfg.image.depth
    tol = TOL["onnx_fp32_rq_head"]
    with get_backend("ort-cpu", load_bundle(ort_bundle)) as fast, \
            get_backend("ort-cpu", load_bundle(micro_bundle)) as ref:
        assert fast.bundle.graphs["rq_head"].kv_io == "shared"
        c_fast, c_ref = fast.new_cache("rq_head", B), ref.new_cache("rq_head", B)
        kv = model.head.empty_kv(B, D)
        g = torch.Generator().manual_seed(B)
        for cell in range(3):
            hidden = torch.randn(B, model.cfg.text.hidden_size, generator=g)
            codes = torch.randint(0, model.cfg.image.codebook_size, (B, D), generator=g)
            for d in range(D):
                with torch.no_grad():
                    want, want_kv = model.head_logits(hidden, codes, kv, torch.tensor(d))
                kv[..., d:d + 1, :] = want_kv
                feeds = {"hidden": hidden.numpy(), "codes": codes.numpy(), "pos": np.array(d, dtype=np.int64)}
                got, port = fast.run("rq_head", feeds, c_fast)["logits"], ref.run("rq_head", feeds, c_ref)["logits"]
                label = f"ort rq_head B={B} cell={cell} d={d}"
                assert_close(f"{label} vs torch", got, want.numpy(), tol)
                assert_close(f"{label} vs portable", got, port, tol)
                assert_close(f"{label} kv vs torch", c_fast.buf[..., :d + 1, :], kv[..., :d + 1, :].numpy(), tol)


def test_ort_manifest_and_nodes(ort_bundle):
    m = json.loads((ort_bundle / "manifest.json").read_text())
    assert m["variant"] == "ort" and m["portable"] is False
    import onnx

    layers = {"trunk": m["config"]["text"]["shared_layers"]}
    layers["und_branch"] = layers["gen_branch"] = m["config"]["text"]["num_layers"] - layers["trunk"]
    for name in DECODERS:
        g = m["graphs"][name]
        assert "GroupQueryAttention" in g["ops"] and "SkipSimplifiedLayerNormalization" in g["ops"]
        assert [i["name"] for i in g["inputs"]][-2:] == ["pos", "start"]
        nodes = onnx.load(str(ort_bundle / g["file"]), load_external_data=False).graph.node
        per_layer = [sum(n.name.startswith(f"l{i}.") for n in nodes) for i in range(layers[name])]
        rest = len(nodes) - sum(per_layer)  # GQA's control inputs, once per graph, and the head
        print(f"{name}: {len(nodes)} nodes, per layer {per_layer}, once {rest}")
        assert max(per_layer) <= 13 and rest <= 32
    head = m["graphs"]["rq_head"]
    assert "GroupQueryAttention" in head["ops"] and "SkipLayerNormalization" in head["ops"]
    assert [i["name"] for i in head["inputs"]][2:4] == ["past_key_0", "past_value_0"]
    assert "Concat" not in head["ops"] and "Split" not in head["ops"]  # no copy of the KV buffer per step
    nodes = onnx.load(str(ort_bundle / head["file"]), load_external_data=False).graph.node
    per_layer = [sum(n.name.startswith(f"l{i}.") for n in nodes) for i in range(m["config"]["head"]["num_layers"])]
    print(f"rq_head: {len(nodes)} nodes, per layer {per_layer}")
    assert max(per_layer) <= 13 and len(nodes) - sum(per_layer) <= 32
    assert m["graphs"]["vision_decoder"]["inputs"][0]["name"] == "codes"


def test_ort_image_decoder(ort_bundle, model):
    """The decoder's transposed convolutions as sub-pixel Convs, its GELUs one node each (export/ort_image.py), against
    PyTorch; the encoder stays the portable graph."""
    m = json.loads((ort_bundle / "manifest.json").read_text())
    ops = m["graphs"]["vision_decoder"]["ops"]
    assert "ConvTranspose" not in ops and "DepthToSpace" in ops and "Gelu" in ops and "Erf" not in ops
    assert "Gelu" not in m["graphs"]["vision_encoder"]["ops"]
    import onnx  # the manifest records the rewrites: one DepthToSpace a ConvTranspose, one Gelu a GELU

    nodes = [n.op_type for n in onnx.load(str(ort_bundle / "vision_decoder.onnx")).graph.node]
    assert m["graphs"]["vision_decoder"]["ort_rewrites"] == {"subpixel": nodes.count("DepthToSpace"),
                                                             "gelu": nodes.count("Gelu")}
    levels = len(model.cfg.image.channels)  # model/rqvae.py: a ConvTranspose and two GELUs a level, one GELU first
    assert (nodes.count("DepthToSpace"), nodes.count("Gelu")) == (levels, 2 * levels + 1)
    assert "ort_rewrites" not in m["graphs"]["vision_encoder"]
    sess = ort.InferenceSession(str(ort_bundle / "vision_decoder.onnx"), providers=["CPUExecutionProvider"])
    cfg = model.cfg.image
    codes = np.random.default_rng(3).integers(0, cfg.codebook_size, (2, cfg.num_cells, cfg.depth))
    with torch.no_grad():
        want = model.decode_codes(torch.from_numpy(codes)).numpy()
    assert_close("ort vision_decoder B=2", sess.run(None, {"codes": codes})[0], want, TOL["onnx_fp32_vision_decoder"])


def test_ort_iobinding_device_cache(ort_bundle, micro_bundle):
    """The device-buffer path (ort-cuda's) on the CPU: one OrtValue buffer, written in place."""
    with get_backend("ort-cpu", load_bundle(ort_bundle), iobinding=True) as be, \
            get_backend("ort-cpu", load_bundle(micro_bundle)) as ref:
        c, r = be.new_cache("trunk", 2), ref.new_cache("trunk", 2)
        assert len(c.values) == 1  # no second buffer to swap with
        g = np.random.default_rng(0)
        st = np.array([0, 2], dtype=np.int64)
        for pos, T in STEPS:
            feeds = {"x": g.standard_normal((2, T, be.bundle.config.text.hidden_size)).astype(np.float32),
                     "pos": np.array(pos, dtype=np.int64), "start": st}
            got, want = be.run("trunk", feeds, c)["h"], ref.run("trunk", feeds, r)["h"]
            assert_close(f"device cache pos={pos} T={T}", _valid_rows(got, pos, [0, 2]), _valid_rows(want, pos, [0, 2]),
                         TOL["onnx_fp32_trunk"])
        assert_close("device cache kv", _valid_slots(c.to_host(), 14, [0, 2]), _valid_slots(r.buf, 14, [0, 2]),
                     TOL["onnx_fp32_trunk"])


@pytest.mark.parametrize("sampling", [Sampling(0.0), Sampling(1.0, top_k=40, top_p=0.95)], ids=["greedy", "sampled"])
def test_ort_caption_matches_pytorch_token_for_token(ort_bundle, model, sampling):
    pixels = np.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(np.float32)
    with UniForkRuntime(ort_bundle) as rt:
        ids = rt.encode_text("a red circle")
        got = rt.caption_ids(list(pixels), prompt="a red circle", max_new_tokens=12, temperature=sampling.temperature,
                             top_k=sampling.top_k, top_p=sampling.top_p, seed=4)
    want = reference.caption_ids(model, torch.from_numpy(pixels), ids, 12, sampling, seed=4)
    print(f"{sampling}: caption tokens {got}")
    assert got == want and sum(map(len, got)) >= 12


def test_ort_guided_draw_matches_pytorch(ort_bundle, model):
    """Guidance: cond and left-padded uncond rows in one batch through GroupQueryAttention."""
    prompt = "a red circle left of a blue square"
    with UniForkRuntime(ort_bundle) as rt:
        ids = rt.encode_text(prompt)
        got = rt.draw_codes(prompt, n=2, settings=DrawSettings(cfg_scale=3.0, temperature=0.0), seed=7)
    want = reference.draw_codes(model, ids, 2, 3.0, Sampling(0.0), seed=7)
    assert np.array_equal(got, want)


def test_ort_int4_graphs_match_pytorch(ort_bundle, model, tmp_path):
    """Quantized ORT graphs (MatMulNBits on the packed QKV, MLP and lm_head) within the int4 tolerances:
    the ort bundle's trunk and und_branch quantized as `export --precision int4` does (not re-exported)."""
    import shutil

    from unifork_rt.export.quantize import quantize_graph

    folder = shutil.copytree(ort_bundle, tmp_path / "int4")
    import onnx

    for graph in ("trunk", "und_branch", "rq_head"):
        quantize_graph(folder / f"{graph}.onnx", "int4")
        ops = [n.op_type for n in onnx.load(str(folder / f"{graph}.onnx")).graph.node]
        assert "MatMulNBits" in ops and "MatMul" not in ops and "GroupQueryAttention" in ops
    b = load_bundle(folder, verify=False)  # the hashes are the fp32 graphs'
    start = [0, 2]
    with get_backend("ort-cpu", b) as be:
        cache, kv = be.new_cache("rq_head", 2), model.head.empty_kv(2, model.cfg.image.depth)
        g = torch.Generator().manual_seed(1)
        hidden = torch.randn(2, model.cfg.text.hidden_size, generator=g)
        codes = torch.randint(0, model.cfg.image.codebook_size, (2, model.cfg.image.depth), generator=g)
        for d in range(model.cfg.image.depth):
            with torch.no_grad():
                want, want_kv = model.head_logits(hidden, codes, kv, torch.tensor(d))
            kv[..., d:d + 1, :] = want_kv
            got = be.run("rq_head", {"hidden": hidden.numpy(), "codes": codes.numpy(),
                                     "pos": np.array(d, dtype=np.int64)}, cache)["logits"]
            assert_close(f"ort int4 rq_head d={d}", got, want.numpy(), TOL["onnx_int4_logits"])
        for graph in ("trunk", "und_branch"):
            fn = {"trunk": model.trunk_forward, "und_branch": model.und_logits}[graph]
            kv = {"trunk": model.trunk, "und_branch": model.und}[graph].empty_kv(2, b.max_seq)
            cache = be.new_cache(graph, 2)
            g = torch.Generator().manual_seed(0)
            for pos, T in STEPS[:3]:
                x = torch.randn(2, T, model.cfg.text.hidden_size, generator=g)
                with torch.no_grad():
                    want, want_kv = fn(x, kv, torch.tensor(pos), torch.tensor(start))
                kv[..., pos:pos + T, :] = want_kv
                got = next(iter(be.run(graph, {"x" if graph == "trunk" else "h": x.numpy(),
                                               "pos": np.array(pos, dtype=np.int64),
                                               "start": np.array(start, dtype=np.int64)}, cache).values()))
                tol = TOL["onnx_int4_logits" if graph == "und_branch" else "onnx_int4"]
                assert_close(f"ort int4 {graph} pos={pos} T={T}", _valid_rows(got, pos, start),
                             _valid_rows(want.numpy(), pos, start), tol)


def test_ort_variant_refusals(micro_model_dir, ort_bundle, tmp_path):
    from unifork_rt.export.onnx_export import export_bundle

    with pytest.raises(InputError, match="--graphs portable"):
        export_bundle(micro_model_dir, tmp_path / "x", progress=False, variant="ort", precision="fp16")
    with pytest.raises(InputError, match="unknown graph variant"):
        export_bundle(micro_model_dir, tmp_path / "x", progress=False, variant="fast")
    from unifork_rt.runtime.ort_backend import OrtBackend

    for variant in ("ort-tensorrt", "ort-cuda"):
        with pytest.raises(InputError, match="--graphs portable"):
            OrtBackend(load_bundle(ort_bundle), variant=variant, allow_fallback=True).load()


def test_ort_shapes_model_captions_and_draws_like_portable(tmp_path):
    """The shipped ShapesWorld model: its checkpoint exported with --graphs ort captions held-out
    scenes (batch of 4) and draws a guided image with exactly the tokens of the shipped portable bundle."""
    from unifork_rt import assets
    from unifork_rt.data import shapes_world as sw
    from unifork_rt.export.onnx_export import export_bundle

    shipped = assets.default_model_dir()
    ort_dir = export_bundle(shipped / "checkpoint", tmp_path / "shapes-ort", progress=False, variant="ort",
                            max_seq=load_bundle(shipped).max_seq)
    rng = np.random.default_rng(0)
    images = [sw.render_pil(sw.random_caption_scene(rng, "held_out")) for _ in range(4)]
    got = {}
    for name, folder in (("portable", shipped), ("ort", ort_dir)):
        with UniForkRuntime(folder) as rt:
            got[name] = (rt.caption_ids(images, max_new_tokens=24),
                         rt.draw_codes("two red circles", n=1, settings=DrawSettings(cfg_scale=3.0, temperature=0.0),
                                       seed=1))
            print(f"{name}: {[rt.caption_text(i) for i in got[name][0]]}")
    assert got["ort"][0] == got["portable"][0]
    assert np.array_equal(got["ort"][1], got["portable"][1])


def test_ort_graph_with_external_data(model, ort_bundle, tmp_path, monkeypatch):
    """Graphs over 1 GB (paper's und_branch with its lm_head) keep their weights in NAME.onnx.data:
    the same graph written that way runs and agrees with the inline one."""
    from unifork_rt.export import quantize
    from unifork_rt.export.ort_graphs import export_ort_graph

    monkeypatch.setattr(quantize, "EXTERNAL_DATA_BYTES", 0)
    path = tmp_path / "und_branch.onnx"
    export_ort_graph(model, "und_branch", path, load_bundle(ort_bundle).max_seq)
    assert (tmp_path / "und_branch.onnx.data").stat().st_size > path.stat().st_size
    inline = ort.InferenceSession(str(ort_bundle / "und_branch.onnx"), providers=["CPUExecutionProvider"])
    external = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feeds = {i.name: np.zeros([d if isinstance(d, int) else 1 for d in i.shape],
                              dtype=np.int64 if "int64" in i.type else np.float32) for i in inline.get_inputs()}
    feeds["h"] = np.random.default_rng(0).standard_normal(feeds["h"].shape).astype(np.float32)
    assert np.array_equal(inline.run(["logits"], feeds)[0], external.run(["logits"], feeds)[0])


def test_manifest_variant_is_checked(ort_bundle, micro_bundle):
    """The variant names the graph signatures the runtime will bind: a wrong or unknown one is refused."""
    from unifork_rt.errors import ModelFolderError
    from unifork_rt.runtime.bundle import check_manifest

    m = json.loads((ort_bundle / "manifest.json").read_text())
    _, graphs = check_manifest(m, ort_bundle)
    assert graphs["trunk"].kv_io == "shared" and graphs["rq_head"].kv_io == "shared"
    assert graphs["rq_head"].feeds == ("hidden", "codes", "pos")
    assert graphs["trunk"].feeds == ("x", "pos", "start")
    with pytest.raises(ModelFolderError, match="variant"):
        check_manifest({**m, "variant": "fast"}, ort_bundle)
    with pytest.raises(ModelFolderError, match="graphs.trunk.inputs"):  # ort graphs, manifest says portable
        check_manifest({**m, "variant": "portable"}, ort_bundle)
    portable = json.loads((micro_bundle / "manifest.json").read_text())
    with pytest.raises(ModelFolderError, match="graphs.trunk.inputs"):
        check_manifest({**portable, "variant": "ort"}, micro_bundle)


def test_ort_bundle_with_the_portable_head_still_runs(ort_bundle, micro_bundle, tmp_path):
    """An `--graphs ort` bundle exported before the head had its ORT form (its rq_head the portable
    graph, `kv` in and `kv_new` out) loads with that head on the fused path and draws the same codes."""
    import shutil

    old = shutil.copytree(ort_bundle, tmp_path / "old-ort")
    m = json.loads((old / "manifest.json").read_text())
    m["graphs"]["rq_head"] = json.loads((micro_bundle / "manifest.json").read_text())["graphs"]["rq_head"]
    shutil.copyfile(micro_bundle / "rq_head.onnx", old / "rq_head.onnx")
    (old / "manifest.json").write_text(json.dumps(m))
    b = load_bundle(old, verify=False)  # the graph's hash is the portable bundle's, as written there
    assert b.graphs["rq_head"].kv_io == "fused" and b.graphs["trunk"].kv_io == "shared"
    settings = DrawSettings(cfg_scale=3.0, temperature=0.0)
    with UniForkRuntime(old, verify=False) as a, UniForkRuntime(ort_bundle) as new:
        assert np.array_equal(a.draw_codes("a red circle", n=2, settings=settings, seed=3),
                              new.draw_codes("a red circle", n=2, settings=settings, seed=3))


def test_ort_image_decoder_local(tmp_path):
    """The `local` image tokenizer (the shipped shapes model's: kernel-2 ConvTransposes, each one 1x1 Conv of 4 x Cout
    channels after the rewrite), exported and rewritten as `--graphs ort` does, against PyTorch."""
    from dataclasses import replace

    from unifork_rt.config import preset
    from unifork_rt.export.onnx_export import export_graph
    from unifork_rt.export.ort_image import ort_image_decoder
    from unifork_rt.model.unifork import UniFork

    cfg = preset("micro")
    cfg = cfg.replace(image=replace(cfg.image, local=True))
    torch.manual_seed(0)
    model = UniFork(cfg).eval()
    path = tmp_path / "vision_decoder.onnx"
    export_graph(model, "vision_decoder", path, 64, torch.float32)
    assert ort_image_decoder(path) == {"subpixel": len(cfg.image.channels), "gelu": 2 * len(cfg.image.channels) + 1}
    import onnx

    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "ConvTranspose" not in ops and "Erf" not in ops and "Concat" not in ops  # kernel 2: no phases to join
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    codes = np.random.default_rng(5).integers(0, cfg.image.codebook_size, (2, cfg.image.num_cells, cfg.image.depth))
    with torch.no_grad():
        want = model.decode_codes(torch.from_numpy(codes)).numpy()
    assert_close("ort vision_decoder, local, B=2", sess.run(None, {"codes": codes})[0], want,
                 TOL["onnx_fp32_vision_decoder"])
