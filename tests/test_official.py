"""Checkpoints of the official UniFork code: conversion, and parity with tensors the official code
computed (tests/data/official_tiny, recipe in make_reference.py there), in PyTorch and in ONNX Runtime."""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import TOL, assert_close

torch = pytest.importorskip("torch")

from unifork_rt.errors import ModelFolderError  # noqa: E402
from unifork_rt.model.checkpoint import load_model  # noqa: E402
from unifork_rt.model.official import VT, convert_official, convert_to_folder  # noqa: E402

DATA = Path(__file__).parent / "data" / "official_tiny"
CKPT = DATA / "checkpoint"
TINY = dict(image_size=12, siglip_heads=2, head_heads=4)  # what the tiny checkpoint cannot say about itself
# every key of the released official checkpoint with its shape (../shared/data/official_unifork_keys.txt, gzipped)
KEYS = Path(__file__).parent / "data" / "official_unifork_keys.txt.gz"


@pytest.fixture(scope="module")
def ref():
    from safetensors.torch import load_file

    return load_file(str(DATA / "reference.safetensors")), json.loads((DATA / "reference.json").read_text())


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    out = tmp_path_factory.mktemp("official") / "model"
    return convert_to_folder(CKPT, out, **TINY)


@pytest.fixture(scope="module")
def model(converted):
    return load_model(converted)


def _zero(n=None):
    return torch.zeros((), dtype=torch.int64) if n is None else torch.zeros(n, dtype=torch.int64)


def _run(stack_fn, stack, x, kv, pos):
    """One call of trunk/branch with a growing KV buffer (L, 2, B, Hkv, S, Dh)."""
    out, new = stack_fn(x, kv, torch.tensor(pos), _zero(x.shape[0]))
    return out, torch.cat([kv, new], dim=4)


def test_codes_and_projector(model, ref):
    r, _ = ref
    with torch.no_grad():
        codes = model.encode_image(r["pixels"])
        assert torch.equal(codes, r["codes"]), "codes differ from the official quantizer"
        assert_close("z_q", model.image_tokenizer.features(codes), r["z_q"], TOL["official_fp32"])
        emb = torch.cat([model.boi.expand(2, 1, -1), model.image_embeds(codes), model.eoi.expand(2, 1, -1)], 1)
        assert_close("projector (BOI, cells, EOI)", emb, r["und_embeds"], TOL["official_fp32"])


def test_understanding_logits_and_cached_decode(model, ref):
    r, meta = ref
    with torch.no_grad():
        x = torch.cat([model.text_embeds(torch.tensor([meta["ids_before"]])), model.boi[None, None],
                       model.image_embeds(r["codes"][:1]), model.eoi[None, None],
                       model.text_embeds(torch.tensor([meta["ids_after"]]))], dim=1)
        assert_close("understanding inputs", x[0], r["und_input_embeds"], TOL["official_fp32"])
        L = x.shape[1]
        h, kv_t = _run(model.trunk_forward, model.trunk, x, model.trunk.empty_kv(1), 0)
        logits, kv_u = _run(model.und_all_logits, model.und, h, model.und.empty_kv(1), 0)
        assert_close("understanding logits (full prompt)", logits[0], r["und_logits"], TOL["official_fp32"])
        pos, steps = L, []
        for t in meta["forced_ids"]:
            h, kv_t = _run(model.trunk_forward, model.trunk, model.text_embeds(torch.tensor([[t]])), kv_t, pos)
            lg, kv_u = _run(model.und_logits, model.und, h, kv_u, pos)
            steps.append(lg[0])
            pos += 1
        assert_close("understanding logits (cached decode)", torch.stack(steps), r["step_logits"], TOL["official_fp32"])


