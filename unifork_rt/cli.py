"""The `unifork-rt` command line.

Runtime commands (caption, draw, eval, info) need no torch; model commands (init, train, export,
align) import it lazily and say which extra to install when it is missing. A user error
(`UniforkError`) prints one line and exits with status 2, without a traceback.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import math
import os
import signal
import stat
import sys
from pathlib import Path

import click

from . import interrupt
from .errors import UniforkError
from .runtime.limits import MAX_SEQ  # numbers only: the runtime's bounds on a bundle

# ctx.meta keys: set by run() for a whole process (not under CliRunner), and once a command has
# delivered everything it was asked for (an interrupt after that changes nothing: exit 0)
PROCESS, DELIVERED, SIGINTS = "unifork.process", "unifork.delivered", "unifork.sigints"
_handler: interrupt.Handler | None = None  # the process's SIGINT handler, once run() installed it


class FiniteFloat(click.FloatRange):
    """click.FloatRange that also refuses nan and inf: a range alone lets nan through (every
    comparison with nan is false), and an option such as --lr nan would then train NaN weights."""

    name = "float"

    def convert(self, value, param, ctx):
        rv = super().convert(value, param, ctx)
        if not math.isfinite(rv):
            self.fail(f"{rv} is not a finite number", param, ctx)
        return rv


class OutputError(UniforkError):
    """Standard output could not be written (a closed pipe, a full disk, closed)."""


# Commands defined beside the code they drive, imported only when named (or listed by --help):
# `unifork-rt caption` does not import the benchmarks, the trainer or Triton's client.
LAZY_COMMANDS = {
    "train": "unifork_rt.train.cli:train",
    "merge": "unifork_rt.train.cli:merge",
    "recipe": "unifork_rt.train.cli:recipe",
    "ablation": "unifork_rt.train.ablation:ablation",
    "bench": "unifork_rt.benchmarks.cli:bench",
    "serve": "unifork_rt.serve.cli:serve",
    "repo": "unifork_rt.serve.cli:repo",
}


class _Group(click.Group):
    def list_commands(self, ctx):
        return sorted({*super().list_commands(ctx), *LAZY_COMMANDS})

    def get_command(self, ctx, name):
        if name in LAZY_COMMANDS and name not in self.commands:
            import importlib

            module, attr = LAZY_COMMANDS[name].split(":")
            self.add_command(getattr(importlib.import_module(module), attr), name)
        return super().get_command(ctx, name)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except UniforkError as e:
            if ctx.meta.get(SIGINTS) and not ctx.meta.get(DELIVERED):
                raise KeyboardInterrupt from None  # a library turned the Ctrl-C into an error of its own
            _quiet_stdout_if(isinstance(e, OutputError))
            _echo_err(f"error: {e}")
            sys.exit(2)
        except KeyboardInterrupt:
            if ctx.meta.get(PROCESS):
                _ignore_sigint()  # the process is ending: a second Ctrl-C must not turn this into a traceback
            if ctx.meta.get(DELIVERED):
                sys.exit(0)
            _echo_err("interrupted")
            sys.exit(interrupted_status(ctx.meta.get(SIGINTS)))


def run(argv: list[str]) -> int:
    """The `unifork-rt` process: the exit status tells the truth whatever moment SIGINT comes.

    0: everything asked for was delivered; 130 (Ctrl-C) or 143 (SIGTERM): interrupted, no output of
    it committed; 2: a user error (one line); 1: click's own aborts.
    """
    global _handler
    handler = interrupt.Handler()
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        _handler = handler.install()
        # SIGTERM (`timeout`, `kill`, a job scheduler) ends the command as Ctrl-C does: temporary
        # files and folders are removed on the way out, nothing half-written stays behind
        signal.signal(signal.SIGTERM, handler._on_sigint)
    sigints = handler.received
    ctx = None
    try:
        try:
            ctx = main.make_context("unifork-rt", list(argv))
            ctx.meta[PROCESS], ctx.meta[SIGINTS] = True, sigints
            with ctx:
                main.invoke(ctx)
            code = 0
        except click.exceptions.Exit as e:
            code = e.exit_code
        except click.ClickException as e:
            e.show()
            code = e.exit_code
        except click.Abort:
            _echo_err("Aborted!")
            code = 1
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except Exception:
            if not sigints:
                raise
            raise KeyboardInterrupt from None  # an error raised by the interrupt itself, inside a library
        _ignore_sigint()
        return code
    except KeyboardInterrupt:
        _ignore_sigint()
        if ctx is not None and ctx.meta.get(DELIVERED):
            return 0
        _echo_err("interrupted")
        return interrupted_status(sigints)


def interrupted_status(signals) -> int:
    """128 + the first signal that stopped the command, the shells' convention: 130 for Ctrl-C (SIGINT),
    143 for SIGTERM; 130 where none was recorded (a KeyboardInterrupt raised by other means)."""
    return 128 + (int(signals[0]) if signals else signal.SIGINT)


def _ignore_sigint() -> None:
    with contextlib.suppress(ValueError):  # only the main thread may set handlers
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if _handler is not None:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)  # run() made it a second Ctrl-C: likewise decided now
            _handler.cancel()  # the outcome is decided: a held interrupt changes nothing now


@contextlib.contextmanager
def _uninterrupted():
    """Commit outputs with SIGINT held off: the files are then all written, and the exit status says so."""
    if _handler is not None:
        _handler.raise_if_held()  # a Ctrl-C held through an import: nothing is committed yet
    try:
        old = signal.signal(signal.SIGINT, signal.SIG_IGN)
        old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN) if _handler is not None else None
    except ValueError:  # not the main thread: no signals arrive here anyway
        old = old_term = None
    try:
        yield
    finally:
        ctx = click.get_current_context(silent=True)
        if old is not None and not (ctx is not None and ctx.meta.get(PROCESS)):
            signal.signal(signal.SIGINT, old)  # under a test runner; a real process is ending anyway
            if old_term is not None:
                signal.signal(signal.SIGTERM, old_term)


def _echo_err(text: str) -> None:
    with contextlib.suppress(OSError, ValueError):
        click.echo(text, err=True)


def say(text: str = "", nl: bool = True) -> None:
    """Print a result on stdout; a closed pipe, a full disk or a closed stdout is one clear error."""
    if sys.stdout is None:
        raise OutputError("standard output is closed: nothing could be printed; run without closing stdout "
                          "(e.g. redirect it to a file)")
    try:
        click.echo(text, nl=nl)
    except OSError as e:
        why = {errno.EPIPE: "the reader closed the pipe", errno.ENOSPC: "the disk is full"}.get(
            e.errno, e.strerror or str(e))
        raise OutputError(f"cannot write to standard output: {why}") from None


def _require_stdout() -> None:
    if sys.stdout is None:
        raise OutputError("standard output is closed: results could not be printed; run without closing stdout "
                          "(e.g. redirect it to a file)")


def _quiet_stdout_if(failed: bool) -> None:
    """After a failed write to stdout, point it at /dev/null so the interpreter's final flush
    does not print a second error (and a traceback) on exit."""
    if not failed:
        return
    with contextlib.suppress(OSError, ValueError, AttributeError, io.UnsupportedOperation):
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.stdout.fileno())
        os.close(fd)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="unifork-rt")
def main():
    """unifork-rt: run, train, export and benchmark Y-shaped UniFork models.

    \b
    Quick start with the bundled ShapesWorld model (no torch needed):
      unifork-rt draw "a red circle left of a blue square" -o out.png
      unifork-rt caption out.png
    """


@main.command()
@click.argument("model_dir", required=False, type=click.Path(path_type=Path))
@click.option("--preset", help="Count a preset's parameters instead of a model folder's (micro, shapes, paper, "
              "official).")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
def info(model_dir, preset, as_json):
    """Parameter counts per component and active parameters per task.

    Give a MODEL_DIR (config.json + model.safetensors) or --preset NAME. A model with the
    official SigLIP tower (--preset official, or a converted checkpoint) also gets the counts of
    the checkpoint the official code saves, group by group.
    """
    from . import params
    from .config import ModelConfig
    from .config import preset as get_preset

    if (model_dir is None) == (preset is None):
        raise click.UsageError("give either MODEL_DIR or --preset NAME")
    if preset is not None:
        cfg = get_preset(preset)
        shapes, title = params.preset_shapes(cfg), f"preset {preset}"
    else:
        cfg = ModelConfig.load(model_dir / "config.json")
        shapes, title = params.safetensors_shapes(model_dir / "model.safetensors"), str(model_dir)
    s = params.summary(cfg, params.count(shapes))
    if cfg.tower is not None:
        s["official_checkpoint"] = params.official_components(cfg)
    text = params.format_summary(cfg, s, title) + (params.format_official(cfg) if cfg.tower is not None else "")
    click.echo(json.dumps(s, indent=2) if as_json else text)


@main.command()
@click.option("--from-qwen", "qwen_dir", required=True, type=click.Path(path_type=Path),
              help="A local Hugging Face Qwen2/Qwen2.5 folder (config.json, *.safetensors, tokenizer.json).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The UniFork model folder to write.")
@click.option("--shared-layers", type=int, default=None,
              help="Trunk depth N: layers [0, N) are shared, [N, L) are copied into both branches. Default L/2.")
@click.option("--image-preset", default="paper", show_default=True,
              help="Preset whose image tokenizer and depth head are freshly initialised (micro, shapes, paper).")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the new components.")
def init(qwen_dir, out, shared_layers, image_preset, seed):
    """Build a UniFork checkpoint from a local Qwen2 folder (no download)."""
    from .config import preset as get_preset
    from .errors import require

    require("torch", "train", "unifork-rt init")
    from .model.qwen import init_from_qwen

    p = get_preset(image_preset)
    folder = init_from_qwen(qwen_dir, out, shared_layers, image=p.image, head=p.head, seed=seed)
    click.echo(f"wrote {folder}")


@main.command()
@click.option("--from-unifork", "ckpt_dir", required=True, type=click.Path(path_type=Path),
              help="A checkpoint folder saved by the official UniFork trainer (config.json, model.safetensors or "
                   "an index with shards, the slow tokenizer's vocab.json/merges.txt).")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The UniFork model folder to write.")
@click.option("--vision-tower", type=click.Path(path_type=Path), default=None,
              help="A VILA-U vision tower folder (rqvaesiglip.* keys): its SigLIP encoder, post-quant conv and "
                   "decoder are used. Default: those saved in the checkpoint. The depth head and codebook always "
                   "come from the checkpoint.")
@click.option("--image-size", type=int, default=None,
              help="Input images in px (the checkpoint does not store it). Default: 24 cells x the patch size "
                   "(384 for SigLIP's 16 px patches), as the official preprocessing.")
@click.option("--siglip-heads", type=int, default=None,
              help="SigLIP attention heads (not stored in the checkpoint). Default: width / 64, as SigLIP-large.")
@click.option("--head-heads", type=int, default=None,
              help="Depth-head attention heads (not stored). Default: attention width / 112, as the released head.")
def convert(ckpt_dir, out, vision_tower, image_size, siglip_heads, head_heads):
    """Convert an official UniFork checkpoint (tliby/UniFork) into a model folder (see docs/OFFICIAL.md).

    Writes config.json, model.safetensors, tokenizer.json and prompting.json (the official prompt
    templates, negative prompt, image padding and sampling, which `unifork-rt export` puts in the bundle).
    """
    from .errors import require

    require("torch", "train", "unifork-rt convert")
    from .model.official import convert_to_folder

    folder = convert_to_folder(ckpt_dir, out, vision_tower, image_size, siglip_heads, head_heads)
    click.echo(f"wrote {folder}")


MAX_EVAL_N = 100_000  # held-out items: far more than a score needs; the scenes are all made up front
MAX_EVAL_DRAW_N = 10_000  # eval draw keeps every drawing (six categories) for the contact sheet


def _model_option(f):
    return click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
                        help="An exported graph bundle (from `unifork-rt export`). Default: the bundled "
                             "ShapesWorld model.")(f)


def _backend_option(f):
    from .runtime.backend import BACKENDS, DEFAULT_BACKEND

    f = click.option("--engines", "engines_dir", type=click.Path(path_type=Path), default=None,
                     help="--backend tensorrt: the engines folder from `unifork-rt build` (default: BUNDLE/engines).")(f)
    return click.option("--backend", default=DEFAULT_BACKEND, show_default=True,
                        help=f"Execution backend: {', '.join(BACKENDS)}.")(f)


def _runtime(model_dir, backend: str, engines_dir):
    from .runtime.pipeline import UniForkRuntime

    if engines_dir is not None and backend != "tensorrt":
        raise click.BadParameter("only --backend tensorrt uses engines", param_hint="--engines")
    options = {"engines_dir": engines_dir} if engines_dir is not None else {}
    ctx = click.get_current_context(silent=True)
    if backend == "ort-cpu" and ctx is not None and ctx.meta.get(PROCESS):
        # the `unifork-rt` process makes all its sessions through the backend: they can share one
        # intra-op pool (runtime/ort_backend.py, POOL_ENV); not under a test runner's shared process
        options["pool"] = "shared"
    return UniForkRuntime(model_dir, backend=backend, **options)


@main.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@_model_option
@click.option("--prompt", default=None, help="Instruction placed after the image. Default: the model's caption prompt.")
@click.option("--max-new-tokens", type=int, default=32, show_default=True, help="Stop after this many tokens.")
@click.option("--temperature", type=float, default=0.0, show_default=True, help="0 = greedy.")
@click.option("--top-k", type=int, default=0, show_default=True, help="Sample from the k likeliest tokens (0 = off).")
@click.option("--top-p", type=float, default=1.0, show_default=True, help="Nucleus sampling mass (1 = off).")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same caption.")
@_backend_option
@click.option("--json", "as_json", is_flag=True, help="One JSON object per image: image, caption.")
def caption(images, model_dir, prompt, max_new_tokens, temperature, top_k, top_p, seed, backend, engines_dir,
            as_json):
    """Caption IMAGES, one line per image (streamed token by token for a single image)."""
    from .config import CAPTION_PROMPT
    from .runtime import limits

    if prompt is not None and not prompt.strip():
        raise click.BadParameter("the prompt is empty: leave --prompt out for the model's caption prompt, or say "
                                 "what to describe", param_hint="--prompt")
    _require_stdout()
    limits.seed(seed)
    with _runtime(model_dir, backend, engines_dir) as rt:
        _say_providers(rt, backend)
        kw = dict(prompt=CAPTION_PROMPT if prompt is None else prompt, max_new_tokens=max_new_tokens,
                  temperature=temperature, top_k=top_k, top_p=top_p, seed=seed)
        for path in images:  # one image at a time: a bad file fails before any output for it
            if as_json:
                say(json.dumps({"image": str(path), "caption": rt.caption([path], **kw)[0]}))
                continue
            ids, shown = [], ""
            for tok in rt.caption_stream([path], **kw):
                if tok[0] == rt.cfg.eos_token_id:
                    break
                ids.append(int(tok[0]))
                text = rt.tokenizer.decode(ids, skip_special_tokens=True)
                say(text[len(shown):].lstrip() if not shown else text[len(shown):], nl=False)
                shown = text
            say()
        click.get_current_context().meta[DELIVERED] = True


@main.command()
@click.argument("prompts", nargs=-1, required=True)
@_model_option
@click.option("-o", "--out", type=click.Path(path_type=Path), default=None,
              help="PNG path. With several images, _0, _1, ... are added before .png. "
                   "Default: the prompt's words joined by '_' in the current folder.")
@click.option("--n", "n", type=int, default=1, show_default=True, help="Images per prompt.")
@click.option("--cfg-scale", type=float, default=None, help="Classifier-free guidance scale (1 = none). "
              "Default: the model's recommended value.")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (0 = greedy).")
@click.option("--top-k", type=int, default=None, help="Sample from the k likeliest codes (0 = off).")
@click.option("--top-p", type=float, default=None, help="Nucleus sampling mass (1 = off).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Same seed, same image (0 to 2^63-1; prompt i uses seed + i).")
@click.option("--overwrite", is_flag=True, help="Replace existing files among the names draw chooses itself "
              "(default names, and the _0, _1, ... names derived from -o). A single -o PATH is always replaced.")
@_backend_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def draw(prompts, model_dir, out, n, cfg_scale, temperature, top_k, top_p, seed, overwrite, backend, engines_dir,
         quiet):
    """Draw an image for each PROMPT; writes PNGs and prints their paths.

    All images are written, or none: they are drawn first, then committed together.
    """
    from .io import atomic_paths
    from .runtime import limits
    from .runtime.images import png_bytes
    from .runtime.pipeline import DrawSettings

    if n < 1:
        raise click.BadParameter(f"{n}: the number of images must be >= 1", param_hint="--n")
    if out is not None and out.suffix.lower() != ".png":
        if out.name.lower() == ".png":  # Path(".png").suffix is "": a name that is only the suffix
            raise click.BadParameter(f"{out}: the file has no name before .png; name it, e.g. "
                                     f"{out.with_name('image.png')}", param_hint="-o")
        raise click.BadParameter(f"{out}: images are written as PNG; use a path ending in .png", param_hint="-o")
    for p in prompts:
        if not p.strip():
            raise click.BadParameter("a prompt is empty: say what to draw, e.g. \"a red circle\"",
                                     param_hint="PROMPTS")
    _require_stdout()
    limits.seed(seed)
    with _runtime(model_dir, backend, engines_dir) as rt:
        _say_providers(rt, backend)
        settings = DrawSettings.for_bundle(rt.bundle, cfg_scale=cfg_scale, temperature=temperature, top_k=top_k,
                                           top_p=top_p)
        for prompt in prompts:  # every prompt and --n are checked before the first is drawn
            rt.check_n(n, settings, len(rt.draw_prompt_ids(prompt)))
        targets = _png_paths(out, prompts, n)  # only now: --n is known to fit in memory
        _check_targets(targets, overwrite)  # before the draw: a bad name must not cost a whole draw
        images = []
        for i, prompt in enumerate(prompts):
            images.extend(rt.draw([prompt], n=n, seed=limits.seed_for(seed, i), progress=not quiet,
                                  **vars_of(settings)))
        data = [png_bytes(img) for img in images]
        # from here on, SIGINT waits: the images are all committed and their paths printed, or none written
        with _uninterrupted():
            with atomic_paths([p for p, _ in targets], overwrite=[named or overwrite for _, named in targets]) as tmps:
                for tmp, blob in zip(tmps, data):
                    tmp.write_bytes(blob)
            try:
                for path, _ in targets:
                    say(str(path))
            except OutputError as e:
                raise OutputError(f"{e} (the {len(targets)} image(s) were written)") from None
            click.get_current_context().meta[DELIVERED] = True


def _say_providers(rt, backend: str) -> None:
    """GPU backends can fall back silently inside ONNX Runtime: say what actually runs."""
    from .runtime.backend import DEFAULT_BACKEND

    if backend != DEFAULT_BACKEND:
        click.echo(f"backend {backend}: running on {', '.join(rt.providers)}", err=True)


def vars_of(settings) -> dict:
    import dataclasses

    return dataclasses.asdict(settings)


def _png_paths(out: Path | None, prompts, n: int) -> list[tuple[Path, bool]]:
    """(path, named by the user) per image, in order. Only a single -o PATH is named by the user;
    PATH_0, PATH_1, ... and the default names are chosen by draw."""
    total = len(prompts) * n
    if out is not None:
        return [(out, True)] if total == 1 else [(out.with_name(f"{out.stem}_{k}{out.suffix}"), False)
                                                 for k in range(total)]
    names, seen = [], {}
    for prompt in prompts:
        slug = "_".join("".join(c for c in w if c.isalnum()) for w in prompt.lower().split())[:60].strip("_")
        for j in range(n):
            stem = (slug or "image") + ("" if n == 1 else f"_{j}")
            seen[stem] = seen.get(stem, 0) + 1  # 'a red circle' and 'A red circle!' share a slug: number repeats
            names.append((Path(f"{stem}.png" if seen[stem] == 1 else f"{stem}-{seen[stem]}.png"), False))
    return names


def _check_targets(targets: list[tuple[Path, bool]], overwrite: bool) -> None:
    """Refuse, before any work, names that cannot be written or files that must not be replaced."""
    from .io import path_problem, shown

    for path, named in targets:
        try:
            _check_target(path, named, overwrite)
        except OSError as e:  # probing itself failed: a name too long, a folder on the way that cannot be searched
            raise UniforkError(f"cannot write {shown(path)}: {path_problem(e)}") from None


def _check_target(path: Path, named: bool, overwrite: bool) -> None:
    """One target of _check_targets; may raise OSError where a path cannot even be looked at."""
    parent = path.parent if str(path.parent) else Path(".")
    existing = next((a for a in (parent, *parent.parents) if a.exists()), Path("."))
    try:
        limit = os.pathconf(existing, "PC_NAME_MAX")
    except (OSError, ValueError):
        limit = 255
    size = len(os.fsencode(path.name))
    if size > limit:
        raise UniforkError(f"cannot write {str(path)[:60]}…: the file name is {size} bytes and this file system "
                           f"allows {limit}; choose a shorter -o name")
    if existing != parent and not existing.is_dir() or parent.exists() and not parent.is_dir():
        raise UniforkError(f"cannot write {path}: {existing} is not a folder")
    if os.path.lexists(path):
        if path.is_dir() and not path.is_symlink():
            raise UniforkError(f"cannot write {path}: it is a folder")
        if not (path.is_file() or path.is_symlink()):
            raise UniforkError(f"cannot write {path}: it exists and is not a regular file")
        if not (named or overwrite):
            raise UniforkError(f"{path} already exists and draw would replace it: remove it, choose another "
                               "-o name, or pass --overwrite")


@main.command()
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Bundle folder to write. Default: MODEL_DIR/onnx.")
@click.option("--max-seq", type=click.IntRange(1, MAX_SEQ), default=None,
              help="KV buffer length (prompt + image + answer). Default: the config's max_seq_len.")
@click.option("--precision", type=click.Choice(["fp32", "fp16", "int4", "int8", "int8-dynamic"]), default="fp32",
              show_default=True,
              help="fp32/fp16: portable graphs (ONNX Runtime, TensorRT). ONNX Runtime CPU only: int4 / int8 = "
                   "weight-only blocks (MatMulNBits, int8 compute: fastest per token; on x86-64 with a C "
                   "compiler unifork-rt's own kernels run them, fast at several rows too), int8-dynamic = int8 "
                   "weights per column with activations quantized per call (MatMulInteger: batches better than "
                   "ONNX Runtime's MatMulNBits where those kernels do not run; with --graphs ort on AVX-512 VNNI "
                   "CPUs unifork-rt's kernels run these too). See docs/GRAPHS.md.")
@click.option("--graphs", "variant", type=click.Choice(["portable", "ort"]), default="portable", show_default=True,
              help="portable: standard ops, every backend. ort: trunk, branches and depth head with ONNX Runtime's "
                   "fused ops (GroupQueryAttention, the KV buffer written in place; Skip(Simplified)Layer"
                   "Normalization; packed QKV; in fp32 the weight MatMuls as TransposeMatMul, which unifork-rt's own "
                   "kernel runs on AVX-512 VNNI CPUs), and the image decoder's transposed convolutions as "
                   "sub-pixel Convs and its GELUs as one node: faster on ort-cpu (fp32, int4, int8), not for the "
                   "GPU backends.")
@click.option("--block-size", type=click.Choice(["16", "32", "64", "128", "256"]), default=None,
              help="int4 / int8: weights per scale along K (default 128). Smaller blocks follow the weights "
                   "more closely and cost more bytes and time; 32 is onnxruntime-genai's and llama.cpp's "
                   "(q4_0, q8_0) block.")
@click.option("--cfg-scale", type=float, default=None, help="Recommended guidance scale, recorded in the bundle "
              "as the default for draw (the runtime's defaults fill what is not given).")
@click.option("--temperature", type=float, default=None, help="Recommended draw temperature, recorded in the bundle.")
@click.option("--top-k", type=int, default=None, help="Recommended draw top-k, recorded in the bundle.")
@click.option("--top-p", type=float, default=None, help="Recommended draw top-p, recorded in the bundle.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def export(model_dir, out, max_seq, precision, variant, block_size, cfg_scale, temperature, top_k, top_p, quiet):
    """Split MODEL_DIR into ONNX graphs with fused KV caches (a bundle for the runtime)."""
    from .errors import require

    require("torch", "train", "unifork-rt export")
    require("onnx", "train", "unifork-rt export")
    from .export.onnx_export import export_bundle

    given = dict(cfg_scale=cfg_scale, temperature=temperature, top_k=top_k, top_p=top_p)
    sampling = {k: v for k, v in given.items() if v is not None}
    folder = export_bundle(model_dir, out, max_seq=max_seq, precision=precision, progress=not quiet,
                           sampling=sampling, variant=variant,
                           block_size=int(block_size) if block_size is not None else None)
    click.echo(f"wrote {folder}")


@main.command(name="eval")
@click.argument("task", type=click.Choice(["caption", "draw"]))
@_model_option
@click.option("--n", "n", type=int, default=100, show_default=True,
              help=f"caption: held-out scenes (at most {MAX_EVAL_N:,}); draw: held-out prompts per category (six "
                   f"categories; at most {MAX_EVAL_DRAW_N:,}).")
@click.option("--seed", type=int, default=0, show_default=True, help="Picks the held-out items and the sampling seeds.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("eval"), show_default=True,
              help="Folder for TASK.json, TASK.md (and draw_contact_sheet.png).")
@click.option("--renderer", type=click.Choice(["all", "mask", "pillow", "aa"]), default="all", show_default=True,
              help="caption: who draws the scenes: the package's mask renderer, Pillow's ImageDraw (no "
                   "anti-aliasing), or anti-aliased (4x and box-filtered, sub-pixel shifts); all: each in turn.")
@click.option("--cfg-scale", type=float, default=None, help="draw: guidance scale (default: the model's).")
@click.option("--temperature", type=float, default=None, help="draw: sampling temperature (default: the model's).")
@click.option("--top-k", type=int, default=None, help="draw: top-k (default: the model's).")
@click.option("--top-p", type=float, default=None, help="draw: top-p (default: the model's).")
@_backend_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def eval_cmd(task, model_dir, n, seed, out, renderer, cfg_scale, temperature, top_k, top_p, backend, engines_dir,
             quiet):
    """ShapesBench: score TASK (caption or draw) on ShapesWorld's held-out split.

    Drawings are judged by the strict detector (docs/SHAPES_WORLD.md: one palette colour,
    one region, one recognisable shape per object). Prints the markdown table and writes it
    with the JSON report into --out (caption: caption_RENDERER.json/.md per rendering and
    caption.md with every rendering's column).
    """
    from . import shapesbench
    from .data import renderers, scoring
    from .io import atomic_paths, probe, shown
    from .runtime import limits
    from .runtime.pipeline import DrawSettings

    if n < 1:
        raise click.BadParameter(f"{n}: must be >= 1", param_hint="--n")
    cap = MAX_EVAL_DRAW_N if task == "draw" else MAX_EVAL_N
    if n > cap:
        raise click.BadParameter(f"{n}: must be <= {cap:,} (held-out items are made and kept up front)",
                                 param_hint="--n")
    limits.seed(seed)
    st = probe(out)
    if st is not None and not stat.S_ISDIR(st.st_mode):
        raise UniforkError(f"--out {shown(out)} is a file: the reports go into a folder; choose another --out")
    files: dict[str, str | bytes] = {}  # written all together, or none, once every figure is in
    with _runtime(model_dir, backend, engines_dir) as rt:
        if task == "caption":
            reports = {}
            for r in (renderers.RENDERERS if renderer == "all" else (renderer,)):
                reports[r] = shapesbench.eval_caption(rt, n, seed, r, progress=not quiet)
                files.update(shapesbench.report_texts(reports[r], f"caption_{r}"))
            shown_file = "caption.md"
            files[shown_file] = scoring.caption_renderers_table(reports) + "\n"
            done = f"wrote {out / shown_file} and caption_RENDERER.json/.md for {', '.join(reports)} into {out}"
        else:
            settings = DrawSettings.for_bundle(rt.bundle, cfg_scale=cfg_scale, temperature=temperature,
                                               top_k=top_k, top_p=top_p)
            report, samples = shapesbench.eval_draw(rt, n, seed, settings, progress=not quiet)
            sheet = io.BytesIO()
            shapesbench.contact_sheet(samples, None).save(sheet, format="PNG")
            files.update(shapesbench.report_texts(report, task))
            files["draw_contact_sheet.png"] = sheet.getvalue()
            shown_file = "draw.md"
            done = f"wrote {out / 'draw.json'} and {out / 'draw.md'} and {out / 'draw_contact_sheet.png'}"
    with _uninterrupted():
        with atomic_paths([out / name for name in files]) as tmps:
            for tmp, data in zip(tmps, files.values()):
                tmp.write_bytes(data.encode("utf-8") if isinstance(data, str) else data)
    click.echo(files[shown_file], nl=False)
    click.echo(done)


@main.command()
@click.option("--model", "model_dir", required=True, type=click.Path(path_type=Path),
              help="A model folder (config.json, model.safetensors, tokenizer.json): the analysis needs PyTorch.")
@click.option("--n", "n", type=int, default=96, show_default=True, help="Held-out samples per task.")
@click.option("--k", "k", type=int, default=10, show_default=True, help="Neighbours in the mutual-kNN metric.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--cfg-scale", type=float, default=2.0, show_default=True, help="Guidance for the drawings.")
@click.option("--out", type=click.Path(path_type=Path), default=Path("align"), show_default=True,
              help="Folder for align.json and align.png.")
def align(model_dir, n, k, seed, cfg_scale, out):
    """Image-text alignment per layer (mutual kNN) for understanding and generation.

    The UniFork paper finds understanding alignment rising with depth and generation
    alignment rising then falling; this measures both curves on your model.
    """
    from .errors import require

    require("torch", "train", "unifork-rt align")
    from tokenizers import Tokenizer

    from .io import atomic_write_text
    from .model import align as al
    from .model.checkpoint import load_model
    from .runtime import limits

    if not 1 <= k < n:
        raise click.BadParameter(f"need 1 <= k < n (got k={k}, n={n})", param_hint="--k")
    limits.seed(seed)
    limits.cfg_scale(cfg_scale)
    model = load_model(model_dir)
    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    result = al.alignment(model, lambda t: tok.encode(t, add_special_tokens=False).ids, n, k, seed, cfg_scale)
    atomic_write_text(out / "align.json", json.dumps(result, indent=1) + "\n")
    al.plot(result, out / "align.png")
    for task in ("understanding", "generation"):
        click.echo(f"{task:<14}" + " ".join(f"{v:.2f}" for v in result[task]))
    click.echo(f"wrote {out / 'align.json'} and {out / 'align.png'}")


@main.command()
@click.argument("bundle", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Engines folder. Default: BUNDLE/engines (where --backend tensorrt looks).")
@click.option("--fp16", is_flag=True, help="Allow fp16 kernels (the usual choice on A100 and Jetson).")
@click.option("--max-batch", type=int, default=None, help="Largest batch of the profiles (2 = one CFG pair). "
              "Default: by GPU memory (2 on an 8 GB Jetson, 8 on an A100).")
@click.option("--max-seq", type=int, default=None, help="Longest prefill the engines take. Default: the bundle's max_seq.")
@click.option("--workspace-gb", "--workspace", "workspace_gb", type=float, default=None,
              help="Builder workspace in GB (default by GPU: 1 on an 8 GB Jetson, 4 on an A100).")
@click.option("--timing-cache", type=click.Path(path_type=Path), default=None,
              help="Timing cache file, reused across builds (default: OUT/timing.cache).")
@click.option("--graph", "graphs", multiple=True, help="Build only this graph (repeatable).")
@click.option("--force", is_flag=True, help="Rebuild even when an engine is up to date.")
@click.option("--no-tf32", is_flag=True, help="Strict fp32 (no TF32 tensor cores), for parity checks.")
@click.option("--device", type=int, default=0, show_default=True, help="CUDA device index.")
@click.option("--check-only", is_flag=True, help="Only check that every graph's operators are supported by "
              "TensorRT's ONNX parser (no GPU needed).")
@click.option("--verbose", is_flag=True, help="TensorRT's own log.")
def build(bundle, out, fp16, max_batch, max_seq, workspace_gb, timing_cache, graphs, force, no_tf32, device,
          check_only, verbose):
    """Build TensorRT engines from a graph BUNDLE (on the GPU that will run them).

    Each engine gets a sidecar fingerprint (graph hash, TensorRT version, GPU, flags); a stale
    engine is rebuilt with a message. See docs/ENGINES.md for A100 and Jetson commands.
    """
    from .engines import opcheck
    from .runtime.bundle import load_bundle

    if check_only:
        loaded = load_bundle(bundle)
        unknown = sorted(set(graphs) - set(loaded.graphs))
        if unknown:  # as build_engines says it
            raise UniforkError(f"unknown graph(s) {', '.join(unknown)}; valid graphs: {', '.join(loaded.graphs)}")
        reports = opcheck.check_bundle(loaded, tuple(graphs) or None)
        click.echo(opcheck.format_report(reports))
        if not all(r.ok for r in reports.values()):
            raise SystemExit(1)
        return
    from .engines.build import build_engines

    paths = build_engines(bundle, out, fp16=fp16, max_batch=max_batch, max_seq=max_seq,
                          workspace_gb=workspace_gb, timing_cache=timing_cache, graphs=tuple(graphs) or None,
                          force=force, tf32=not no_tf32, device=device, verbose=verbose, log=click.echo)
    for p in paths:
        click.echo(str(p))


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
