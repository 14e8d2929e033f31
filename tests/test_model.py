"""The PyTorch model on the micro preset: training steps, checkpoints, configs, `info`."""

from __future__ import annotations

import dataclasses
import json

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from unifork_rt.cli import main  # noqa: E402
from unifork_rt.config import ModelConfig, preset  # noqa: E402
from unifork_rt.errors import ConfigError, ModelFolderError  # noqa: E402
from unifork_rt.model.checkpoint import load_model, save_model  # noqa: E402
from unifork_rt.model.unifork import UniFork  # noqa: E402


def _batch(cfg, g):
    B, N, D = 3, cfg.image.num_cells, cfg.image.depth
    codes = torch.randint(0, cfg.image.codebook_size, (B, N, D), generator=g)
    prompt = torch.randint(1, 50, (B, 6), generator=g)
    start = torch.tensor([0, 2, 6])  # the last row is a null prompt (all padding)
    ids = torch.randint(1, 50, (B, 8), generator=g)
    labels = ids.clone()
    labels[:, :4] = -100
    return codes, prompt, start, ids, labels


def test_micro_training_step_lowers_both_losses():
    cfg = preset("micro")
    torch.manual_seed(0)
    model = UniFork(cfg)
    codes, prompt, start, ids, labels = _batch(cfg, torch.Generator().manual_seed(1))
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = last = None
    for _ in range(8):
        lg = model.generation_loss(prompt, start, codes)
        lu = model.understanding_loss(codes, ids, labels)
        opt.zero_grad()
        (lg + lu).backward()
        opt.step()
        first = first or (lg.item(), lu.item())
        last = (lg.item(), lu.item())
    print(f"gen loss {first[0]:.3f} -> {last[0]:.3f}, und loss {first[1]:.3f} -> {last[1]:.3f}")
    assert last[0] < first[0] - 0.2 and last[1] < first[1] - 0.5


def test_save_load_bit_identical(tmp_path):
    cfg = preset("micro")
    torch.manual_seed(3)
    model = UniFork(cfg).eval()
    codes, prompt, start, ids, labels = _batch(cfg, torch.Generator().manual_seed(2))
    save_model(model, tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.cfg == cfg
    with torch.no_grad():
        for a, b in ((model, loaded),):
            assert torch.equal(a.generation_loss(prompt, start, codes), b.generation_loss(prompt, start, codes))
            assert torch.equal(a.understanding_loss(codes, ids, labels), b.understanding_loss(codes, ids, labels))
            assert torch.equal(a.decode_codes(codes), b.decode_codes(codes))
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k]), k


def test_fused_cache_matches_full_sequence():
    """Prefill + single steps through the fused buffers equal one full pass (valid positions)."""
    cfg = preset("micro")
    torch.manual_seed(0)
    model = UniFork(cfg).eval()
    B, T, S = 2, 9, 16
    x = torch.randn(B, T, cfg.text.hidden_size)
    start = torch.tensor([0, 3])
    zero = torch.zeros((), dtype=torch.int64)
    with torch.no_grad():
        h, _ = model.trunk_forward(x, model.trunk.empty_kv(B), zero, start)
        full, _ = model.gen_hidden(h, model.gen.empty_kv(B), zero, start)
        kv_t, kv_g = model.trunk.empty_kv(B, S), model.gen.empty_kv(B, S)
        outs = []
        for a, b in [(0, 5)] + [(p, p + 1) for p in range(5, T)]:
            pos = torch.tensor(a)
            h, new = model.trunk_forward(x[:, a:b], kv_t, pos, start)
            kv_t[..., a:b, :] = new
            out, new = model.gen_hidden(h, kv_g, pos, start)
            kv_g[..., a:b, :] = new
            outs.append(out)
    inc = torch.cat(outs, 1)
    assert (inc[0] - full[0]).abs().max() < 1e-5
    assert (inc[1, 3:] - full[1, 3:]).abs().max() < 1e-5  # row 1 positions < 3 are padding


def test_depth_head_steps_match_teacher_forcing():
    cfg = preset("micro")
    torch.manual_seed(0)
    model = UniFork(cfg).eval()
    B, D = 3, cfg.image.depth
    hidden = torch.randn(B, cfg.text.hidden_size)
    codes = torch.randint(0, cfg.image.codebook_size, (B, D))
    with torch.no_grad():
        want = model.head.forward_train(hidden, codes, model.image_tokenizer.codebook)
        kv = model.head.empty_kv(B, D)
        for d in range(D):
            logits, new = model.head_logits(hidden, codes, kv, torch.tensor(d))
            kv[..., d:d + 1, :] = new
            assert (logits - want[:, d]).abs().max() < 1e-5


@pytest.mark.parametrize("change, field", [
    ({"text": {"num_heads": 5}}, "num_heads"),
    ({"text": {"shared_layers": 9}}, "shared_layers"),
    ({"text": {"num_kv_heads": 3}}, "num_kv_heads"),
    ({"image": {"grid_size": 5}}, "grid_size"),
    ({"head": {"num_heads": 3}}, "num_heads"),
    ({"eos_token_id": 10_000}, "eos_token_id"),
])
def test_inconsistent_configs_name_the_field(change, field):
    with pytest.raises(ConfigError, match=field):
        preset("micro").replace(**change)


def test_unknown_preset_lists_valid_ones():
    with pytest.raises(ConfigError, match="micro, shapes, paper"):
        preset("tiny")


