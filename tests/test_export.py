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


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("graph", ["trunk", "und_branch", "gen_branch"])
def test_attention_graphs_prefill_and_steps(setup, graph, B):
    model, sessions, bundle = setup
    t = model.cfg.text
    S = bundle.max_seq
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
        got, got_kv = _run(sessions[graph], **{"x" if graph == "trunk" else "h": x, "kv": kv, "pos": p, "start": start})
        assert_close(f"{graph} B={B} pos={pos} T={T} out", got, want, TOL["onnx_fp32"])
        assert_close(f"{graph} B={B} pos={pos} T={T} kv_new", got_kv, want_kv, TOL["onnx_fp32"])
        kv[..., pos:pos + T, :] = want_kv


@pytest.mark.parametrize("B", [1, 2])
def test_rq_head_steps(setup, B):
    model, sessions, _ = setup
    D = model.cfg.image.depth
    g = torch.Generator().manual_seed(B)
    hidden = torch.randn(B, model.cfg.text.hidden_size, generator=g)
    codes = torch.randint(0, model.cfg.image.codebook_size, (B, D), generator=g)
    kv = model.head.empty_kv(B, D)
    for d in range(D):
        p = torch.tensor(d)
        with torch.no_grad():
            want, want_kv = model.head_logits(hidden, codes, kv, p)
        got, got_kv = _run(sessions["rq_head"], hidden=hidden, codes=codes, kv=kv, pos=p)
        assert_close(f"rq_head B={B} depth {d}", got, want, TOL["onnx_fp32"])
        assert_close(f"rq_head B={B} depth {d} kv_new", got_kv, want_kv, TOL["onnx_fp32"])
        kv[..., d:d + 1, :] = want_kv


@pytest.mark.parametrize("B", [1, 2])
def test_image_graphs(setup, B):
    model, sessions, _ = setup
    im = model.cfg.image
    g = torch.Generator().manual_seed(B)
    pixels = torch.rand(B, 3, im.image_size, im.image_size, generator=g) * 2 - 1
    with torch.no_grad():
        codes = model.encode_image(pixels)
        (got,) = _run(sessions["vision_encoder"], pixels=pixels)
        assert np.array_equal(got, codes.numpy()), "vision_encoder codes differ"
        (emb,) = _run(sessions["connector"], codes=codes)
        assert_close(f"connector B={B}", emb, model.image_embeds(codes), TOL["onnx_fp32"])
        (emb1,) = _run(sessions["connector"], codes=codes[:, :1])  # one cell, as in a draw step
        assert_close(f"connector B={B} one cell", emb1, model.image_embeds(codes[:, :1]), TOL["onnx_fp32"])
        (pix,) = _run(sessions["vision_decoder"], codes=codes)
        assert_close(f"vision_decoder B={B}", pix, model.decode_codes(codes), TOL["onnx_fp32"])


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


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_reduced_precision_bundles(micro_model_dir, tmp_path, precision):
    """fp16 (portable) and dynamic int8 (ORT CPU only) pass the same checks at their own tolerance."""
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.pipeline import UniForkRuntime

    out = export_bundle(micro_model_dir, tmp_path / precision, precision=precision, progress=False)
    model = load_model(micro_model_dir)
    b = load_bundle(out)
    assert b.precision == precision and b.manifest["portable"] == (precision == "fp16")
    dt = np.float16 if precision == "fp16" else np.float32
    sess = ort.InferenceSession(str(out / "trunk.onnx"), providers=["CPUExecutionProvider"])
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 5, model.cfg.text.hidden_size, generator=g)
    kv = model.trunk.empty_kv(2, b.max_seq)
    start, pos = torch.tensor([0, 1]), torch.tensor(0)
    with torch.no_grad():
        want, _ = model.trunk_forward(x, kv, pos, start)
    got, _ = sess.run(None, {"x": x.numpy().astype(dt), "kv": kv.numpy().astype(dt), "pos": pos.numpy(),
                             "start": start.numpy()})
    tol = TOL[f"onnx_{precision}"]
    assert_close(f"{precision} trunk", got[:, :], want, tol)
    with UniForkRuntime(out) as rt:  # and the whole pipeline runs on it
        codes = rt.draw_codes("a red circle", n=1, seed=0)
        assert codes.shape == (1, 16, 2) and codes.max() < model.cfg.image.codebook_size
        assert len(rt.caption_ids([np.zeros((3, 64, 64), np.float32)], max_new_tokens=3)[0]) <= 3