def test_greedy_caption_tokens(model, ref):
    r, meta = ref
    with torch.no_grad():
        x = torch.cat([model.text_embeds(torch.tensor([meta["ids_before"]])), model.boi[None, None],
                       model.image_embeds(r["codes"][:1]), model.eoi[None, None],
                       model.text_embeds(torch.tensor([meta["ids_after"]]))], dim=1)
        h, kv_t = _run(model.trunk_forward, model.trunk, x, model.trunk.empty_kv(1), 0)
        lg, kv_u = _run(model.und_logits, model.und, h, model.und.empty_kv(1), 0)
        pos, tokens = x.shape[1], []
        for _ in range(len(r["greedy_tokens"])):
            tok = int(lg[0].argmax())
            tokens.append(tok)
            h, kv_t = _run(model.trunk_forward, model.trunk, model.text_embeds(torch.tensor([[tok]])), kv_t, pos)
            lg, kv_u = _run(model.und_logits, model.und, h, kv_u, pos)
            pos += 1
    assert tokens == r["greedy_tokens"].tolist()


def test_generation_hidden_and_depth_head(model, ref):
    r, meta = ref
    gen_codes = r["codes"][1, :5]
    with torch.no_grad():
        x = torch.cat([model.text_embeds(torch.tensor([meta["gen_ids"]])), model.boi[None, None]], dim=1)
        h, kv_t = _run(model.trunk_forward, model.trunk, x, model.trunk.empty_kv(1), 0)
        hid, kv_g = _run(model.gen_hidden, model.gen, h, model.gen.empty_kv(1), 0)
        hidden, pos = [hid[0]], x.shape[1]
        for cell in range(4):
            h, kv_t = _run(model.trunk_forward, model.trunk, model.image_embeds(gen_codes[cell][None, None]), kv_t, pos)
            hid, kv_g = _run(model.gen_hidden, model.gen, h, kv_g, pos)
            hidden.append(hid[0])
            pos += 1
        assert_close("generation hidden (norm_gen)", torch.cat(hidden), r["gen_hidden"], TOL["official_fp32"])
        want = r["head_logits"]  # (5, D, K), the official teacher-forced head
        got = model.head.forward_train(r["gen_hidden"][-5:], gen_codes, model.image_tokenizer.codebook)
        assert_close("depth-head logits, all depths at once", got, want, TOL["official_fp32"])
        D = gen_codes.shape[1]
        kv = model.head.empty_kv(5, D)  # the runtime's fixed buffer: step d writes slot d
        for d in range(D):
            lg, new = model.head.step(r["gen_hidden"][-5:], gen_codes, kv, torch.tensor(d),
                                      model.image_tokenizer.codebook)
            kv[..., d:d + 1, :] = new
            assert_close(f"depth-head logits, depth {d} stepwise", lg, want[:, d], TOL["official_fp32"])


def test_decoded_pixels(model, ref):
    r, _ = ref
    with torch.no_grad():
        px = model.image_tokenizer.decode_features(model.image_tokenizer.features(r["codes"]))
    assert_close("decoded pixels", px, r["decoded"], TOL["official_fp32"])


def test_tokenizer_matches_the_slow_tokenizer(converted, ref):
    from tokenizers import Tokenizer

    _, meta = ref
    tok = Tokenizer.from_file(str(converted / "tokenizer.json"))
    enc = lambda s: tok.encode(s, add_special_tokens=False).ids  # noqa: E731
    assert enc(meta["caption_prefix"]) == meta["ids_before"]
    assert enc(meta["caption_suffix"]) == meta["ids_after"]
    assert enc(f"<|im_start|>USER: {meta['gen_prompt']} ASSISTANT: ") == meta["gen_ids"]
    from unifork_rt.model.official import PROMPTING

    assert enc(PROMPTING["draw_template"].format(prompt=PROMPTING["negative_prompt"])) == meta["neg_ids"]


def test_config_and_prompting_written(converted):
    cfg = json.loads((converted / "config.json").read_text())
    assert cfg["preset"] == "official" and cfg["tower"]["num_layers"] == 2  # SigLIP's 3 layers minus the last
    p = json.loads((converted / "prompting.json").read_text())
    assert p["sampling"] == {"cfg_scale": 4.0, "top_k": 900, "top_p": 0.96, "temperature": 1.0}
    assert p["negative_prompt"].endswith("blurry..")


