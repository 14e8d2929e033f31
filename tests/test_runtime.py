"""The torch-free runtime end to end on micro: parity with the PyTorch reference, seeds, no torch."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from unifork_rt.model import reference  # noqa: E402
from unifork_rt.model.checkpoint import load_model  # noqa: E402
from unifork_rt.runtime.pipeline import CAPTION_PROMPT, DrawSettings, UniForkRuntime  # noqa: E402
from unifork_rt.runtime.sampling import Sampling  # noqa: E402


@pytest.fixture(scope="module")
def rt(micro_bundle):
    with UniForkRuntime(micro_bundle) as r:
        yield r


@pytest.fixture(scope="module")
def model(micro_model_dir):
    return load_model(micro_model_dir)


def _pixels(seed, B):
    return np.random.default_rng(seed).uniform(-1, 1, (B, 3, 64, 64)).astype(np.float32)


@pytest.mark.parametrize("sampling", [Sampling(0.0), Sampling(1.0, top_k=40, top_p=0.95)],
                         ids=["greedy", "sampled"])
def test_caption_matches_pytorch_token_for_token(rt, model, sampling):
    pixels = _pixels(0, 2)
    prompt = "a red circle"
    ids = rt.encode_text(prompt)
    want = reference.caption_ids(model, torch.from_numpy(pixels), ids, 12, sampling, seed=4)
    got = rt.caption_ids(list(pixels), prompt=prompt, max_new_tokens=12, temperature=sampling.temperature,
                         top_k=sampling.top_k, top_p=sampling.top_p, seed=4)
    print(f"{sampling}: caption tokens {got}")
    assert got == want
    assert sum(map(len, got)) >= 12  # the comparison covers real tokens, not just an early eos


def test_caption_stops_at_max_seq(micro_bundle):
    """A long prompt leaves room for fewer tokens: generation runs exactly to the KV buffer's end."""
    prompt = " ".join(["a red circle left of a blue square"] * 3)
    with UniForkRuntime(micro_bundle) as rt:
        ids = rt.encode_text(prompt)
        room = rt.bundle.max_seq - (rt.cfg.image.num_cells + 2 + len(ids)) + 1
        assert 1 < room < 100  # the buffer, not max_new_tokens, is what stops it
        first = [int(t[0]) for t in rt.caption_stream(list(_pixels(0, 1)), prompt=prompt, max_new_tokens=100)]
        # an eos the model never picks here, so only the buffer's end can stop the stream
        rt.cfg = rt.cfg.replace(eos_token_id=next(i for i in range(rt.cfg.text.vocab_size) if i not in first))
        steps = [int(t[0]) for t in rt.caption_stream(list(_pixels(0, 1)), prompt=prompt, max_new_tokens=100)]
    assert len(steps) == room and rt.cfg.eos_token_id not in steps
    assert steps[:len(first)] == first[:len(steps)]  # the same greedy tokens, only longer where eos had stopped it


@pytest.mark.parametrize("cfg_scale, temperature, top_k, top_p", [
    (1.0, 0.0, 0, 1.0),    # greedy, no guidance (batch n)
    (3.0, 0.0, 0, 1.0),    # greedy with CFG (batch 2n)
    (2.0, 1.0, 20, 0.9),   # seeded sampling with CFG, top-k and top-p
])
def test_draw_codes_match_pytorch_reference(rt, model, cfg_scale, temperature, top_k, top_p):
    ids = rt.encode_text("a red circle left of a blue square")
    s = DrawSettings(cfg_scale=cfg_scale, temperature=temperature, top_k=top_k, top_p=top_p)
    got = rt.draw_codes("a red circle left of a blue square", n=2, settings=s, seed=7)
    want = reference.draw_codes(model, ids, 2, cfg_scale, Sampling(temperature, top_k, top_p), seed=7)
    assert got.shape == (2, 16, 2)
    assert np.array_equal(got, want)
    with torch.no_grad():  # same codes -> the same image
        ref_pixels = model.decode_codes(torch.from_numpy(want)).numpy()
    got_img = rt.decode(got)[0]
    from unifork_rt.runtime.images import uint8_from_pixels

    assert np.abs(got_img.astype(int) - uint8_from_pixels(ref_pixels[0]).astype(int)).max() <= 1


