"""Recipes: the whole pipeline, tokenizer -> decoder -> stage 1 -> 2 -> 3 (+ merge), as one command.

    OUT/tokenizer  OUT/decoder  OUT/stage1  OUT/stage2  OUT/stage3/{gen,und}  ->  OUT/model (merged)

Each step is an ordinary stage run, so the recipe is resumable as a whole: finished stages
(done.json) are skipped and an interrupted one continues from its checkpoint with --resume.
Step counts are sized for 2 CPU cores (timings in docs/TRAINING.md); `minutes` instead
gives each stage its share of a total time budget.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import InputError
from ..model.checkpoint import CONFIG, TOKENIZER, WEIGHTS
from . import dist as dist_mod
from .stages import DONE, StageSettings, default_settings, merge_stage3_once, run_stage
from .state import CHECKPOINT


@dataclass(frozen=True)
class RecipeStage:
    folder: str  # under OUT
    stage: str
    start: str | None  # the folder (under OUT) it starts from; None: the recipe's preset
    steps: int
    share: float  # of a --minutes budget
    options: dict = field(default_factory=dict)  # StageSettings fields beyond the stage defaults
    fixed: bool = False  # runs its step count even under --minutes, and is left out of the budget


@dataclass(frozen=True)
class Recipe:
    preset: str
    stages: tuple[RecipeStage, ...]
    note: str
    final_eval_n: int = 300  # held-out captions for OUT/eval.json (drawing: n/15 per category); 0: none


# shapes: ~95 min on 2 idle cores (docs/TRAINING.md has the step times). The tokenizer stops
# as soon as 300 held-out validation reconstructions all read right (the calibration
# prototype got there in ~1000 steps of 64). Stage 2 gets most of the time: the calibration
# run's loss was still falling at 38 min. Generation prompts lean on color_attr and
# position, the categories that stayed weakest, and 20 % are null prompts for guidance.
_GEN_MIX = (("single_object", 1.0), ("two_objects", 1.5), ("counting", 1.5), ("colors", 1.0),
            ("position", 3.0), ("color_attr", 3.5), ("caption", 1.5))
SHAPES = Recipe("shapes", (
    RecipeStage("tokenizer", "tokenizer", None, 1200, 0.25,
                dict(batch_size=64, lr=1e-3, warmup=50, eval_every=100, target=1.0, save_every=100, ink_weight=4.0)),
    # The decoder alone, on the frozen codes: it learns to draw every code's object as the
    # canonical rendering, whichever rasterizer the input came from. The later stages read
    # only codes, so its place in the order changes none of their weights.
    RecipeStage("decoder", "decoder", "tokenizer", 800, 0.0,
                dict(batch_size=64, lr=5e-4, warmup=20, eval_every=200, save_every=200, ink_weight=4.0), fixed=True),
    RecipeStage("stage1", "1", "decoder", 150, 0.03, dict(eval_n=0, save_every=100)),
    RecipeStage("stage2", "2", "stage1", 3200, 0.57, dict(mix=_GEN_MIX, null_rate=0.2, save_every=200)),
    RecipeStage("stage3/gen", "3-gen", "stage2", 1000, 0.12, dict(mix=_GEN_MIX, null_rate=0.2, save_every=200, eval_n=0)),
    RecipeStage("stage3/und", "3-und", "stage2", 300, 0.03, dict(save_every=100, eval_n=0)),
), note="tokenizer -> stage 1 -> 2 -> 3 for the shipped ShapesWorld model")

# micro: seconds, for tests and smoke runs of the whole pipeline.
MICRO = Recipe("micro", (
    RecipeStage("tokenizer", "tokenizer", None, 10, 0.2, dict(batch_size=16, eval_every=0, eval_n=0)),
    RecipeStage("decoder", "decoder", "tokenizer", 3, 0.0, dict(batch_size=8, eval_every=0, eval_n=0), fixed=True),
    RecipeStage("stage1", "1", "decoder", 4, 0.1, dict(batch_size=8, und_batch_size=8, eval_n=0)),
    RecipeStage("stage2", "2", "stage1", 6, 0.4, dict(batch_size=8, und_batch_size=8, eval_n=0)),
    RecipeStage("stage3/gen", "3-gen", "stage2", 4, 0.2, dict(batch_size=8, eval_n=0)),
    RecipeStage("stage3/und", "3-und", "stage2", 4, 0.1, dict(und_batch_size=8, eval_n=0)),
), note="the whole pipeline in seconds (untrained quality)", final_eval_n=0)

RECIPES: dict[str, Recipe] = {"shapes": SHAPES, "micro": MICRO}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name]
    except KeyError:
        raise InputError(f"unknown recipe {name!r}; valid: {', '.join(RECIPES)}") from None


def stage_settings(recipe: Recipe, i: int, seed: int, scale: float = 1.0, minutes: float | None = None) -> StageSettings:
    """Settings of stage i: the recipe's step count (times `scale`), or a time budget."""
    r = recipe.stages[i]
    budget = dict(minutes=minutes) if minutes is not None and not r.fixed else dict(steps=max(1, round(r.steps * scale)))
    return default_settings(r.stage, seed=seed, **r.options, **budget)


