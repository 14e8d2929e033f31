"""The training path on the micro preset: tokenizer, data, imagefolder rows, every stage,
the Stage 3 merge, exact resume and the CLI. The torchrun test is in test_train_dist.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from unifork_rt.cli import _Group  # noqa: E402
from unifork_rt.config import preset  # noqa: E402
from unifork_rt.data import shapes_world as sw  # noqa: E402
from unifork_rt.errors import InputError, ModelFolderError  # noqa: E402
from unifork_rt.model.checkpoint import load_model, load_state  # noqa: E402
from unifork_rt.model.unifork import UniFork  # noqa: E402
from unifork_rt.train import jobs, stages  # noqa: E402
from unifork_rt.train.cli import COMMANDS  # noqa: E402
from unifork_rt.train.data import GenerationSampler, ImageSampler, UnderstandingSampler, parse_mix  # noqa: E402
from unifork_rt.train.imagefolder import load_imagefolder  # noqa: E402
from unifork_rt.train.stages import default_settings, run_stage, trainable_names  # noqa: E402
from unifork_rt.train.tokenizer import CAPTION_PROMPT, EOS, build_text_tokenizer, encode  # noqa: E402

SMALL = dict(batch_size=4, und_batch_size=4, eval_n=0)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: on 2 shared cores, spinning OpenMP threads make a busy machine
    several times slower, and these runs are too small to gain from two."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cli():
    return _Group(commands={c.name: c for c in COMMANDS})


@pytest.fixture(scope="module")
def tok():
    return build_text_tokenizer(384)


@pytest.fixture(scope="module")
def tok_folder(tmp_path_factory):
    """A micro model after a few tokenizer-stage steps: the start of the Y-model stages."""
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    run_stage(default_settings("tokenizer", steps=4, batch_size=8, eval_every=0, eval_n=0), out, preset="micro")
    return out


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_state(folder / "model.safetensors")


# --- text tokenizer ------------------------------------------------------------------------


def test_tokenizer_deterministic_fits_config_and_round_trips(tok):
    again = build_text_tokenizer(384)
    assert again.to_str() == tok.to_str()
    assert tok.get_vocab_size() <= preset("shapes").text.vocab_size
    assert tok.token_to_id(EOS) == preset("shapes").eos_token_id == 0
    texts = sw.text_corpus() + [CAPTION_PROMPT, "héllo wörld", "emoji 🤖🎨 and 中文 text", "tab\tnew\nline", ""]
    for text in texts:
        assert tok.decode(encode(tok, text)) == text
    # the world's words are whole tokens: a caption is one token per word
    assert len(encode(tok, "a red circle left of a blue square")) == 8


# --- samplers --------------------------------------------------------------------------------


def test_generation_batches_left_padded_with_null_prompts(tok):
    s = GenerationSampler(None, tok, 64, seed=1, null_rate=0.25, mix=parse_mix("caption=0,single_object=0"))
    b = s.next()
    B, P = b.prompt_ids.shape
    nulls = [i for i, p in enumerate(b.prompts) if p == ""]
    assert 4 <= len(nulls) <= 30
    for i, p in enumerate(b.prompts):
        assert b.start[i] == P - len(encode(tok, p))
        assert (b.prompt_ids[i, :b.start[i]] == 0).all()
        if p:
            assert tok.decode(b.prompt_ids[i, b.start[i]:].tolist()) == p
            assert sw.prompt_constraints(p).category != "single_object"
            assert sw.satisfies(__import__("unifork_rt.data.scoring", fromlist=["detect"]).detect(b.pixels[i]),
                                sw.prompt_constraints(p))
    assert b.pixels.shape == (64, 64, 64, 3) and b.pixels.dtype == np.uint8


def test_understanding_labels_cover_answer_and_eos_only(tok):
    b = UnderstandingSampler(None, tok, 8, seed=2).next()
    n_prompt = len(encode(tok, CAPTION_PROMPT))
    for ids, labels in zip(b.ids, b.labels):
        assert (labels[:n_prompt] == -100).all()
        answer = labels[labels != -100].tolist()
        assert answer[-1] == 0 and answer[:-1] == ids[n_prompt:n_prompt + len(answer) - 1].tolist()
        assert sw.parse_caption(tok.decode(answer[:-1])) is not None


def test_sampler_state_round_trip_and_rank_streams(tok):
    a = UnderstandingSampler(None, tok, 4, seed=3)
    a.next()
    saved = json.loads(json.dumps(a.state()))  # through JSON, as in a checkpoint
    first = a.next()
    b = UnderstandingSampler(None, tok, 4, seed=3)
    b.load_state(saved)
    assert np.array_equal(b.next().ids, first.ids)
    r0, r1 = ImageSampler(None, 4, seed=3, rank=0, world=2), ImageSampler(None, 4, seed=3, rank=1, world=2)
    assert not np.array_equal(r0.next(), r1.next())


def test_training_draws_only_train_split_scenes():
    rng_scenes = [sw.random_caption_scene(np.random.default_rng(i), "train") for i in range(3)]
    assert not any(sw.is_held_out(s) for s in rng_scenes)
    s = ImageSampler(None, 16, seed=4)
    for img in s.next():  # every training image is of a train-split scene
        from unifork_rt.data.scoring import detect_scene
        assert not sw.is_held_out(detect_scene(img))


# --- imagefolder -----------------------------------------------------------------------------


def _folder(tmp_path: Path) -> Path:
    root = tmp_path / "data"
    (root / "img").mkdir(parents=True)
    for i in range(3):
        sw.render_pil(sw.random_caption_scene(np.random.default_rng(i))).resize((80, 80)).save(root / "img" / f"{i}.png")
    (root / "img" / "broken.png").write_bytes(b"not an image")
    (tmp_path / "outside.png").write_bytes((root / "img" / "0.png").read_bytes())
    rows = [
        json.dumps({"file_name": "img/0.png", "text": "a red circle"}),        # 1 good
        json.dumps({"file_name": "img/missing.png", "text": "x"}),             # 2 missing file
        json.dumps({"file_name": "img/1.png", "text": "  "}),                  # 3 empty text
        '{"file_name": "img/2.png", "text": ',                                 # 4 malformed JSON
        json.dumps({"file_name": "../outside.png", "text": "escape"}),         # 5 escapes the folder
        json.dumps({"file_name": "img/broken.png", "text": "unreadable"}),     # 6 unreadable image
        "",                                                                    # blank: not a row
        json.dumps({"file_name": "img/2.png", "text": "two blue squares"}),    # 8 good
    ]
    (root / "metadata.jsonl").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return root


def test_imagefolder_bad_rows_reported_with_line_numbers(tmp_path):
    root = _folder(tmp_path)
    seen = []
    with pytest.raises(InputError) as e:
        load_imagefolder(root, 64, "fail", report=seen.append)
    for line in (2, 3, 4, 5, 6):
        assert f"metadata.jsonl:{line}:" in str(e.value)
    assert "--bad-rows skip" in str(e.value)
    seen.clear()
    folder = load_imagefolder(root, 64, "skip", report=seen.append)
    assert folder.texts == ("a red circle", "two blue squares")
    assert folder.images.shape == (2, 64, 64, 3)  # RGB, resized from 80 px
    assert [b.line for b in folder.skipped] == [2, 3, 4, 5, 6]
    assert sum(m.startswith("bad row:") for m in seen) == 5 and "skipped 5" in seen[-1]


def test_cli_bad_rows_fail_and_skip(tmp_path, tok_folder):
    root = _folder(tmp_path)
    args = ["train", "--stage", "2", "--init", str(tok_folder), "--steps", "2", "--batch-size", "2",
            "--und-batch-size", "2", "--data", str(root), "--eval-n", "0"]
    r = CliRunner().invoke(cli(), args + ["--out", str(tmp_path / "fail")])
    assert r.exit_code == 2 and "metadata.jsonl:5:" in r.output, r.output
    r = CliRunner().invoke(cli(), args + ["--out", str(tmp_path / "skip"), "--bad-rows", "skip"])
    assert r.exit_code == 0, r.output
    assert "metadata.jsonl:6:" in r.output and (tmp_path / "skip" / "done.json").is_file()


# --- stages, merge, recipe -------------------------------------------------------------------


def test_stage_parameter_sets():
    for untied in (False, True):
        model = UniFork(preset("micro").replace(text={"tie_word_embeddings": not untied}))
        names = {n for n, _ in model.named_parameters()}
        tok_names = set(trainable_names(model, "tokenizer"))
        assert set(trainable_names(model, "2")) == names - tok_names  # everything but the image tokenizer
        gen, und = set(trainable_names(model, "3-gen")), set(trainable_names(model, "3-und"))
        assert gen and und and not gen & und
        assert not (gen | und) & {n for n in names if n.startswith(("trunk.", "embed_tokens.", "connector."))}
        assert ("lm_head.weight" in und) == untied


def test_micro_recipe_end_to_end_with_merge(tmp_path):
    r = CliRunner().invoke(cli(), ["recipe", "micro", "--out", str(tmp_path / "run")])
    assert r.exit_code == 0, r.output
    run = tmp_path / "run"
    model = load_model(run / "model")  # loadable by the package's own loader
    assert model.cfg == preset("micro")
    assert (run / "model" / "tokenizer.json").read_bytes() == (run / "tokenizer" / "tokenizer.json").read_bytes()
    w = {k: _weights(run / f) for k, f in (("tok", "tokenizer"), ("dec", "decoder"), ("s1", "stage1"),
                                           ("s2", "stage2"), ("gen", "stage3/gen"), ("und", "stage3/und"),
                                           ("final", "model"))}
    gen, und = set(trainable_names(model, "3-gen")), set(trainable_names(model, "3-und"))
    s1 = set(trainable_names(model, "1"))
    for name, t in w["final"].items():
        src = "gen" if name in gen else "und" if name in und else "s2"
        assert torch.equal(t, w[src][name]), name
        if name.startswith("image_tokenizer."):  # frozen after its own stage; the decoder after the next
            assert torch.equal(t, w["dec" if name.startswith("image_tokenizer.decoder.") else "tok"][name]), name
        if name not in s1:  # stage 1 trains only connector, BOI/EOI and the depth head
            assert torch.equal(w["s1"][name], w["dec"][name]), name
    decoder = [n for n in w["tok"] if n.startswith("image_tokenizer.decoder.")]
    assert decoder and all(torch.equal(w["dec"][n], w["tok"][n]) == (n not in decoder) for n in w["tok"]), \
        "the decoder stage changes the decoder and nothing else"
    assert any(not torch.equal(w["final"][n], w["s2"][n]) for n in gen)
    assert any(not torch.equal(w["final"][n], w["s2"][n]) for n in und)
    # a second run of the same command on the finished folder refuses; --resume is a no-op
    r = CliRunner().invoke(cli(), ["recipe", "micro", "--out", str(run)])
    assert r.exit_code == 2 and "--resume" in r.output
    r = CliRunner().invoke(cli(), ["recipe", "micro", "--out", str(run), "--resume"])
    assert r.exit_code == 0, r.output


def test_merge_refuses_runs_that_touched_frozen_tensors(tmp_path, tok_folder):
    s2 = run_stage(default_settings("2", steps=2, **SMALL), tmp_path / "s2", init=tok_folder)
    gen = run_stage(default_settings("3-gen", steps=1, **SMALL), tmp_path / "gen", init=s2)
    other = run_stage(default_settings("2", steps=1, **SMALL), tmp_path / "other", init=s2)
    with pytest.raises(ModelFolderError, match="differs between"):  # its 'und' is a stage 2 run
        stages.merge_stage3(s2, gen, other, tmp_path / "merged")


# --- exact resume ----------------------------------------------------------------------------


@pytest.mark.parametrize("stage", ["tokenizer", "2"])
def test_resume_after_crash_equals_uninterrupted(tmp_path, tok_folder, monkeypatch, stage):
    opts = dict(steps=7, save_every=3, seed=5, **SMALL)
    if stage == "tokenizer":  # restarts and the held-out check inside the resumed window
        opts.update(restart_every=2, eval_every=3, eval_n=10, batch_size=8)
    start = dict(preset="micro") if stage == "tokenizer" else dict(init=tok_folder)
    s = default_settings(stage, **opts)
    whole = run_stage(s, tmp_path / "whole", **start)

    job_cls = jobs.VQJob if stage == "tokenizer" else jobs.YJob
    original = job_cls.after_step

    def crash_after_step_5(self, step, optimizer):  # a kill between the step-3 and step-6 checkpoints
        info = original(self, step, optimizer)
        if step == 4:
            raise RuntimeError("simulated crash")
        return info

    monkeypatch.setattr(job_cls, "after_step", crash_after_step_5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_stage(s, tmp_path / "cut", **start)
    monkeypatch.setattr(job_cls, "after_step", original)
    with pytest.raises(InputError, match="--resume"):  # no silent restart over a checkpoint
        run_stage(s, tmp_path / "cut", **start)
    with pytest.raises(InputError, match="differs in"):  # resuming with other options is refused
        run_stage(default_settings(stage, **{**opts, "lr": 5e-4}), tmp_path / "cut", resume=True, **start)
    run_stage(s, tmp_path / "cut", resume=True, **start)
    a, b = _weights(whole), _weights(tmp_path / "cut")
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    steps = [json.loads(line)["step"] for line in (tmp_path / "cut" / "log.jsonl").read_text().splitlines()]
    assert steps == list(range(1, 8))  # the log shows each step once


def test_minutes_budget_fixes_a_step_count(tmp_path, tok_folder):
    out = run_stage(default_settings("1", minutes=0.03, warmup=12, **SMALL), tmp_path / "s1", init=tok_folder)
    done = json.loads((out / "done.json").read_text())
    assert done["steps"] >= 11


def test_bad_checkpoint_is_a_clear_error(tmp_path, tok_folder):
    s = default_settings("1", steps=2, **SMALL)
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "checkpoint.safetensors").write_bytes(b"\x80\x04garbage")  # e.g. a pickle
    with pytest.raises(ModelFolderError, match="not a readable training checkpoint"):
        run_stage(s, tmp_path / "s1", init=tok_folder, resume=True)


def test_cli_module_does_not_import_torch():
    code = "import sys, unifork_rt.train.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[1])


# --- evaluation: tests/test_eval.py (train/monitor.py is ShapesBench through the runtime) -------


def test_resume_log_survives_a_row_cut_short_by_a_kill(tmp_path):
    from unifork_rt.train.loop import _truncate_log

    log = tmp_path / "log.jsonl"
    log.write_text('{"step": 1, "loss": 2.0}\n{"step": 2, "loss": 1.5}\n{"step": 3, "lo')  # SIGKILL mid-write
    _truncate_log(log, step=2)
    assert [json.loads(r)["step"] for r in log.read_text().splitlines()] == [1, 2]


def test_recipe_budget_moves_unused_time_to_later_stages():
    from unifork_rt.train.recipe import SHAPES, budget_minutes

    budgeted = [r for r in SHAPES.stages if not r.fixed]  # the decoder stage runs its fixed step count
    shares = [r.share for r in budgeted]
    assert abs(sum(shares) - 1) < 1e-9 and [r.folder for r in SHAPES.stages][:3] == ["tokenizer", "decoder", "stage1"]
    first = budget_minutes(SHAPES, 0, 100.0, 0.0)
    assert first == round(100 * shares[0], 3)
    # the tokenizer stopped early after 5 of its 25 minutes: stage 1 gets its share of 95
    assert budget_minutes(SHAPES, 2, 100.0, 5.0) == round(95 * shares[1] / sum(shares[1:]), 3)
    assert budget_minutes(SHAPES, 5, 100.0, 150.0) == 0.05  # overspent: a token budget, not negative
    with pytest.raises(ValueError, match="fixed step count"):
        budget_minutes(SHAPES, 1, 100.0, 0.0)


def test_flat_cells_share_one_latent_and_stay_out_of_the_restart_pool():
    from unifork_rt.train.vq import tie_uniform_cells, to_pixels, uniform_groups

    x = to_pixels(sw.render(sw.Scene((sw.Obj(1, 1, "red", "circle"),)))[None])  # object in cells 2..3 of 8
    uniform, group = uniform_groups(x, grid=8)
    expected = torch.ones(1, 8, 8, dtype=torch.bool)
    expected[0, 2:4, 2:4] = False
    assert torch.equal(uniform.reshape(1, 8, 8), expected) and int(group.max()) == 0  # one colour: white
    z = torch.randn(1, 64, 4, requires_grad=True)
    tied, loss = tie_uniform_cells(z, uniform, group)
    assert torch.allclose(tied[uniform], tied[uniform][:1].expand(60, -1))  # one latent for all flat cells
    assert torch.equal(tied[~uniform], z[~uniform])
    loss.backward()
    assert (z.grad[~uniform] == 0).all() and (z.grad[uniform] != 0).any()


def test_image_batches_vary_the_rasterizer_and_decoder_targets_are_canonical():
    from unifork_rt.data import scoring
    from unifork_rt.train.data import ImageSampler

    images, targets = ImageSampler(None, 48, seed=0, targets=True).next()
    assert images.shape == targets.shape == (48, 64, 64, 3)
    for img, tgt in zip(images, targets):
        scene = scoring.detect_scene(tgt)
        assert scene is not None and np.array_equal(tgt, sw.render(scene))  # the canonical rendering
        assert scoring.detect_scene(img) == scene  # the same scene, drawn by some rasterizer
    assert sum(not np.array_equal(i, t) for i, t in zip(images, targets)) > 16  # most differ in pixels