def test_bad_model_folders(tmp_path):
    with pytest.raises(ModelFolderError, match="does not exist"):
        load_model(tmp_path / "absent")
    folder = tmp_path / "m"
    save_model(UniFork(preset("micro")), folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(ModelFolderError, match="config.json is not valid JSON"):
        load_model(folder)
    d = preset("micro").to_dict()
    d["text"]["hiden_size"] = 3
    (folder / "config.json").write_text(json.dumps(d))
    with pytest.raises(ConfigError, match="hiden_size"):
        load_model(folder)
    preset("micro").save(folder / "config.json")
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFolderError, match="model.safetensors is not a readable safetensors"):
        load_model(folder)
    save_model(UniFork(preset("micro")), tmp_path / "other")
    (folder / "model.safetensors").write_bytes((tmp_path / "other" / "model.safetensors").read_bytes())
    preset("shapes").save(folder / "config.json")  # weights of another model
    with pytest.raises(ModelFolderError, match="does not match its config.json: missing"):
        load_model(folder)
    preset("micro").replace(text={"intermediate_size": 96}).save(folder / "config.json")  # same names, other sizes
    with pytest.raises(ModelFolderError, match=r"mlp\.\w+_proj\.weight has shape"):
        load_model(folder)


def test_info_cli(tmp_path):
    runner = CliRunner()
    res = runner.invoke(main, ["info", "--preset", "paper", "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.output)
    print(f"paper: per layer {s['per_backbone_layer'] / 1e6:.2f}M, und {s['active_understanding'] / 1e9:.3f}B, "
          f"gen {s['active_generation'] / 1e9:.3f}B")
    assert abs(s["per_backbone_layer"] / 1e6 - 14.91) < 0.01
    assert 0.49e9 <= s["active_understanding"] <= 0.50e9
    assert 0.75e9 <= s["active_generation"] <= 0.76e9
    # the rq_head graph composes the head's attention projections: 132.15M of its 401.94M remain
    assert s["components"]["depth_head"] == 401_936_896 and s["depth_head_exported"] == 132_147_712
    res = runner.invoke(main, ["info", "--preset", "paper"])
    assert "as exported        132.15M" in res.output
    res = runner.invoke(main, ["info", "--preset", "shapes", "--json"])
    s = json.loads(res.output)
    assert s["depth_head_exported"] == s["components"]["depth_head"]  # a head as wide as its residual

    save_model(UniFork(preset("micro")), tmp_path / "m")
    res = runner.invoke(main, ["info", str(tmp_path / "m")])
    assert res.exit_code == 0 and "active, generation" in res.output
    res = runner.invoke(main, ["info", "--preset", "huge"])
    assert res.exit_code == 2 and "valid presets: micro, shapes, paper" in res.output
    res = runner.invoke(main, ["info", str(tmp_path / "nothing")])
    assert res.exit_code == 2 and "config.json is missing" in res.output


@pytest.mark.parametrize("name", ["micro", "shapes", "paper"])
@pytest.mark.parametrize("variant", ["as is", "local flipped", "untied lm_head"])
def test_preset_shapes_are_the_models_tensors(name, variant):
    """`info --preset` counts by arithmetic on the config: the same names and shapes as the model."""
    from unifork_rt import params

    cfg = preset(name)
    if variant == "local flipped":
        cfg = cfg.replace(image={"local": not cfg.image.local})
    elif variant == "untied lm_head":
        cfg = cfg.replace(text={"tie_word_embeddings": False})
    with torch.device("meta"):
        want = {k: tuple(v.shape) for k, v in UniFork(cfg).state_dict().items()}
    assert params.preset_shapes(cfg) == want


def test_info_preset_needs_no_torch():
    import subprocess
    import sys

    code = ("import sys; from unifork_rt.cli import run; code = run(['info', '--preset', 'paper']); "
            "assert code == 0 and 'torch' not in sys.modules, (code, 'torch imported')")
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)


@pytest.mark.parametrize("local", [True, False])
def test_local_image_tokenizer_keeps_each_cell_to_its_own_pixels(local):
    """local=True: changing one cell's pixels changes only that cell's latent, and changing one
    cell's feature changes only that cell's pixels. The overlapping encoder leaks (the control)."""
    from unifork_rt.model.rqvae import RQVAE

    cfg = preset("shapes").image
    cfg = dataclasses.replace(cfg, local=local)
    torch.manual_seed(0)
    vq = RQVAE(cfg).eval()
    P, g = cfg.image_size, cfg.grid_size
    p = P // g
    x = torch.rand(1, 3, P, P) * 2 - 1
    y = x.clone()
    r, c = g // 2, g - 1  # a cell away from the first row and column
    y[:, :, r * p:(r + 1) * p, c * p:(c + 1) * p] = torch.rand(1, 3, p, p)
    with torch.no_grad():
        dz = (vq.encode_latent(x) - vq.encode_latent(y)).abs().amax(-1).reshape(g, g)
        q = torch.randn(1, g * g, cfg.codebook_dim)
        q2 = q.clone()
        q2[0, r * g + c] += 1.0
        dx = (vq.decode_features(q) - vq.decode_features(q2)).abs().amax(1)[0]  # (P, P)
    changed_cells = {(int(r), int(c)) for r, c in (dz > 0).nonzero()}
    outside = dx.clone()
    outside[r * p:(r + 1) * p, c * p:(c + 1) * p] = 0
    if local:
        assert changed_cells == {(r, c)}
        assert float(outside.max()) == 0.0 and float(dx.max()) > 0
    else:
        assert len(changed_cells) > 1 and float(outside.max()) > 0


def test_config_written_before_local_existed_still_matches(tmp_path):
    """Bundles exported before ImageConfig.local hash their config without it: they must load."""
    d = preset("micro").to_dict()
    assert "local" not in d["image"]  # off: not written, so the hash is the one earlier versions recorded
    assert ModelConfig.from_dict(d) == preset("micro")
    assert preset("shapes").to_dict()["image"]["local"] is True
