"""Click commands for training: `train`, `merge` and `recipe`.

Registered lazily on the main group by unifork_rt/cli.py (LAZY_COMMANDS: imported when one of
them is named). This module imports no torch: the commands import the training code inside
their bodies, after `require("torch", ...)` has said which extra to install if it is missing.

    unifork-rt train --stage tokenizer --preset shapes --steps 700 --out runs/tok
    unifork-rt train --stage decoder --init runs/tok --steps 800 --out runs/dec
    unifork-rt train --stage 1 --init runs/dec --minutes 3 --out runs/s1
    torchrun --nproc_per_node 2 -m unifork_rt.cli train --stage 2 --init runs/s1 --steps 3200 --out runs/s2
    unifork-rt train --stage 3 --init runs/s2 --steps 1000 --out runs/s3      (3-gen + 3-und + merge)
    unifork-rt recipe shapes --out runs/shapes
"""

from __future__ import annotations

from pathlib import Path

import click

from ..cli import FiniteFloat
from ..errors import InputError, require

STAGE_CHOICES = ("tokenizer", "decoder", "1", "2", "3", "3-gen", "3-und")
_PATH = click.Path(path_type=Path)
_FLOAT = FiniteFloat()  # nan / inf refused by click, before anything is made


def _need_torch(what: str, threads: int | None) -> None:
    torch = require("torch", "train", what)
    if threads is not None:
        # On a busy machine fewer threads than cores can be several times faster: idle
        # OpenMP threads spin while they wait for a core that another process holds.
        torch.set_num_threads(threads)


_THREADS = click.option("--threads", type=click.IntRange(min=1),
                        help="CPU threads for torch (default: torch's choice, usually the core count).")


@click.command()
@click.option("--stage", type=click.Choice(STAGE_CHOICES), required=True,
              help="tokenizer (RQ-VAE), decoder (the RQ-VAE's decoder alone, codes frozen), 1 (alignment), "
                   "2 (joint), 3 (3-gen + 3-und + merge), or one half of 3.")
@click.option("--out", type=_PATH, required=True, help="Model folder to write (also holds checkpoint.safetensors).")
@click.option("--init", type=_PATH, help="Model folder to start from (the previous stage's --out).")
@click.option("--preset", help="Start from a fresh preset (micro, shapes, paper): --stage tokenizer only.")
@click.option("--steps", type=int, help="Optimizer steps (for stage 3: of each of the two runs).")
@click.option("--minutes", type=_FLOAT, help="Time budget instead of --steps (stage 3: of each run); the step count is fixed after timing the first steps.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seeds initial weights and every data stream.")
@click.option("--resume", is_flag=True, help="Continue exactly from OUT/checkpoint.safetensors (same options as before).")
@click.option("--batch-size", type=int, help="Images (tokenizer) or generation sequences per process per step.")
@click.option("--und-batch-size", type=int, help="Understanding sequences per process per step.")
@click.option("--lr", type=_FLOAT, help="Peak learning rate (AdamW; linear warmup, cosine decay).")
@click.option("--warmup", type=int, help="Warmup steps.")
@click.option("--weight-decay", type=_FLOAT, help="AdamW weight decay on matrices.")
@click.option("--grad-clip", type=_FLOAT, help="Clip the gradient norm to this.")
@click.option("--save-every", type=int, help="Checkpoint period in steps.")
@click.option("--null-rate", type=_FLOAT, help="Share of generation prompts emptied for classifier-free guidance (default 0.1).")
@click.option("--mix", help="Generation prompt weights, e.g. 'color_attr=3.5,position=3' "
                            "(kinds: single_object two_objects counting colors position color_attr caption).")
@click.option("--data", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="An imagefolder (metadata.jsonl with file_name + text) to train on instead of ShapesWorld.")
@click.option("--bad-rows", type=click.Choice(["skip", "fail"]), default="fail", show_default=True,
              help="What to do with bad rows of --data (each is reported with its line number either way).")
@click.option("--target", type=_FLOAT, help="Tokenizer: stop once this share of held-out reconstructions reads right.")
@click.option("--eval-every", type=int, help="Tokenizer: held-out reconstruction check period in steps.")
@click.option("--uniform-weight", type=_FLOAT,
              help="Tokenizer: weight of the term that gives every uniform (empty) cell one code (default 1.0; 0: off).")