def test_same_seed_same_outputs(rt):
    kw = dict(temperature=1.0, top_k=50, top_p=0.95)
    a = rt.caption(list(_pixels(1, 1)), seed=3, **kw)
    b = rt.caption(list(_pixels(1, 1)), seed=3, **kw)
    assert a == b
    i1 = rt.draw(["three blue squares"], n=2, seed=5, cfg_scale=2.0)
    i2 = rt.draw(["three blue squares"], n=2, seed=5, cfg_scale=2.0)
    assert all(np.array_equal(x, y) for x, y in zip(i1, i2))
    s = DrawSettings(cfg_scale=2.0)
    c5 = rt.draw_codes("three blue squares", n=2, settings=s, seed=5)
    assert np.array_equal(c5, rt.draw_codes("three blue squares", n=2, settings=s, seed=5))
    assert not np.array_equal(c5, rt.draw_codes("three blue squares", n=2, settings=s, seed=6))


def test_runtime_runs_without_torch(micro_bundle, tmp_path):
    """Caption and draw in a subprocess where importing torch fails."""
    code = textwrap.dedent(f"""
        import sys, importlib.abc
        class NoTorch(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name == "torch" or name.startswith("torch."):
                    raise ImportError("torch is blocked in this test")
        sys.meta_path.insert(0, NoTorch())
        from click.testing import CliRunner
        from unifork_rt.cli import main
        r = CliRunner().invoke(main, ["draw", "a red circle", "--model", r"{micro_bundle}", "-o", r"{tmp_path}/x.png", "--quiet"])
        assert r.exit_code == 0, r.output
        r = CliRunner().invoke(main, ["caption", r"{tmp_path}/x.png", "--model", r"{micro_bundle}", "--max-new-tokens", "4"])
        assert r.exit_code == 0, r.output
        assert "torch" not in sys.modules
        print("ok without torch")
    """)
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "ok without torch" in res.stdout


def test_images_given_as_paths_pillow_or_arrays_agree(rt, tmp_path):
    from PIL import Image

    from unifork_rt.errors import InputError
    from unifork_rt.runtime.images import pixels_from_uint8

    rgb = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    path = tmp_path / "x.png"
    Image.fromarray(rgb).save(path)
    from_path, from_pil, from_array = (rt.encode_images([x]) for x in (path, Image.fromarray(rgb), pixels_from_uint8(rgb)))
    assert np.array_equal(from_path, from_pil) and np.array_equal(from_path, from_array)
    with pytest.raises(InputError, match=r"\(3, 64, 64\)"):
        rt.encode_images([rgb])  # (H, W, 3) uint8: refused with the fix, not misread


def test_ort_sessions_do_not_spin_between_chained_graphs(micro_bundle):
    from unifork_rt.runtime.bundle import load_bundle
    from unifork_rt.runtime.ort_backend import OrtBackend

    bundle = load_bundle(micro_bundle)
    for spin, want in ((False, "0"), (True, "1")):
        be = OrtBackend(bundle, spin=spin, preload=True).load()
        got = {n: s.get_session_options().get_session_config_entry("session.intra_op.allow_spinning")
               for n, s in be.sessions.items()}
        assert set(got.values()) == {want}, got
        be.close()


def test_ort_sessions_are_created_on_first_use(micro_bundle):
    from unifork_rt.runtime.bundle import load_bundle
    from unifork_rt.runtime.ort_backend import OrtBackend

    with UniForkRuntime(micro_bundle) as r:
        assert r.backend.sessions == {}  # nothing loaded before a task needs it
        r.caption([_pixels(0, 1)[0]], max_new_tokens=2)
        assert set(r.backend.sessions) == {"vision_encoder", "connector", "trunk", "und_branch"}
        r.draw_codes("a red circle")
        assert {"gen_branch", "rq_head"} <= set(r.backend.sessions)
    be = OrtBackend(load_bundle(micro_bundle), preload=True).load()
    assert set(be.sessions) == set(be.bundle.graphs)


def test_sample_refuses_non_finite_logits():
    """NaN logits used to come out as token 0 (argmax of NaN, and the sampler's cumsum)."""
    from unifork_rt.runtime.sampling import NumericsError, Sampling, sample

    rng = np.random.default_rng(0)
    good = rng.standard_normal((3, 10)).astype(np.float32)
    assert sample(good, Sampling(0.0), rng).shape == (3,)
    for bad in (np.nan, np.inf, -np.inf):
        logits = good.copy()
        logits[1, 4] = bad
        for s in (Sampling(0.0), Sampling(1.0, top_k=5), Sampling(0.7, top_p=0.9)):
            with pytest.raises(NumericsError, match=r"non-finite logits \(NaN or inf\) in row\(s\) \[1\]"):
                sample(logits, s, rng)
