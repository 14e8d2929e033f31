"""`unifork-rt ablation` on the micro preset, and single-task stages (StageSettings.tasks)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

torch = pytest.importorskip("torch")

from unifork_rt import params  # noqa: E402
from unifork_rt.assets import BUNDLED  # noqa: E402
from unifork_rt.train import ablation as abl  # noqa: E402
from unifork_rt.cli import main  # noqa: E402
from unifork_rt.config import preset  # noqa: E402
from unifork_rt.errors import InputError  # noqa: E402
from unifork_rt.model.checkpoint import load_model, load_state  # noqa: E402
from unifork_rt.train import jobs, stages  # noqa: E402
from unifork_rt.train.stages import default_settings, run_stage  # noqa: E402

TINY = ["--preset", "micro", "--stage1-steps", "2", "--stage2-steps", "3", "--batch-size", "4",
        "--und-batch-size", "4", "--caption-n", "3", "--draw-n", "1", "--threads", "1"]
GEN_ONLY = ("gen.", "norm_gen.", "head.")
UND_ONLY = ("und.", "norm.", "eoi")


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tok_folder(tmp_path_factory):
    """A micro image tokenizer after a few steps (the --tokenizer every variant starts from)."""
    out = tmp_path_factory.mktemp("tok") / "tokenizer"
    run_stage(default_settings("tokenizer", steps=3, batch_size=8, eval_every=0, eval_n=0), out, preset="micro")
    return out


@pytest.fixture(scope="module")
def ablation_run(tmp_path_factory, tok_folder):
    out = tmp_path_factory.mktemp("abl") / "run"
    r = CliRunner().invoke(main, ["ablation", "--tokenizer", str(tok_folder), "--out", str(out), *TINY])
    assert r.exit_code == 0, r.output
    return out, r.output


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_state(folder / "model.safetensors")


def test_ablation_writes_four_variants_with_their_tasks(ablation_run):
    out, output = ablation_run
    report = json.loads((out / "ablation.json").read_text())
    cfg = preset("micro").text
    want = {"gen_expert": (["gen"], cfg.shared_layers), "und_expert": (["und"], cfg.shared_layers),
            "fully_shared": (["gen", "und"], cfg.num_layers), "unifork": (["gen", "und"], cfg.shared_layers)}
    assert set(report["variants"]) == set(want)
    active = {"gen": set(), "und": set()}
    for name, (tasks, shared) in want.items():
        v = report["variants"][name]
        assert v["tasks"] == tasks and v["shared_layers"] == shared
        assert v["shared_layers"] + v["branch_layers"] == cfg.num_layers
        seed = v["seeds"]["0"]
        assert ("caption" in seed) == ("und" in tasks) and ("draw" in seed) == ("gen" in tasks)
        assert {k.split(".")[0] for k in v["summary"]} == {{"gen": "draw", "und": "caption"}[t] for t in tasks}
        if "gen" in tasks:
            shipped = json.loads((BUNDLED / "manifest.json").read_text())["sampling"]  # what the model ships with
            assert seed["draw"]["n"] == 6 and seed["draw"]["settings"]["cfg_scale"] == shipped["cfg_scale"]
            assert seed["draw"]["settings"]["temperature"] == shipped["temperature"]
        if "und" in tasks:
            assert seed["caption"]["n"] == 3
        # active parameters: counted again here from the trained model folder
        model = load_model(out / name / "seed0" / "stage2")
        assert model.cfg.text.shared_layers == shared
        s = params.summary(model.cfg, params.count({n: tuple(t.shape) for n, t in model.state_dict().items()}))
        counts = {"und": s["active_understanding"], "gen": s["active_generation"]}
        assert v["active_parameters"] == {t: counts[t] for t in tasks}
        for t in tasks:
            active[t].add(counts[t])
        assert seed["wall_seconds"] > 0 and set(seed["stage_seconds"]) == {"stage1", "stage2"}
    assert len(active["gen"]) == 1 and len(active["und"]) == 1, active  # equal across variants
    assert report["settings"]["stage2_steps"] == 3 and report["settings"]["seeds"] == [0]
    for name in want:
        for stage in ("stage1", "stage2"):
            done = json.loads((out / name / "seed0" / stage / "done.json").read_text())
            assert done["steps"] == (2 if stage == "stage1" else 3)
    md = (out / "ablation.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and not line.startswith("| model")]
    assert [r.split("|")[1].strip() for r in rows] == ["Gen expert", "Und expert", "Fully shared", "UniFork"]
    assert "Equal budget" in md and "Stage 3 is not part" in md
    assert output.count("[ablation]") >= 4 * 3 and "min on 2 idle cores" in output


def test_variants_start_from_the_same_layers_and_tokenizer(ablation_run, tok_folder):
    out, _ = ablation_run
    k, L = preset("micro").text.shared_layers, preset("micro").text.num_layers
    full = _weights(out / "fully_shared" / "seed0" / "start")
    tok = _weights(tok_folder)
    for name in ("gen_expert", "und_expert", "unifork"):
        w = _weights(out / name / "seed0" / "start")
        for n, t in w.items():
            if n.startswith("image_tokenizer."):
                assert torch.equal(t, tok[n]), n
            elif n.startswith(("und.layers.", "gen.layers.")):  # a branch = a copy of the upper layers
                _, _, j, tail = n.split(".", 3)
                assert torch.equal(t, full[f"trunk.layers.{k + int(j)}.{tail}"]), n
            else:
                assert torch.equal(t, full[n]), n
    assert any(f"trunk.layers.{L - 1}." in n for n in full)


def test_single_task_variants_leave_the_other_task_untouched(ablation_run):
    out, _ = ablation_run
    for name, untouched, trained in (("und_expert", GEN_ONLY, UND_ONLY), ("gen_expert", UND_ONLY, GEN_ONLY)):
        start, end = _weights(out / name / "seed0" / "start"), _weights(out / name / "seed0" / "stage2")
        assert all(torch.equal(start[n], end[n]) for n in start if n.startswith(untouched))
        assert any(not torch.equal(start[n], end[n]) for n in start if n.startswith(trained))
    start, end = _weights(out / "unifork" / "seed0" / "start"), _weights(out / "unifork" / "seed0" / "stage2")
    for prefix in GEN_ONLY + UND_ONLY:  # a two-task model trains both sides
        assert any(not torch.equal(start[n], end[n]) for n in start if n.startswith(prefix)), prefix


def test_resume_skips_finished_variants_and_refuses_other_options(ablation_run, tok_folder):
    out, _ = ablation_run
    before = (out / "unifork" / "seed0" / "result.json").read_text()
    args = ["ablation", "--tokenizer", str(tok_folder), "--out", str(out), *TINY]
    r = CliRunner().invoke(main, args)
    assert r.exit_code == 2 and "--resume" in r.output
    r = CliRunner().invoke(main, args + ["--resume"])
    assert r.exit_code == 0, r.output
    assert r.output.count("skipped") == 4 and "stage 1," not in r.output
    assert (out / "unifork" / "seed0" / "result.json").read_text() == before
    r = CliRunner().invoke(main, [*args, "--resume", "--stage2-steps", "4"])
    assert r.exit_code == 2 and "stage2_steps" in r.output


def test_stage_restricted_to_one_task_builds_nothing_of_the_other(tmp_path, tok_folder, monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the generation side was built or run")

    monkeypatch.setattr(stages, "GenerationSampler", refuse)
    monkeypatch.setattr(jobs.UniFork, "generation_loss", refuse)
    s = default_settings("2", steps=2, batch_size=2, und_batch_size=2, eval_n=0, tasks=("und",))
    out = run_stage(s, tmp_path / "und", init=tok_folder)
    a, b = _weights(tok_folder), _weights(out)
    assert all(torch.equal(a[n], b[n]) for n in a if n.startswith(GEN_ONLY))
    assert any(not torch.equal(a[n], b[n]) for n in a if n.startswith("und."))
    with pytest.raises(AssertionError, match="generation side"):  # the guard itself works
        run_stage(default_settings("2", steps=1, batch_size=2, und_batch_size=2, eval_n=0), tmp_path / "both",
                  init=tok_folder)


def test_stage_tasks_validation_and_resume_record():
    with pytest.raises(InputError, match="subset"):
        default_settings("3-und", steps=1, tasks=("gen",))
    with pytest.raises(InputError, match="subset"):
        default_settings("2", steps=1, tasks=())
    assert "tasks" not in default_settings("2", steps=1).record()  # old checkpoints still resume
    assert default_settings("2", steps=1, tasks=("gen",)).record()["tasks"] == ("gen",)
    assert stages.trained_modules("2", ("und",)) == ("embed_tokens", "boi", "eoi", "connector", "trunk", "und",
                                                     "norm", "lm_head")
    assert stages.trained_modules("1", ("gen",)) == ("connector", "boi", "head")


def test_bad_tokenizer_folder_is_a_clear_error(tmp_path, tok_folder):
    def run(tok, *extra):
        return CliRunner().invoke(main, ["ablation", "--tokenizer", str(tok), "--out", str(tmp_path / "o"),
                                         *TINY, *extra])

    r = run(tmp_path / "nowhere")
    assert r.exit_code == 2 and "does not exist" in r.output and "--stage tokenizer" in r.output
    unfinished = tmp_path / "unfinished"
    shutil.copytree(tok_folder, unfinished)
    (unfinished / "done.json").unlink()
    r = run(unfinished)
    assert r.exit_code == 2 and "unfinished stage" in r.output
    other = tmp_path / "other"
    shutil.copytree(tok_folder, other)
    (other / "done.json").write_text(json.dumps({"stage": "start"}))
    r = run(other)
    assert r.exit_code == 2 and "holds stage 'start'" in r.output and "not trained" in r.output
    r = CliRunner().invoke(main, ["ablation", "--tokenizer", str(tok_folder), "--out", str(tmp_path / "o"),
                                  "--preset", "shapes"])
    assert r.exit_code == 2 and "--preset micro" in r.output and "image.codebook_size" in r.output
    assert not (tmp_path / "o").exists()


def test_table_shows_spread_with_two_seeds_and_estimate_favours_experts():
    def result(em, overall):
        return {"caption": {"exact_match": em, "count": 1.0, "color": 1.0, "shape": 1.0, "relation": None},
                "draw": {"overall": overall, "categories": {c: {"accuracy": overall} for c in abl.CATEGORIES}},
                "wall_seconds": 60.0}

    stats = abl.summarise([result(0.5, 0.2), result(0.7, 0.4)])
    assert stats["caption.exact_match"] == pytest.approx({"mean": 0.6, "min": 0.5, "max": 0.7})
    assert stats["caption.relation"] is None
    s = abl.AblationSettings("micro", seeds=(0, 1), cfg_scale=2.0, temperature=0.5, top_p=0.96,
                             **abl.DEFAULTS["micro"]).validate()
    report = {"settings": dataclasses.asdict(s), "variants": {"unifork": {
        "label": "UniFork", "tasks": ["gen", "und"], "shared_layers": 2, "branch_layers": 2,
        "active_parameters": {"gen": 1, "und": 2}, "summary": stats,
        "seeds": {"0": result(0.5, 0.2), "1": result(0.7, 0.4)}}}}
    md = abl.markdown(report)
    assert "0.600 (0.50–0.70)" in md and "mean (min–max)" in md
    est = abl.estimate_seconds(dataclasses.replace(s, preset="shapes", stage2_steps=450, stage1_steps=100))
    assert est["gen_expert"] < est["unifork"] and est["und_expert"] < est["fully_shared"]


def test_a_shipped_checkpoint_is_a_tokenizer_folder(tmp_path):
    """The bundled model's checkpoint carries no done.json: its weights' metadata says it is finished."""
    from unifork_rt.errors import ModelFolderError

    ckpt = Path(BUNDLED) / "checkpoint"
    assert abl.check_tokenizer_folder(ckpt, preset("shapes"))["stage"] == "3-merged"
    with pytest.raises(ModelFolderError, match="--preset shapes"):
        abl.check_tokenizer_folder(ckpt, preset("micro"))