# --- errors ---------------------------------------------------------------------------------------
def _copy(tmp_path):
    dst = tmp_path / "ckpt"
    shutil.copytree(CKPT, dst)
    return dst


def _rewrite(folder, fn):
    from safetensors.torch import load_file, save_file

    state = load_file(str(folder / "model.safetensors"))
    fn(state)
    save_file(state, str(folder / "model.safetensors"), metadata={"format": "pt"})


def test_not_a_unifork_folder(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    with pytest.raises(ModelFolderError, match="expected 'llava_qwen2'"):
        convert_official(tmp_path, **TINY)


def test_missing_key_is_named(tmp_path):
    d = _copy(tmp_path)
    _rewrite(d, lambda s: s.pop(VT + "rqtransformer.in_mlp_1.weight"))
    with pytest.raises(ModelFolderError, match=r"rqtransformer\.in_mlp_1\.weight' is missing"):
        convert_official(d, **TINY)


def test_wrong_shape_is_named(tmp_path):
    d = _copy(tmp_path)
    _rewrite(d, lambda s: s.update({"model.mm_projector.linear2.bias": torch.zeros(7, dtype=torch.bfloat16)}))
    with pytest.raises(ModelFolderError, match=r"linear2\.bias has shape \(7,\), expected \(64,\)"):
        convert_official(d, **TINY)


def test_unknown_key_is_named(tmp_path):
    d = _copy(tmp_path)
    _rewrite(d, lambda s: s.update({"model.extra_adapter.weight": torch.zeros(3, dtype=torch.bfloat16)}))
    with pytest.raises(ModelFolderError, match="unexpected tensor 'model.extra_adapter.weight'"):
        convert_official(d, **TINY)


def test_codebook_copies_must_agree(tmp_path):
    d = _copy(tmp_path)
    _rewrite(d, lambda s: s[VT + "rqvaesiglip.quantizer.codebooks.2.weight"].add_(1))
    with pytest.raises(ModelFolderError, match="codebooks.2.weight differs"):
        convert_official(d, **TINY)


def test_sharded_fp32_checkpoint(tmp_path, model):
    """An index with shards, fp32: the same model as the single bf16 file."""
    from safetensors.torch import load_file, save_file

    d = _copy(tmp_path)
    state = {k: v.float() for k, v in load_file(str(d / "model.safetensors")).items()}
    (d / "model.safetensors").unlink()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    for f, ks in shards.items():
        save_file({k: state[k] for k in ks}, str(d / f), metadata={"format": "pt"})
    (d / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {}, "weight_map": {k: f for f, ks in shards.items() for k in ks}}))
    other = convert_official(d, **TINY)
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k


# --- a VILA-U-layout tower folder -----------------------------------------------------------------
@pytest.fixture(scope="module")
def tower_dir(tmp_path_factory):
    """The checkpoint's tower saved as VILA-U saves its tower: no prefix, rqvaesiglip.* + rqtransformer.*,
    one codebook copy (as some VILA-U files hold); the depth head replaced by a different one."""
    from safetensors.torch import load_file, save_file

    d = tmp_path_factory.mktemp("vila_u_tower")
    state = load_file(str(CKPT / "model.safetensors"))
    tower = {k[len(VT):]: v for k, v in state.items() if k.startswith(VT)
             if not k.startswith(VT + "rqvaesiglip.quantizer.codebooks.") or ".codebooks.0." in k}
    tower = {k: v for k, v in tower.items() if not k.startswith("rqtransformer.")}
    tower["rqtransformer.in_mlp_1.weight"] = torch.zeros(99, 99, dtype=torch.bfloat16)  # VILA-U's head: ignored
    save_file(tower, str(d / "model.safetensors"), metadata={"format": "pt"})
    (d / "config.json").write_text(json.dumps({"model_type": "rqvaesigliptransformer_model"}))
    return d