@click.option("--ink-weight", type=_FLOAT,
              help="Tokenizer: extra pixel-loss weight on non-white pixels, for colour fidelity (default 0).")
@click.option("--eval-n", type=int, help="Held-out items for the end-of-stage evaluation (0: skip it).")
@click.option("--task", "tasks", type=click.Choice(["gen", "und"]), multiple=True,
              help="Stages 1 and 2: train only this task (repeatable; default: both). The other task's "
                   "branch, norm and heads stay frozen, as for the single-task experts of `unifork-rt ablation`.")
@_THREADS
def train(stage, out, init, preset, steps, minutes, seed, resume, batch_size, und_batch_size, lr, warmup,
          weight_decay, grad_clip, save_every, null_rate, mix, data, bad_rows, target, eval_every, uniform_weight,
          ink_weight, eval_n, tasks, threads):
    """Train one stage. Works the same under `torchrun --nproc_per_node N -m unifork_rt.cli train ...`."""
    _need_torch("unifork-rt train", threads)
    from .data import parse_mix
    from .stages import default_settings, run_stage, run_stage3

    given = {k: v for k, v in dict(
        steps=steps, minutes=minutes, batch_size=batch_size, und_batch_size=und_batch_size, lr=lr, warmup=warmup,
        weight_decay=weight_decay, grad_clip=grad_clip, save_every=save_every, null_rate=null_rate,
        target=target, eval_every=eval_every, uniform_weight=uniform_weight, ink_weight=ink_weight,
        eval_n=eval_n).items() if v is not None}
    if mix is not None:
        try:
            given["mix"] = tuple(parse_mix(mix).items())
        except ValueError as e:
            raise InputError(str(e)) from None
    if data is not None:
        given["data"] = str(data)
    given.update(seed=seed, bad_rows=bad_rows)
    if tasks:
        if stage not in ("1", "2"):
            raise InputError(f"--task restricts stage 1 or 2; stage {stage} trains a fixed set of tasks")
        given["tasks"] = tuple(dict.fromkeys(tasks))
    if stage == "3":
        if init is None or preset is not None:
            raise InputError("--stage 3 starts from the stage 2 folder: pass --init (and no --preset)")
        folder = run_stage3(default_settings("3-gen", **given), default_settings("3-und", **given), init, out, resume)
    else:
        folder = run_stage(default_settings(stage, **given), out, init=init, preset=preset, resume=resume)
    click.echo(f"wrote {folder}")


@click.command()
@click.option("--base", type=_PATH, required=True, help="The stage 2 folder both stage 3 runs started from.")
@click.option("--gen", type=_PATH, required=True, help="The stage 3-gen folder.")
@click.option("--und", type=_PATH, required=True, help="The stage 3-und folder.")
@click.option("--out", type=_PATH, required=True, help="Model folder to write.")
def merge(base, gen, und, out):
    """Merge two stage 3 runs into one model (they must touch disjoint tensors)."""
    _need_torch("unifork-rt merge", None)
    from .stages import merge_stage3

    click.echo(f"wrote {merge_stage3(base, gen, und, out)}")


@click.command()
@click.argument("name", type=click.Choice(["shapes", "micro"]))
@click.option("--out", type=_PATH, required=True, help="Run folder; the result is OUT/model.")
@click.option("--minutes", type=_FLOAT, help="Total time budget, shared out over the stages (default: the recipe's step counts).")
@click.option("--scale", type=_FLOAT, default=1.0, show_default=True, help="Multiply every stage's step count.")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Skip finished stages and continue the interrupted one.")
@_THREADS
def recipe(name, out, minutes, scale, seed, resume, threads):
    """Reproduce a shipped model: tokenizer -> stage 1 -> 2 -> 3 (+ merge) into OUT/model."""
    _need_torch("unifork-rt recipe", threads)
    from .recipe import get_recipe, run_recipe

    if minutes is not None and scale != 1.0:
        raise click.UsageError("give --minutes or --scale, not both")
    click.echo(f"wrote {run_recipe(get_recipe(name), out, minutes, seed, scale, resume)}")


COMMANDS = (train, merge, recipe)