def _spent_minutes(out: Path, recipe: Recipe, upto: int) -> float:
    """Wall minutes the finished stages before `upto` took, from their done.json."""
    total = 0.0
    for r in recipe.stages[:upto]:
        if r.fixed:
            continue
        done = json.loads((out / r.folder / DONE).read_text(encoding="utf-8"))
        total += done.get("wall_seconds", done.get("seconds", 0.0)) / 60
    return total


def budget_minutes(recipe: Recipe, i: int, total: float, spent: float) -> float:
    """Stage i's share of what is left of `total` after `spent` minutes.

    Time a stage leaves unused (the tokenizer stopping early at its target) or overspends
    (a busy machine) moves the later stages' budgets. It depends only on the done.json of
    finished stages, so a resumed recipe computes the same budget for the stage it resumes."""
    if recipe.stages[i].fixed:
        raise ValueError(f"recipe stage {recipe.stages[i].folder} runs a fixed step count: it has no budget")
    left = max(total - spent, 0.0)
    rest = sum(r.share for r in recipe.stages[i:] if not r.fixed)
    return max(round(left * recipe.stages[i].share / rest, 3), 0.05)  # >= 3 s: a stage still runs its timed steps


def run_recipe(recipe: Recipe, out: Path, minutes: float | None = None, seed: int = 0, scale: float = 1.0,
               resume: bool = False) -> Path:
    """Run every stage into OUT/...; returns OUT/model, the merged model folder."""
    out = Path(out)
    if minutes is not None and not (math.isfinite(minutes) and minutes > 0):
        raise InputError(f"--minutes {minutes} must be a positive number")
    if not (math.isfinite(scale) and scale > 0):
        raise InputError(f"--scale {scale} must be a positive number (it multiplies every stage's step count)")
    if not resume and out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty: pass --resume to continue the recipe there, or choose a new --out")

    def started(folder: str) -> bool:
        return (out / folder / CHECKPOINT).is_file() or (out / folder / DONE).is_file()

    def settings(i: int) -> StageSettings:
        budget = None if minutes is None or recipe.stages[i].fixed else \
            budget_minutes(recipe, i, minutes, _spent_minutes(out, recipe, i))
        return stage_settings(recipe, i, seed, scale, budget)

    dist = dist_mod.setup()
    for i, r in enumerate(recipe.stages):
        start = dict(preset=recipe.preset) if r.start is None else dict(init=out / r.start)
        run_stage(settings(i), out / r.folder, resume=resume and started(r.folder), **start)
    merge_stage3_once(out / "stage2", out / "stage3/gen", out / "stage3/und", out / "stage3", resume)
    final = out / "model"
    if dist.is_main:  # the shipped folder: exactly what load_model and the exporter read
        final.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, WEIGHTS, TOKENIZER, DONE):
            shutil.copyfile(out / "stage3" / name, final / name)
        if recipe.final_eval_n and not (out / "eval.json").is_file():
            _final_eval(final, out / "eval.json", recipe.final_eval_n)
    dist.barrier()
    return final


def _final_eval(model_dir: Path, path: Path, n: int) -> None:
    """Held-out caption and drawing figures of the merged model, beside it in OUT/eval.json."""
    from ..io import atomic_write_text
    from ..model.checkpoint import load_model
    from . import monitor
    from .tokenizer import load_text_tokenizer

    model, tok = load_model(model_dir), load_text_tokenizer(model_dir / TOKENIZER)
    report = {"caption": monitor.caption_eval(model, tok, n),
              "draw": {f"cfg_{s:g}": monitor.draw_eval(model, tok, max(1, n // 15), cfg_scale=s) for s in (1.5, 2.0)}}
    atomic_write_text(path, json.dumps(report, indent=2) + "\n")
    print(f"held-out: caption exact match {report['caption']['exact_match']:.3f}; drawing overall "
          + ", ".join(f"{k} {v['overall']:.3f}" for k, v in report["draw"].items()), flush=True)