def test_vision_tower_folder(tower_dir, model, tmp_path):
    from PIL import Image

    other = convert_official(CKPT, vision_tower=tower_dir, **TINY)
    for k, v in model.state_dict().items():
        assert torch.equal(v, other.state_dict()[k]), k
    # a real photo (matplotlib ships Grace Hopper's portrait, 512 x 600 JPEG) round-trips through
    # encode -> decode, padded to square with grey as the official preprocessing does
    mpl = pytest.importorskip("matplotlib")
    from unifork_rt.runtime.images import load_image

    photo = Path(mpl.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    if not photo.is_file():
        photo = tmp_path / "photo.jpg"
        yy, xx = np.mgrid[0:90, 0:140]
        Image.fromarray(np.stack([xx * 255 // 140, yy * 255 // 90, (xx + yy) % 256], -1).astype(np.uint8)).save(photo)
    px = torch.from_numpy(load_image(photo, other.cfg.image.image_size, pad=(127, 127, 127)))[None]
    with torch.no_grad():
        codes = other.encode_image(px)
        out = other.decode_codes(codes)
    assert codes.shape == (1, 36, 4) and out.shape == (1, 3, 12, 12) and torch.isfinite(out).all()


def test_tower_folder_must_be_a_tower(tmp_path):
    from safetensors.torch import save_file

    save_file({"x": torch.zeros(1)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ModelFolderError, match="not a VILA-U vision tower folder"):
        convert_official(CKPT, vision_tower=tmp_path, **TINY)


# --- the released sizes -----------------------------------------------------------------------------
def test_official_preset_matches_the_official_key_list():
    """Every tensor our official preset loads has the official shape (the full key list, produced
    from the official code on the meta device, is in ../shared/data)."""
    from unifork_rt.config import preset
    from unifork_rt.model.official import key_map
    from unifork_rt.params import preset_shapes

    official = {}
    for line in gzip.decompress(KEYS.read_bytes()).decode().splitlines():
        name, shape = line.split("\t")
        official[name] = tuple(int(x) for x in shape.strip("()").split(",") if x.strip())
    cfg = preset("official")
    ours = preset_shapes(cfg)
    for theirs, mine in key_map(cfg).items():
        assert official[theirs] == ours[mine], (theirs, official[theirs], mine, ours[mine])
    assert official[VT + "rqvaesiglip.quantizer.codebooks.0.weight"] == (cfg.image.codebook_size + 1,
                                                                          cfg.image.codebook_dim)
    assert official[VT + "rqtransformer.pos_emb_d"] == (1, *ours["head.depth_emb"])


# --- the exported bundle in ONNX Runtime ------------------------------------------------------------
@pytest.fixture(scope="module")
def runtime(converted):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.runtime.pipeline import UniForkRuntime

    bundle = export_bundle(converted, converted.parent / "bundle", max_seq=256, progress=False)
    with UniForkRuntime(bundle) as rt:
        yield rt


def test_bundle_carries_the_official_prompting(runtime, ref):
    _, meta = ref
    m = runtime.bundle.manifest
    assert m["sampling"] == {"cfg_scale": 4.0, "top_k": 900, "top_p": 0.96, "temperature": 1.0}
    assert runtime.prompting.pad == (127, 127, 127)
    assert runtime.negative_ids == meta["neg_ids"]  # the unconditional rows' prompt
    assert runtime.draw_prompt_ids(meta["gen_prompt"]) == meta["gen_ids"]


def test_ort_codes_projector_decoder(runtime, ref):
    r, _ = ref
    codes = runtime.encode_images(list(r["pixels"].numpy()))
    assert np.array_equal(codes, r["codes"].numpy()), "ORT codes differ from the official quantizer"
    emb = runtime._run_rows("connector", {"codes": codes}, runtime._chunks(2))["embeds"]
    assert_close("ORT projector", emb, r["und_embeds"][:, 1:-1], TOL["official_fp32"])
    px = runtime._run_rows("vision_decoder", {"codes": codes}, runtime._chunks(2))["pixels"]
    assert_close("ORT decoded pixels", px, r["decoded"].clamp(-1, 1), TOL["official_fp32"])


def test_ort_understanding_and_greedy_caption(runtime, ref):
    r, meta = ref
    rt = runtime
    x = np.concatenate([rt.embed[meta["ids_before"]], rt.boi[None],
                        rt._run_rows("connector", {"codes": r["codes"][:1].numpy()}, rt._chunks(1))["embeds"][0],
                        rt.eoi[None], rt.embed[meta["ids_after"]]])[None].astype(np.float32)
    caches = rt._new_caches(("trunk", "und_branch"), rt._chunks(1))[0]
    start = np.zeros(1, dtype=np.int64)
    logits = rt.step(x, caches, 0, start, "und_branch")
    assert_close("ORT understanding logits (prompt, last position)", logits[0], r["und_logits"][-1],
                 TOL["official_fp32"])
    pos, steps = x.shape[1], []
    for t in meta["forced_ids"]:
        steps.append(rt.step(rt.embed[[t]][None], caches, pos, start, "und_branch")[0])
        pos += 1
    assert_close("ORT understanding logits (cached decode)", np.stack(steps), r["step_logits"], TOL["official_fp32"])
    # the runtime's own caption path: the bundle's prefix and suffix around the image
    ids = rt.caption_ids([r["pixels"][0].numpy()], prompt=meta["query"], max_new_tokens=len(r["greedy_tokens"]))
    assert ids[0] == r["greedy_tokens"].tolist()


def test_bench_caption_sequence_is_the_captions_own(runtime, ref, monkeypatch):
    """The bench's prefill input (stages.caption_sequence, llama-bench's -p) is the sequence caption_stream
    prefills: with an official bundle's template around the prompt, not the bare prompt."""
    from unifork_rt.benchmarks.stages import caption_sequence
    from unifork_rt.runtime.pipeline import CAPTION_PROMPT

    _, meta = ref
    rt = runtime
    pixels = np.random.default_rng(0).uniform(-1, 1, (1, 3, rt.cfg.image.image_size,
                                                      rt.cfg.image.image_size)).astype(np.float32)
    seen = []
    step = rt.step
    monkeypatch.setattr(rt, "step", lambda x, *a: seen.append(x.copy()) or step(x, *a))
    rt.caption_ids([pixels[0]], max_new_tokens=1)
    bench = caption_sequence(rt, pixels)
    assert bench.shape == seen[0].shape and np.array_equal(bench, seen[0])
    bare = len(rt.encode_text(CAPTION_PROMPT))
    assert bench.shape[1] == len(meta["ids_before"]) + rt.cfg.image.num_cells + 2 + len(
        rt.caption_prompt_ids(CAPTION_PROMPT)) > len(meta["ids_before"]) + rt.cfg.image.num_cells + 2 + bare


def test_bench_draw_stage_writes_cells_where_a_draw_does(runtime):
    """The bench's draw stage lays the prompt out as the pipeline does (the bundle's draw template and negative
    prompt), so its cell steps sit at the slot after it, not after the bare prompt's tokens."""
    from unifork_rt.benchmarks import stages
    from unifork_rt.runtime.pipeline import DrawRequest, DrawSettings

    rt = runtime
    # the rows are padded to the longer of the templated prompt and the negative prompt, then BOI
    slots = max(len(rt.draw_prompt_ids(stages.DRAW_PROMPT)), len(rt.negative_ids))
    x, _ = rt.draw_prefill([DrawRequest(stages.DRAW_PROMPT, DrawSettings.for_bundle(rt.bundle), 1)])
    out = stages.draw(rt, stages.Plan(repeats=1, step_repeats=1, warmup=0, image_budget_s=0.0))
    assert out["prompt_tokens"] == slots == x.shape[1] - 1 != len(rt.encode_text(stages.DRAW_PROMPT))


def test_ort_generation_hidden_and_head(runtime, ref):
    r, meta = ref
    rt = runtime
    gen_codes = r["codes"][1, :5].numpy()
    x = np.concatenate([rt.embed[meta["gen_ids"]], rt.boi[None]])[None].astype(np.float32)
    caches = rt._new_caches(("trunk", "gen_branch"), rt._chunks(1))[0]
    start = np.zeros(1, dtype=np.int64)
    hidden = [rt.step(x, caches, 0, start, "gen_branch")[0]]
    pos = x.shape[1]
    for cell in range(4):
        emb = rt._run_rows("connector", {"codes": gen_codes[cell][None, None]}, rt._chunks(1))["embeds"]
        hidden.append(rt.step(emb, caches, pos, start, "gen_branch")[0])
        pos += 1
    assert_close("ORT generation hidden", np.concatenate(hidden), r["gen_hidden"], TOL["official_fp32"])
    # the official head (attention 48 wide on a 64 residual, as 3584 on 896) is exported folded
    assert rt.bundle.manifest["graphs"]["rq_head"]["folded_attn_proj"] is True
    head = rt.backend.new_cache("rq_head", 5)
    for d in range(gen_codes.shape[1]):
        lg = rt.backend.run("rq_head", {"hidden": r["gen_hidden"][-5:].numpy(), "codes": gen_codes,
                                        "pos": np.array(d, dtype=np.int64)}, head)["logits"]
        assert_close(f"ORT depth-head logits, depth {d}", lg, r["head_logits"][:, d], TOL["official_fp32"])


def test_ort_draw_runs_with_the_negative_prompt(runtime):
    codes = runtime.draw_codes("a red circle", n=1, seed=0)
    assert codes.shape == (1, 36, 4) and codes.min() >= 0 and codes.max() < 48
    (img,) = runtime.decode(codes)
    assert img.shape == (12, 12, 3)


def test_official_counts_match_the_official_checkpoint():
    """`info --preset official`: the official checkpoint's groups, counted arithmetically, equal the
    sums over the official key list; and our components hold exactly the tensors inference runs."""
    from unifork_rt.config import preset
    from unifork_rt.params import count, official_components, preset_shapes

    cfg = preset("official")
    got = official_components(cfg)
    assert round(got["depth head (rqtransformer)"] / 1e5) == 4019  # 401.9M, OFFICIAL_UNIFORK.md §1.3
    assert round(got["quantizer (4 copies + EMA)"] / 1e5) == 1343 and round(got["gen_fork_layers"] / 1e5) == 1789
    ours = count(preset_shapes(cfg))
    assert ours["depth_head"] == got["depth head (rqtransformer)"]
    assert ours["trunk"] + ours["und_branch"] == got["layers (trunk + und)"] + cfg.text.hidden_size
    assert ours["gen_branch"] == got["gen_fork_layers"] + cfg.text.hidden_size
    assert ours["connector"] == got["mm_projector"]
    groups = {"model.embed_tokens.": "embed_tokens", "model.layers.": "layers (trunk + und)",
              "model.gen_fork_layers.": "gen_fork_layers", "model.norm": "norm + norm_gen",
              "lm_head.": "lm_head (tied copy)", "model.mm_projector.": "mm_projector",
              VT + "rqvaesiglip.siglip_model.vision_model.": "siglip vision (all layers)",
              VT + "rqvaesiglip.quantizer.": "quantizer (4 copies + EMA)",
              VT + "rqvaesiglip.post_quant_conv.": "post_quant_conv", VT + "rqvaesiglip.decoder.": "decoder",
              VT + "rqtransformer.": "depth head (rqtransformer)"}
    want = dict.fromkeys(got, 0)
    for line in gzip.decompress(KEYS.read_bytes()).decode().splitlines():
        name, shape = line.split("\t")
        group = next((g for prefix, g in groups.items() if name.startswith(prefix)), None)
        if group is not None:
            want[group] += int(np.prod([int(x) for x in shape.strip("()").split(",") if x.strip()]))
    assert got == want


def test_cli_convert(tmp_path):
    from click.testing import CliRunner

    from unifork_rt.cli import main

    r = CliRunner().invoke(main, ["convert", "--from-unifork", str(CKPT), "--out", str(tmp_path / "m"),
                                  "--image-size", "12", "--siglip-heads", "2", "--head-heads", "4"])
    assert r.exit_code == 0, r.output
    assert {p.name for p in (tmp_path / "m").iterdir()} >= {"config.json", "model.safetensors", "tokenizer.json",
                                                           "prompting.json"}
    r = CliRunner().invoke(main, ["convert", "--from-unifork", str(CKPT), "--out", str(tmp_path / "n")])
    assert r.exit_code != 0 and "pass --siglip-heads" in r.output and len(r.output.strip().splitlines()) == 1
    r = CliRunner().invoke(main, ["info", "--preset", "official"])
    assert r.exit_code == 0 and "depth head (rqtransformer)" in r.output and "401.94M" in r.output


# --- the prompting section and the image padding (no torch needed) -----------------------------------
def test_prompting_schema_errors_name_the_field():
    from unifork_rt.runtime.prompting import Prompting

    for bad, field in (({"draw_template": "no placeholder"}, "prompting.draw_template"),
                       ({"negative_prompt": ""}, "prompting.negative_prompt"),
                       ({"image": {"resize": "crop"}}, "prompting.image.resize"),
                       ({"image": {"mean": [0.48, 0.45, 0.4]}}, "prompting.image.mean"),
                       ({"colour": 1}, "prompting.colour")):
        with pytest.raises(ModelFolderError, match=field.replace(".", r"\.")):
            Prompting.from_dict(bad)
    assert Prompting.from_dict(None) == Prompting()


def test_pad_to_square_is_centred_grey():
    from PIL import Image

    from unifork_rt.runtime.images import pil_pixels

    im = Image.new("RGB", (20, 10), (255, 0, 0))
    px = pil_pixels(im, 20, pad=(127, 127, 127))  # no resize: 20x20 after padding
    assert np.allclose(px[:, :5], 127 / 127.5 - 1) and np.allclose(px[:, 15:], 127 / 127.5 - 1)
    assert np.allclose(px[0, 5:15], 1.0) and np.allclose(px[1, 5:15], -1.0)


def test_manifest_check_reads_the_prompting_section(runtime):
    import copy

    from unifork_rt.runtime.bundle import check_manifest

    m = copy.deepcopy(runtime.bundle.manifest)
    check_manifest(m, runtime.bundle.root if hasattr(runtime.bundle, "root") else Path("."))
    m["prompting"]["draw_template"] = "no placeholder"
    with pytest.raises(ModelFolderError, match=r"prompting\.draw_template"):
        check_manifest(m, Path("."))


def test_official_architecture_trains_on_our_path(model):
    """The official layout is trainable by our training losses: one step moves the loss."""
    import copy

    m = copy.deepcopy(model).train()
    for p in m.image_tokenizer.parameters():  # frozen, as in every official stage
        p.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-3)
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, m.cfg.image.codebook_size, (2, m.cfg.image.num_cells, m.cfg.image.depth), generator=g)
    prompt = torch.randint(0, 300, (2, 5), generator=g)
    ids = torch.randint(0, 300, (2, 4), generator=g)
    losses = []
    for _ in range(2):
        loss = (m.generation_loss(prompt, torch.zeros(2, dtype=torch.int64), codes)
                + m.understanding_loss(codes, ids, ids))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.detach().item())
    assert losses[1] < losses[0] and all(np.isfinite(losses))
