"""Conversion from a (tiny, random, local) Hugging Face Qwen2 folder: exact understanding path."""

from __future__ import annotations

import json

import pytest

from conftest import TOL, assert_close

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from unifork_rt.errors import ConfigError, ModelFolderError  # noqa: E402
from unifork_rt.model.checkpoint import load_model  # noqa: E402
from unifork_rt.model.qwen import init_from_qwen  # noqa: E402


def _tiny_tokenizer(path):
    from tokenizers import Tokenizer, models, pre_tokenizers

    vocab = {f"t{i}": i for i in range(100)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="t0"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.save(str(path))


@pytest.fixture(scope="module")
def qwen_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("qwen")
    torch.manual_seed(0)
    cfg = transformers.Qwen2Config(vocab_size=100, hidden_size=64, intermediate_size=96, num_hidden_layers=4,
                                   num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                   tie_word_embeddings=True, rope_theta=10000.0, eos_token_id=1)
    model = transformers.Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():  # random biases, so the q/k/v bias mapping is really tested
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
            layer.input_layernorm.weight.normal_(1, 0.2)
    model.save_pretrained(folder, safe_serialization=True)
    _tiny_tokenizer(folder / "tokenizer.json")
    return folder, model


def _zero():
    return torch.zeros((), dtype=torch.int64)


def test_understanding_path_matches_qwen(qwen_dir, tmp_path):
    folder, ref = qwen_dir
    out = init_from_qwen(folder, tmp_path / "uf")
    model = load_model(out)
    assert model.cfg.text.shared_layers == 2 and model.cfg.text.branch_layers == 2
    ids = torch.randint(0, 100, (2, 11))
    start = torch.zeros(2, dtype=torch.int64)
    with torch.no_grad():
        want = ref(ids).logits
        x = model.text_embeds(ids)
        h, _ = model.trunk_forward(x, model.trunk.empty_kv(2), _zero(), start)
        got, _ = model.und_all_logits(h, model.und.empty_kv(2), _zero(), start)
    assert_close("full prompt logits", got, want, TOL["qwen_fp32"])

    # incremental decoding with the fused KV buffers: prefill 7 tokens, then 4 single steps
    S = 16
    kv_t, kv_u = model.trunk.empty_kv(2, S), model.und.empty_kv(2, S)
    steps = [(0, 7)] + [(p, p + 1) for p in range(7, 11)]
    with torch.no_grad():
        for a, b in steps:
            pos = torch.tensor(a)
            h, new = model.trunk_forward(model.text_embeds(ids[:, a:b]), kv_t, pos, start)
            kv_t[:, :, :, :, a:b] = new
            logits, new = model.und_logits(h, kv_u, pos, start)
            kv_u[:, :, :, :, a:b] = new
            assert_close(f"cached logits at {b - 1}", logits, want[:, b - 1], TOL["qwen_fp32"])


def test_generation_branch_equals_und_branch_after_conversion(qwen_dir, tmp_path):
    folder, _ = qwen_dir
    model = load_model(init_from_qwen(folder, tmp_path / "uf", shared_layers=1))
    assert model.cfg.text.shared_layers == 1
    und, gen = model.und.state_dict(), model.gen.state_dict()
    assert und.keys() == gen.keys() and len(und) == 3 * 12
    for k in und:
        assert torch.equal(und[k], gen[k]), k
    assert torch.equal(model.norm.weight, model.norm_gen.weight)


def test_bad_qwen_folders(qwen_dir, tmp_path):
    folder, _ = qwen_dir
    with pytest.raises(ConfigError, match="shared-layers 9"):
        init_from_qwen(folder, tmp_path / "a", shared_layers=9)
    with pytest.raises(ModelFolderError, match="does not exist"):
        init_from_qwen(tmp_path / "nope", tmp_path / "b")

    # a Qwen folder with a missing tensor: the error names it
    from safetensors.torch import load_file, save_file

    broken = tmp_path / "broken"
    broken.mkdir()
    for name in ("config.json", "tokenizer.json"):
        (broken / name).write_bytes((folder / name).read_bytes())
    state = load_file(str(folder / "model.safetensors"))
    del state["model.layers.3.mlp.up_proj.weight"]
    save_file(state, str(broken / "model.safetensors"))
    with pytest.raises(ModelFolderError, match=r"model\.layers\.3\.mlp\.up_proj\.weight"):
        init_from_qwen(broken, tmp_path / "c")

    cfg = json.loads((folder / "config.json").read_text())
    cfg["model_type"] = "llama"
    (broken / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ModelFolderError, match="model_type"):
        init_from_qwen(broken, tmp_path / "d")


def test_init_cli(qwen_dir, tmp_path):
    from click.testing import CliRunner

    from unifork_rt.cli import main

    folder, _ = qwen_dir
    res = CliRunner().invoke(main, ["init", "--from-qwen", str(folder), "--out", str(tmp_path / "uf"),
                                    "--shared-layers", "3", "--image-preset", "micro"])
    assert res.exit_code == 0, res.output
    model = load_model(tmp_path / "uf")
    assert model.cfg.text.shared_layers == 3 and model.cfg.image.grid_size == 4
    assert (tmp_path / "uf" / "tokenizer.json").read_bytes() == (folder / "tokenizer.json").read_bytes()
    res = CliRunner().invoke(main, ["init", "--from-qwen", str(tmp_path / "missing"), "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "does not exist" in res.output
