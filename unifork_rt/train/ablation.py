"""`unifork-rt ablation`: the paper's Table 2 on ShapesWorld, at an equal training budget.

    unifork-rt ablation --tokenizer runs/shapes/tokenizer --out runs/ablation --threads 2

Four models, all from ONE trained image tokenizer (so every model sees the same codes):

    gen expert    preset split (trunk + 2 branches)   generation only     the und branch is never trained
    und expert    preset split                        understanding only  the gen branch + depth head never trained
    fully shared  trunk = all layers, empty branches  both tasks
    UniFork       preset split (the Y)                both tasks

Each runs stage 1 then stage 2 (unifork_rt/train/stages.py) with the same step counts, per-task
batch sizes, learning-rate schedule, data seed and generation prompt mix; an expert's stages
simply have one task (StageSettings.tasks). Stage 3 is left out: it fine-tunes the branches
apart, which the fully shared model has none of. Then each model is scored on ShapesWorld's
held-out split by train/monitor.py (ShapesBench through the runtime, the model as its PyTorch
backend): captions (exact match, per attribute) and drawings (six categories) with the shipped
model's draw settings.

    OUT/plan.json                 the settings and tokenizer a --resume must match
    OUT/<variant>/seed<k>/start   initial weights   .../stage1  .../stage2 (the trained model)
    OUT/<variant>/seed<k>/result.json   its figures (a variant with one is skipped on --resume)
    OUT/ablation.json, OUT/ablation.md

Torch is imported inside the functions that train, so the CLI starts without it.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import click

from unifork_rt.config import ModelConfig
from unifork_rt.config import preset as get_preset
from unifork_rt.data.shapes_world import CATEGORIES
from unifork_rt.errors import InputError, ModelFolderError, require
from unifork_rt.io import atomic_write_text

TASK_NAMES = {"gen": "generation", "und": "understanding"}


@dataclass(frozen=True)
class Variant:
    name: str  # folder and JSON key
    label: str  # table row
    tasks: tuple[str, ...]
    fully_shared: bool  # trunk = every layer (empty branches); else the preset's split

    def config(self, cfg: ModelConfig) -> ModelConfig:
        return cfg.replace(text={"shared_layers": cfg.text.num_layers}) if self.fully_shared else cfg


VARIANTS = (
    Variant("gen_expert", "Gen expert", ("gen",), False),
    Variant("und_expert", "Und expert", ("und",), False),
    Variant("fully_shared", "Fully shared", ("gen", "und"), True),
    Variant("unifork", "UniFork", ("gen", "und"), False),
)

# Defaults per preset. shapes: all four variants x 1 seed in ~32 min on 2 idle cores (see
# STEP_SECONDS); stage 2 is ~1/6 of the shipped recipe's 3200 steps, so figures are lower
# than the shipped model's, but all four get the same budget. micro: seconds, for tests.
DEFAULTS = {
    "shapes": dict(stage1_steps=100, stage2_steps=500, batch_size=32, und_batch_size=32, caption_n=300, draw_n=20),
    "micro": dict(stage1_steps=4, stage2_steps=6, batch_size=8, und_batch_size=8, caption_n=20, draw_n=2),
}
# Seconds per step for each task's share of a step at batch 32 (time scales ~ linearly with
# batch), evaluation seconds per caption / per drawing, and per-variant setup (start weights,
# loading, checkpoints); 2 idle cores, torch 2 threads. shapes: stage 2 with both tasks was
# measured at 1.05 s/step. The rest comes from a 5-step smoke run of every variant (CPU seconds
# with 1 thread on a busy machine: stage 2 gen 0.94, und 0.79, both 1.78; stage 1 und 0.57,
# both 1.36; per caption 0.016, per drawing 0.075), scaled by 1.05 / 1.78; eval rounded up.
STEP_SECONDS = {
    "shapes": {"1": {"gen": 0.46, "und": 0.34}, "2": {"gen": 0.56, "und": 0.47}, "caption": 0.02, "draw": 0.1,
               "setup": 15.0},
    "micro": {"1": {"gen": 0.02, "und": 0.02}, "2": {"gen": 0.03, "und": 0.03}, "caption": 0.002, "draw": 0.01,
              "setup": 1.0},
}
METRICS = {  # (task, key in the report) -> column
    "caption": ("und", ("exact_match", "count", "color", "shape", "relation")),
    "draw": ("gen", ("overall",) + CATEGORIES),
}


@dataclass(frozen=True)
class AblationSettings:
    """Every figure that decides the results; CLI options map one to one onto fields."""

    preset: str
    stage1_steps: int
    stage2_steps: int
    batch_size: int  # generation sequences per step (every variant that trains generation)
    und_batch_size: int  # understanding sequences per step
    seeds: tuple[int, ...]  # each seeds a variant's initial weights and its data streams
    caption_n: int  # held-out scenes captioned
    draw_n: int  # held-out prompts drawn per category (six categories)
    cfg_scale: float
    temperature: float
    top_p: float
    eval_seed: int = 0  # the held-out items and the sampling generator: the same for every model

    def validate(self) -> "AblationSettings":
        if min(self.stage1_steps, self.stage2_steps, self.batch_size, self.und_batch_size,
               self.caption_n, self.draw_n) <= 0:
            raise InputError("steps, batch sizes, --caption-n and --draw-n must be positive")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds) or min(self.seeds) < 0:
            raise InputError(f"--seeds {self.seeds}: give distinct seeds >= 0, e.g. 0,1")
        if self.temperature <= 0 or not 0 < self.top_p <= 1 or self.cfg_scale < 0:
            raise InputError("need --temperature > 0, 0 < --top-p <= 1 and --cfg-scale >= 0")
        return self

    def plan(self) -> dict:
        """What a resumed run must share with the first (more seeds may be added)."""
        d = dataclasses.asdict(self)
        del d["seeds"]
        return d

    def stage(self, variant: Variant, stage: str, seed: int):
        """The StageSettings of one stage of one variant: only `tasks` differs between variants."""
        from unifork_rt.train.recipe import RECIPES
        from unifork_rt.train.stages import TASKS, default_settings

        recipe = RECIPES[self.preset]
        options = next(r.options for r in recipe.stages if r.stage == stage)  # the recipe's mix, null rate
        kept = {k: v for k, v in options.items() if k in ("mix", "null_rate", "save_every")}
        tasks = None if set(variant.tasks) == set(TASKS[stage]) else variant.tasks
        return default_settings(stage, steps=self.stage1_steps if stage == "1" else self.stage2_steps, seed=seed,
                                batch_size=self.batch_size, und_batch_size=self.und_batch_size, eval_n=0,
                                tasks=tasks, **kept)


def estimate_seconds(s: AblationSettings) -> dict[str, float]:
    """Expected seconds per variant for one seed (2 idle cores), from STEP_SECONDS."""
    t = STEP_SECONDS[s.preset]
    scale = {"gen": s.batch_size / 32, "und": s.und_batch_size / 32}
    out = {}
    for v in VARIANTS:
        train = sum(steps * sum(t[stage][k] * scale[k] for k in v.tasks)
                    for stage, steps in (("1", s.stage1_steps), ("2", s.stage2_steps)))
        evals = (s.caption_n * t["caption"] if "und" in v.tasks else 0) + \
                (6 * s.draw_n * t["draw"] if "gen" in v.tasks else 0)
        out[v.name] = train + evals + t["setup"]
    return out


# Stages after which a folder's image tokenizer is trained and frozen: the tokenizer stage, the
# decoder stage (it fine-tunes the decoder only) and every stage after them, which leave it as it is.
FINISHED_TOKENIZER = ("tokenizer", "decoder", "1", "2", "3-gen", "3-und", "3-merged")


def check_tokenizer_folder(path: Path, cfg: ModelConfig) -> dict:
    """What the --tokenizer folder holds (its done.json, or a shipped checkpoint's metadata), after
    checking that its image tokenizer is trained and that it is a model of `cfg`."""
    from unifork_rt.model.checkpoint import CONFIG, TOKENIZER, WEIGHTS

    hint = (f"train one with `unifork-rt train --stage tokenizer --preset {cfg.preset} --out DIR`, or pass a "
            "shipped model's checkpoint folder (e.g. unifork_rt/assets/shapes/checkpoint)")
    if not path.is_dir():
        raise ModelFolderError(f"--tokenizer {path} does not exist: {hint}")
    missing = [n for n in (CONFIG, WEIGHTS, TOKENIZER) if not (path / n).is_file()]
    if missing:
        raise ModelFolderError(f"--tokenizer {path} lacks {', '.join(missing)}: not a model folder; {hint}")
    if (path / "done.json").is_file():
        try:
            done = json.loads((path / "done.json").read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise ModelFolderError(f"--tokenizer {path}: done.json is not valid JSON ({e}); {hint}") from None
    else:  # a shipped model's checkpoint carries no done.json; its stage is in the weights' metadata
        from safetensors import safe_open

        with safe_open(str(path / WEIGHTS), framework="np") as f:
            stage = (f.metadata() or {}).get("stage")
        if stage != "3-merged":
            raise ModelFolderError(f"--tokenizer {path} lacks done.json: an unfinished stage (resume it with "
                                   f"--resume); {hint}")
        done = {"stage": stage, "from": "checkpoint metadata"}
    stage = done.get("stage") if isinstance(done, dict) else None
    if stage not in FINISHED_TOKENIZER:
        raise ModelFolderError(f"--tokenizer {path} holds stage {stage!r}, whose image tokenizer is not trained: pass "
                               "the --out of `unifork-rt train --stage tokenizer` (a recipe's OUT/tokenizer) or a "
                               "later stage's folder")
    have = ModelConfig.load(path / CONFIG).to_dict()
    want = cfg.to_dict()
    diff = sorted(f"{sec}.{k}" for sec in ("text", "image", "head")
                  for k in want[sec].keys() | have[sec].keys() if have[sec].get(k) != want[sec].get(k))
    if diff:
        raise ModelFolderError(f"--tokenizer {path} was trained for another model than preset {cfg.preset!r} "
                               f"(differs in {', '.join(diff)}): pass --preset {have.get('preset')} or {hint}")
    return done


def start_model(tok_dir: Path, cfg: ModelConfig, seed: int):
    """Initial weights of a variant: every task path starts as the same function in every variant.

    One L-layer stack (and the embeddings, connector, depth head) is drawn from `seed`; a
    variant with a trunk of k layers takes layers [0, k) as its trunk and a copy of layers
    [k, L) as EACH branch, as the paper copies the pretrained upper layers into both branches.
    The image tokenizer comes from `tok_dir`."""
    import torch

    from unifork_rt.model.checkpoint import WEIGHTS, load_into, load_state
    from unifork_rt.model.unifork import UniFork

    torch.manual_seed(seed)
    stack = UniFork(cfg.replace(text={"shared_layers": cfg.text.num_layers})).state_dict()
    tokenizer = load_state(tok_dir / WEIGHTS)
    model = UniFork(cfg)
    k = cfg.text.shared_layers
    state = {}
    for name in model.state_dict():
        top, rest = name.split(".", 1) if "." in name else (name, "")
        if top == "image_tokenizer":
            state[name] = tokenizer[name]
        elif top in ("und", "gen"):  # und.layers.j.* <- trunk.layers.(k + j).*
            _, j, tail = rest.split(".", 2)
            state[name] = stack[f"trunk.layers.{k + int(j)}.{tail}"]
        else:
            state[name] = stack[name]
    load_into(model, {n: t.clone() for n, t in state.items()}, f"the ablation start from {tok_dir}")
    return model


def run_variant(s: AblationSettings, v: Variant, seed: int, tok_dir: Path, out: Path, resume: bool) -> dict:
    """Train (stage 1, stage 2) and evaluate one variant for one seed; returns its result."""
    from unifork_rt.model.checkpoint import CONFIG, TOKENIZER, WEIGHTS, save_model
    from unifork_rt.train.stages import DONE, run_stage
    from unifork_rt.train.state import CHECKPOINT

    folder = out / v.name / f"seed{seed}"
    if (folder / "result.json").is_file():
        click.echo(f"[ablation] {v.label}, seed {seed}: finished earlier ({folder / 'result.json'}): skipped")
        return json.loads((folder / "result.json").read_text(encoding="utf-8"))
    began = time.perf_counter()
    cfg = v.config(get_preset(s.preset))
    start = folder / "start"
    if not all((start / n).is_file() for n in (CONFIG, WEIGHTS, TOKENIZER)):
        save_model(start_model(tok_dir, cfg, seed), start, tokenizer=tok_dir / TOKENIZER, metadata={"stage": "start"})
    setup = time.perf_counter() - began
    previous = start
    for stage in ("1", "2"):
        st = s.stage(v, stage, seed)
        here = folder / f"stage{stage}"
        click.echo(f"[ablation] {v.label}, seed {seed}: stage {stage}, {st.steps} steps, "
                   f"{' + '.join(TASK_NAMES[t] for t in st.active_tasks)} -> {here}")
        started = (here / CHECKPOINT).is_file() or (here / DONE).is_file()
        run_stage(st, here, init=previous, resume=resume and started)
        previous = here
    click.echo(f"[ablation] {v.label}, seed {seed}: evaluating")
    t0 = time.perf_counter()
    result = evaluate_variant(s, v, previous)
    stage_seconds = {f"stage{k}": json.loads((folder / f"stage{k}" / DONE).read_text())["wall_seconds"]
                     for k in ("1", "2")}
    result.update(seed=seed, model=str(previous), eval_seconds=round(time.perf_counter() - t0, 3),
                  stage_seconds=stage_seconds, setup_seconds=round(setup, 1))
    result["wall_seconds"] = round(sum(stage_seconds.values()) + result["eval_seconds"] + setup, 3)
    atomic_write_text(folder / "result.json", json.dumps(result, indent=1) + "\n")
    return result


def evaluate_variant(s: AblationSettings, v: Variant, model_dir: Path) -> dict:
    """Held-out figures of the tasks the variant was trained on, and its active parameters."""
    from unifork_rt import params
    from unifork_rt.model.checkpoint import TOKENIZER, load_model
    from unifork_rt.train import monitor
    from unifork_rt.train.tokenizer import load_text_tokenizer

    model, tok = load_model(model_dir), load_text_tokenizer(model_dir / TOKENIZER)
    summary = params.summary(model.cfg, params.count({n: tuple(t.shape) for n, t in model.state_dict().items()}))
    active = {"und": summary["active_understanding"], "gen": summary["active_generation"]}
    out = {"variant": v.name, "tasks": list(v.tasks), "shared_layers": model.cfg.text.shared_layers,
           "branch_layers": model.cfg.text.branch_layers, "active_parameters": {t: active[t] for t in v.tasks}}
    if "und" in v.tasks:
        out["caption"] = monitor.caption_eval(model, tok, s.caption_n, seed=s.eval_seed)
    if "gen" in v.tasks:
        out["draw"] = monitor.draw_eval(model, tok, s.draw_n, seed=s.eval_seed, cfg_scale=s.cfg_scale,
                                         temperature=s.temperature, top_p=s.top_p)
    return out


def metric_values(result: dict) -> dict[str, float | None]:
    """Flat 'caption.exact_match', 'draw.overall', 'draw.colors', ... of one result."""
    out = {}
    for report, (task, keys) in METRICS.items():
        if report in result:
            r = result[report]
            for k in keys:
                out[f"{report}.{k}"] = r["categories"][k]["accuracy"] if k in CATEGORIES else r[k]
    return out


def summarise(results: list[dict]) -> dict[str, dict]:
    """Mean, min and max over seeds of every metric (None where a metric is undefined)."""
    per = [metric_values(r) for r in results]
    out = {}
    for key in per[0]:
        vals = [p[key] for p in per if p[key] is not None]
        out[key] = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals)} if vals else None
    return out


def markdown(report: dict) -> str:
    """The Table-2-shaped markdown of an ablation report."""
    s = report["settings"]
    seeds = s["seeds"]

    def cell(stat: dict | None) -> str:
        if stat is None:
            return "n/a"
        return f"{stat['mean']:.3f}" + (f" ({stat['min']:.2f}–{stat['max']:.2f})" if len(seeds) > 1 else "")

    cap = METRICS["caption"][1]
    drw = METRICS["draw"][1]
    head = (["model", "trunk + branch", "active und", "active gen"] + [f"cap {k}" for k in cap]
            + [f"draw {k}" for k in drw] + ["minutes"])
    lines = [
        f"# Ablation on ShapesWorld (preset {s['preset']}): equal training budget",
        "",
        f"Every model: stage 1 ({s['stage1_steps']} steps) then stage 2 ({s['stage2_steps']} steps), the same lr "
        f"schedule, data seed and prompt mix, {s['batch_size']} generation + {s['und_batch_size']} understanding "
        "sequences per step for each task it trains. Equal budget = equal optimizer steps and equal per-task "
        "batches, so an expert does about half the compute per step of a two-task model. Stage 3 is not part of "
        "the ablation. All start from one image tokenizer and the same initial layers (a branch starts as a copy "
        "of the upper layers). Every task path has the same layers and heads, so active parameters per task "
        "are equal.",
        "",
        f"Held-out: {s['caption_n']} scenes captioned (greedy); {s['draw_n']} prompts per category drawn "
        f"(CFG {s['cfg_scale']:g}, temperature {s['temperature']:g}, top-p {s['top_p']:g}); evaluation seed "
        f"{s['eval_seed']}. Seeds {', '.join(map(str, seeds))}"
        + (": mean (min–max)." if len(seeds) > 1 else "."),
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for name, v in report["variants"].items():
        stats = v["summary"]
        row = [v["label"], f"{v['shared_layers']} + {v['branch_layers']}"]
        row += [f"{v['active_parameters'][t] / 1e6:.2f}M" if t in v["active_parameters"] else "–"
                for t in ("und", "gen")]
        for report_name, (task, keys) in METRICS.items():
            row += [cell(stats[f"{report_name}.{k}"]) if task in v["tasks"] else "–" for k in keys]
        row.append(f"{sum(r['wall_seconds'] for r in v['seeds'].values()) / len(v['seeds']) / 60:.1f}")
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "cap: caption exact match and per-attribute accuracy; draw: overall = mean of the six "
              "category accuracies. –: a task the model was not trained on."]
    return "\n".join(lines)


def run_ablation(s: AblationSettings, tok_dir: Path, out: Path, resume: bool, argv: list[str]) -> dict:
    """Every variant x seed, then OUT/ablation.json and OUT/ablation.md; returns the report."""
    s.validate()
    cfg = get_preset(s.preset)
    done = check_tokenizer_folder(tok_dir, cfg)
    from unifork_rt.model.checkpoint import WEIGHTS
    from unifork_rt.runtime.bundle import sha256_file

    plan = {"settings": s.plan(), "tokenizer": str(tok_dir.resolve()), "tokenizer_sha256": sha256_file(tok_dir / WEIGHTS)}
    plan_path = out / "plan.json"
    if plan_path.is_file():
        if not resume:
            raise InputError(f"{out} holds an ablation already: pass --resume to continue it, or choose a new --out")
        old = json.loads(plan_path.read_text(encoding="utf-8"))
        diff = sorted(k for k in set(old["settings"]) | set(plan["settings"])
                      if old["settings"].get(k) != plan["settings"].get(k))
        diff += [k for k in ("tokenizer", "tokenizer_sha256") if old[k] != plan[k]]
        if diff:
            raise InputError(f"{out} was started with other options (differs in: {', '.join(diff)}); resume with "
                             "the same ones (only --seeds may change), or choose a new --out")
    elif out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty and holds no ablation (plan.json): choose a new --out")
    atomic_write_text(plan_path, json.dumps(plan, indent=1) + "\n")

    estimate = estimate_seconds(s)
    total = sum(estimate.values()) * len(s.seeds)
    click.echo(f"[ablation] {len(VARIANTS)} variants x {len(s.seeds)} seed(s), stage 1 {s.stage1_steps} + stage 2 "
               f"{s.stage2_steps} steps each: about {total / 60:.0f} min on 2 idle cores ("
               + ", ".join(f"{v.label} {estimate[v.name] / 60:.1f}" for v in VARIANTS) + " min per seed)")
    began = time.perf_counter()
    report = {"command": shlex.join(argv), "settings": dataclasses.asdict(s),
              "tokenizer": {"path": plan["tokenizer"], "sha256": plan["tokenizer_sha256"], "done": done},
              "estimate_seconds": estimate, "variants": {}}
    for v in VARIANTS:
        results = {seed: run_variant(s, v, seed, tok_dir, out, resume) for seed in s.seeds}
        first = results[s.seeds[0]]
        report["variants"][v.name] = {
            "label": v.label, "tasks": list(v.tasks), "shared_layers": first["shared_layers"],
            "branch_layers": first["branch_layers"], "active_parameters": first["active_parameters"],
            "summary": summarise(list(results.values())), "seeds": {str(k): r for k, r in results.items()}}
    report["wall_seconds"] = round(time.perf_counter() - began, 1)
    atomic_write_text(out / "ablation.json", json.dumps(report, indent=1) + "\n")
    atomic_write_text(out / "ablation.md", markdown(report) + "\n")
    return report


def _per_preset(key: str) -> str:
    return "[" + ", ".join(f"{p} {d[key]}" for p, d in DEFAULTS.items()) + "]"


def _seeds(ctx, param, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r}: a comma list of integers, e.g. 0,1") from None


def _shipped_sampling() -> dict:
    """The draw settings the bundled ShapesWorld model ships with (manifest 'sampling', then
    DrawSettings' defaults). Its top_k (900) is not passed on: it exceeds the codebooks of the
    presets here, so it keeps every code, as top_k None does in the torch evaluator."""
    from unifork_rt.assets import BUNDLED

    manifest = BUNDLED / "manifest.json"
    sampling = json.loads(manifest.read_text(encoding="utf-8")).get("sampling", {}) if manifest.is_file() else {}
    from unifork_rt.runtime.pipeline import DrawSettings

    return dataclasses.asdict(DrawSettings(**sampling))


@click.command("ablation")
@click.option("--tokenizer", "tok_dir", type=click.Path(path_type=Path), required=True,
              help="A folder with a trained image tokenizer: the --out of `unifork-rt train --stage tokenizer` or "
                   "of any later stage (a recipe's OUT/tokenizer, OUT/decoder), or a shipped checkpoint "
                   "(unifork_rt/assets/shapes/checkpoint). Every model takes its image tokenizer (and nothing "
                   "else) from it, so all see the same image codes.")
@click.option("--out", type=click.Path(path_type=Path), required=True,
              help="Folder for ablation.json, ablation.md and every trained model (OUT/VARIANT/seedK/stage2).")
@click.option("--preset", type=click.Choice(tuple(DEFAULTS)), default="shapes", show_default=True,
              help="Model preset; the step and batch defaults below are per preset.")
@click.option("--seeds", default="0", show_default=True, callback=_seeds,
              help="Comma list: each seed trains every variant once (initial weights + data); with >= 2 the "
                   "table shows mean (min–max).")
@click.option("--stage1-steps", type=int, help=f"Stage 1 (alignment) steps of every variant {_per_preset('stage1_steps')}.")
@click.option("--stage2-steps", type=int, help=f"Stage 2 (joint) steps of every variant {_per_preset('stage2_steps')}.")
@click.option("--batch-size", type=int, help=f"Generation sequences per step {_per_preset('batch_size')}.")
@click.option("--und-batch-size", type=int, help=f"Understanding sequences per step {_per_preset('und_batch_size')}.")
@click.option("--caption-n", type=int, help=f"Held-out scenes to caption {_per_preset('caption_n')}.")
@click.option("--draw-n", type=int, help=f"Held-out prompts per drawing category, six categories {_per_preset('draw_n')}.")
@click.option("--cfg-scale", type=float, help="Drawing guidance (default: the shipped model's, from its manifest).")
@click.option("--temperature", type=float, help="Drawing temperature (default: the shipped model's, from its manifest).")
@click.option("--top-p", type=float, help="Drawing top-p (default: the runtime's, 0.96).")
@click.option("--resume", is_flag=True, help="Continue OUT: skip finished variants (result.json), resume "
              "interrupted stages from their checkpoints. Only --seeds may differ from the first run.")
@click.option("--threads", type=click.IntRange(min=1), help="CPU threads for torch (default: torch's choice).")
def ablation(tok_dir, out, preset, seeds, stage1_steps, stage2_steps, batch_size, und_batch_size, caption_n, draw_n,
             cfg_scale, temperature, top_p, resume, threads):
    """The UniFork paper's Table 2 on ShapesWorld: gen expert, und expert, fully shared, UniFork.

    \b
    Variants (every task path has the preset's num_layers layers and the same heads, so
    active parameters per task are equal):
      gen expert    the preset's split, trained on generation only
      und expert    the preset's split, trained on understanding only
      fully shared  trunk = all layers, no branches; both tasks
      UniFork       the preset's Y (shapes: trunk 3 + branches 3/3); both tasks

    Equal budget: every variant runs stage 1 and stage 2 with the same optimizer steps, the
    same per-task batch sizes, lr schedule, data seed and generation prompt mix (the
    preset's recipe). A two-task model takes a generation AND an understanding batch per
    step, an expert only its own: experts do about half the compute per step. Stage 3 is
    not part of the ablation (the fully shared model has no branches to fine-tune).
    All variants start from one --tokenizer and, per seed, the same initial layers.

    Then each model is scored on ShapesWorld's held-out split in PyTorch: caption exact match
    and per-attribute accuracy; drawing overall and six categories, with the shipped model's
    draw settings. Writes OUT/ablation.json (every figure, per seed, settings, command, wall
    time per model) and OUT/ablation.md; every model folder stays in OUT/VARIANT/seedK.
    An estimate of the wall time is printed first.
    """
    torch = require("torch", "train", "unifork-rt ablation")
    if threads is not None:
        torch.set_num_threads(threads)
    given = dict(stage1_steps=stage1_steps, stage2_steps=stage2_steps, batch_size=batch_size,
                 und_batch_size=und_batch_size, caption_n=caption_n, draw_n=draw_n)
    sampling = _shipped_sampling()
    draw = dict(cfg_scale=sampling["cfg_scale"] if cfg_scale is None else cfg_scale,
                temperature=sampling["temperature"] if temperature is None else temperature,
                top_p=sampling["top_p"] if top_p is None else top_p)
    s = AblationSettings(preset=preset, seeds=seeds, **{**DEFAULTS[preset], **{k: v for k, v in given.items()
                                                                              if v is not None}}, **draw)
    report = run_ablation(s, tok_dir, out, resume, ["unifork-rt", *sys.argv[1:]] if sys.argv else [])
    click.echo(markdown(report))
    click.echo(f"[ablation] wrote {out / 'ablation.json'} and {out / 'ablation.md'} "
               f"({report['wall_seconds'] / 60:.1f} min)")
