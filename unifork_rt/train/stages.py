"""The training stages (DESIGN.md §2) and the Stage 3 merge.

    tokenizer  RQ-VAE on images (+ the text BPE when the start has no tokenizer.json)
    decoder    the RQ-VAE's decoder alone, on the frozen encoder's codes (they stay as they are)
    1          alignment: connector + depth head + BOI/EOI; LLM frozen; both tasks
    2          joint: everything but the image tokenizer; gen + und in every step
    3-gen      gen branch + norm_gen + depth head, generation only      ┐ both from the same
    3-und      und branch + norm (+ an untied lm_head), understanding  ┘ stage 2 folder
    merge      gen's tensors from 3-gen, und's from 3-und, the rest must be untouched

The image tokenizer is frozen in every stage after its own. Each stage reads a model folder
(--init) and writes one (--out): config.json, model.safetensors, tokenizer.json, plus
checkpoint.safetensors (for --resume), log.jsonl (one row per step) and done.json.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import preset as get_preset
from ..errors import InputError, ModelFolderError
from ..io import atomic_write_text
from ..model.checkpoint import TOKENIZER, WEIGHTS, load_into, load_model, load_state, save_model
from ..model.unifork import UniFork
from ..runtime.limits import real
from . import dist as dist_mod
from . import loop
from .data import DEFAULT_MIX, DEFAULT_NULL_RATE, GenerationSampler, ImageSampler, UnderstandingSampler
from .imagefolder import load_imagefolder
from .jobs import DecoderJob, VQJob, YJob
from .state import CHECKPOINT
from .tokenizer import build_text_tokenizer, check_tokenizer, load_text_tokenizer

DONE = "done.json"

# Top-level modules each stage trains (names of UniFork attributes; all else is frozen).
TRAINS: dict[str, tuple[str, ...]] = {
    "tokenizer": ("image_tokenizer",),
    "decoder": ("image_tokenizer.decoder",),
    "1": ("connector", "boi", "eoi", "head"),
    "2": ("embed_tokens", "boi", "eoi", "connector", "trunk", "und", "norm", "lm_head", "gen", "norm_gen", "head"),
    "3-gen": ("gen", "norm_gen", "head"),
    # A tied lm_head IS embed_tokens, which both tasks read: it stays frozen, which is what
    # keeps the two stage 3 runs on disjoint parameters. An untied one belongs to und alone.
    "3-und": ("und", "norm", "lm_head"),
}
TASKS = {"tokenizer": (), "decoder": (), "1": ("gen", "und"), "2": ("gen", "und"), "3-gen": ("gen",), "3-und": ("und",)}
STAGES = tuple(TRAINS)
# Modules only one task reads. A stage restricted to fewer tasks (StageSettings.tasks: the
# single-task experts of the ablation) leaves the other task's modules frozen: they get no
# gradient anyway, and under DDP a trainable parameter without a gradient is an error.
TASK_ONLY: dict[str, tuple[str, ...]] = {"gen": ("gen", "norm_gen", "head"), "und": ("und", "norm", "lm_head", "eoi")}


@dataclass(frozen=True)
class StageSettings:
    """Everything that decides a stage's result; CLI options map one to one onto fields."""

    stage: str
    steps: int | None = None  # exactly one of steps / minutes
    minutes: float | None = None
    seed: int = 0
    batch_size: int = 32  # images (tokenizer) or generation sequences, per rank
    und_batch_size: int = 32  # understanding sequences per rank
    lr: float = 1e-3
    warmup: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    save_every: int = 200
    null_rate: float = DEFAULT_NULL_RATE
    mix: tuple[tuple[str, float], ...] = tuple(DEFAULT_MIX.items())
    data: str | None = None  # an imagefolder instead of ShapesWorld
    bad_rows: str = "fail"
    restart_every: int = 50  # tokenizer: dead-code restart period
    uniform_weight: float = 1.0  # tokenizer: locality: 0 turns off vq.tie_uniform_cells
    ink_weight: float = 0.0  # tokenizer: extra pixel-loss weight on non-white pixels (colour fidelity)
    eval_every: int = 0  # tokenizer: held-out reconstruction check period (0: only at the end)
    target: float | None = None  # tokenizer: stop once that share of reconstructions reads right
    eval_n: int = 300  # held-out items for end-of-stage evaluation (0: none); drawing uses n/15 per category
    tasks: tuple[str, ...] | None = None  # a subset of the stage's TASKS to train (None: all of them)

    def validate(self) -> "StageSettings":
        if self.stage not in STAGES:
            raise InputError(f"unknown stage {self.stage!r}; valid: {', '.join(STAGES)} (or 3 for both + merge)")
        if self.batch_size <= 0 or self.und_batch_size <= 0:
            raise InputError("batch sizes must be positive")
        self._check_numbers()
        self.loop_settings().validate()  # --steps / --minutes, --lr, --warmup, --save-every: before --out is made
        if self.tasks is not None and (not self.tasks or not set(self.tasks) <= set(TASKS[self.stage])
                                       or len(set(self.tasks)) != len(self.tasks)):
            raise InputError(f"tasks {self.tasks!r} for stage {self.stage}: give a non-empty subset of "
                             f"{', '.join(TASKS[self.stage]) or '(none: this stage has no tasks)'}")
        return self

    def _check_numbers(self) -> None:
        """Every float finite (a NaN weight decay or gradient clip trains NaN weights) and in its range."""
        floats = {"--minutes": self.minutes, "--lr": self.lr, "min_lr_ratio": self.min_lr_ratio,
                  "--weight-decay": self.weight_decay, "--grad-clip": self.grad_clip, "--null-rate": self.null_rate,
                  "--uniform-weight": self.uniform_weight, "--ink-weight": self.ink_weight, "--target": self.target,
                  **{f"--mix {k}": w for k, w in self.mix}}
        for name, value in floats.items():
            if value is not None:
                real(value, name)
        v = self
        ranges = (("--weight-decay", v.weight_decay, v.weight_decay >= 0, ">= 0"),
                  ("--grad-clip", v.grad_clip, v.grad_clip > 0, "> 0"),
                  ("--null-rate", v.null_rate, 0 <= v.null_rate < 1, "in [0, 1) (the share of prompts emptied)"),
                  ("--uniform-weight", v.uniform_weight, v.uniform_weight >= 0, ">= 0 (0: off)"),
                  ("--ink-weight", v.ink_weight, v.ink_weight >= 0, ">= 0"),
                  ("--target", v.target, v.target is None or 0 < v.target <= 1, "in (0, 1] (a share of reconstructions)"),
                  ("--eval-n", v.eval_n, v.eval_n >= 0, ">= 0 (0: skip the evaluation)"),
                  ("--eval-every", v.eval_every, v.eval_every >= 0, ">= 0 (0: only at the end)"))
        for name, value, ok, rule in ranges:
            if not ok:
                raise InputError(f"{name} {value} must be {rule}")

    @property
    def active_tasks(self) -> tuple[str, ...]:
        """The tasks this stage trains: `tasks`, or all of the stage's TASKS."""
        return TASKS[self.stage] if self.tasks is None else self.tasks

    def record(self) -> dict:
        """The settings as JSON for checkpoints. `tasks` is left out while it is None, so a
        checkpoint written before that field existed still resumes."""
        d = dataclasses.asdict(self)
        if self.tasks is None:
            del d["tasks"]
        return d

    def loop_settings(self) -> loop.LoopSettings:
        return loop.LoopSettings(self.steps, self.minutes, self.lr, self.warmup, self.min_lr_ratio,
                                 self.weight_decay, self.grad_clip, self.save_every)


# Defaults that differ by stage (the CLI overlays the options a user gives).
STAGE_DEFAULTS: dict[str, dict] = {
    "tokenizer": dict(batch_size=64, lr=1e-3, warmup=50, eval_every=100),
    "decoder": dict(batch_size=64, lr=5e-4, warmup=20, eval_every=100),
    "1": dict(lr=1e-3, warmup=50),
    "2": dict(lr=1e-3, warmup=100),
    "3-gen": dict(lr=3e-4, warmup=20, min_lr_ratio=0.0),
    "3-und": dict(lr=3e-4, warmup=20, min_lr_ratio=0.0),
}


def default_settings(stage: str, **given) -> StageSettings:
    """The stage's defaults with `given` fields replaced."""
    if stage not in STAGE_DEFAULTS:
        raise InputError(f"unknown stage {stage!r}; valid: {', '.join(STAGES)}")
    return StageSettings(stage=stage, **{**STAGE_DEFAULTS[stage], **given}).validate()


def trained_modules(stage: str, tasks: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """TRAINS[stage] without the modules that only tasks outside `tasks` read (None: all tasks)."""
    dropped = {m for t in TASKS[stage] if tasks is not None and t not in tasks for m in TASK_ONLY[t]}
    return tuple(m for m in TRAINS[stage] if m not in dropped)


def trainable_names(model: UniFork, stage: str, tasks: tuple[str, ...] | None = None) -> list[str]:
    mods = trained_modules(stage, tasks)
    return [n for n, _ in model.named_parameters() if any(n == m or n.startswith(m + ".") for m in mods)]


def freeze_for(model: UniFork, stage: str, tasks: tuple[str, ...] | None = None) -> list[str]:
    names = set(trainable_names(model, stage, tasks))
    for n, p in model.named_parameters():
        p.requires_grad_(n in names)
    return sorted(names)


def _log(msg: str, dist) -> None:
    if dist.is_main:
        print(msg, flush=True)


def _start_model(s: StageSettings, init: Path | None, preset: str | None, dist):
    """(model, tokenizer) a stage starts from: a model folder, or a preset for the tokenizer stage."""
    if (init is None) == (preset is None):
        raise InputError("give exactly one of --init MODEL_DIR or --preset NAME")
    if preset is not None:
        if s.stage != "tokenizer":
            raise InputError(f"stage {s.stage} starts from a trained model folder: pass --init with the "
                             "previous stage's --out (only --stage tokenizer starts from a --preset)")
        cfg = get_preset(preset)
        torch.manual_seed(s.seed)  # the same initial weights on every rank and every rerun
        model = UniFork(cfg)
        tok = build_text_tokenizer(cfg.text.vocab_size)
    else:
        model = load_model(init)
        if (init / TOKENIZER).is_file():
            tok = load_text_tokenizer(init / TOKENIZER)
        elif s.stage == "tokenizer":
            tok = build_text_tokenizer(model.cfg.text.vocab_size)
        else:
            raise ModelFolderError(f"{init} has no {TOKENIZER}: run --stage tokenizer on it first")
    c = model.cfg
    check_tokenizer(tok, c.text.vocab_size, c.eos_token_id, c.pad_token_id, "the text tokenizer")
    return model.train(), tok


def _prepare_out(out: Path, resume: bool, dist) -> bool:
    """Check --out against --resume; True when the stage is already finished."""
    if (out / DONE).is_file():
        if resume:
            _log(f"{out} is already finished ({DONE}); nothing to resume", dist)
            return True
        raise InputError(f"{out} already holds a finished stage: choose a new --out (or delete it)")
    if resume and not (out / CHECKPOINT).is_file():
        raise InputError(f"--resume: {out} has no {CHECKPOINT} yet; drop --resume to start the stage")
    if not resume and (out / CHECKPOINT).is_file():
        raise InputError(f"{out} holds an unfinished run: pass --resume to continue it, or choose a new --out")
    if dist.is_main:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise InputError(f"cannot create --out {out}: {e.strerror}") from None
        if not resume:
            (out / "log.jsonl").unlink(missing_ok=True)
    dist.barrier()
    return False


def run_stage(s: StageSettings, out: Path, init: Path | None = None, preset: str | None = None,
              resume: bool = False) -> Path:
    """Train one stage into the model folder `out`; returns it. Works under torchrun."""
    s.validate()
    began = time.perf_counter()
    if s.stage in ("3-gen", "3-und") and init is None:
        raise InputError("stage 3 starts from the stage 2 folder: pass --init")
    dist = dist_mod.setup()
    out = Path(out)
    if _prepare_out(out, resume, dist):
        return out
    model, tok = _start_model(s, init, preset, dist)
    model.to(dist.device)
    trained = freeze_for(model, s.stage, s.tasks)
    n_train = sum(p.numel() for p in model.parameters() if p.requires_grad)
    only = f"; {' + '.join(s.active_tasks)} only" if s.tasks is not None else ""
    _log(f"stage {s.stage}: training {n_train:,} of {sum(p.numel() for p in model.parameters()):,} "
         f"parameters ({', '.join(trained_modules(s.stage, s.tasks))}{only}); "
         f"{dist.world} process(es) on {dist.device}", dist)
    folder = load_imagefolder(s.data, model.cfg.image.image_size, s.bad_rows, report=lambda m: _log(m, dist)) \
        if s.data is not None else None
    job = _make_job(s, model, tok, folder, dist)
    if dist.is_main:  # the folder is complete (config + tokenizer) from the start
        model.cfg.save(out / "config.json")
        atomic_write_text(out / TOKENIZER, tok.to_str())
    run_info = {"settings": s.record(), "init": str(Path(init).resolve()) if init else None, "preset": preset,
                "config": model.cfg.to_dict(), "trained": len(trained)}
    loop_began = time.perf_counter()
    summary = loop.run(job, model, s.loop_settings(), out, resume, dist, json.loads(json.dumps(run_info)),
                       desc=f"stage {s.stage}")
    loop_seconds = time.perf_counter() - loop_began
    if dist.is_main:
        save_model(model, out, metadata={"stage": s.stage})
        summary["eval"] = _evaluate(s, model, tok, folder, job)
        # what a time budget spends: the loop across resumes + this process's setup and evaluation
        summary["wall_seconds"] = round(summary["seconds"] + time.perf_counter() - began - loop_seconds, 1)
        atomic_write_text(out / DONE, json.dumps({"stage": s.stage, **summary}, indent=2) + "\n")
        _log(f"stage {s.stage} done: {json.dumps(summary)}", dist)
    dist.barrier()
    return out


def _make_job(s: StageSettings, model: UniFork, tok, folder, dist):
    r, w = dist.rank, dist.world
    if s.stage == "tokenizer":
        sampler = ImageSampler(folder, s.batch_size, s.seed, r, w)
        # the held-out check is a ShapesWorld measure: with user data only the loss is shown
        eval_n = s.eval_n if folder is None else 0
        return VQJob(model, sampler, dist, s.restart_every, s.seed, s.eval_every, eval_n, s.target, s.uniform_weight,
                     s.ink_weight)
    if s.stage == "decoder":
        sampler = ImageSampler(folder, s.batch_size, s.seed, r, w, targets=True)
        return DecoderJob(model, sampler, dist, s.eval_every, s.eval_n if folder is None else 0, s.ink_weight)
    tasks = s.active_tasks
    gen = GenerationSampler(folder, tok, s.batch_size, s.seed, r, w, dict(s.mix), s.null_rate) \
        if "gen" in tasks else None
    und = UnderstandingSampler(folder, tok, s.und_batch_size, s.seed, r, w) if "und" in tasks else None
    return YJob(model, gen, und, dist)


def _evaluate(s: StageSettings, model: UniFork, tok, folder, job) -> dict:
    """End-of-stage held-out ShapesWorld figures (none for user data or eval_n = 0)."""
    if folder is not None or s.eval_n <= 0:
        return {}
    from . import monitor, vq

    model.eval()
    if s.stage in ("tokenizer", "decoder"):
        return {"recon_acc": vq.reconstruction_accuracy(model.image_tokenizer, s.eval_n),
                **vq.locality(model.image_tokenizer)}
    out = {}
    if "und" in s.active_tasks:
        out["caption"] = monitor.caption_eval(model, tok, s.eval_n)
    if "gen" in s.active_tasks:
        out["draw"] = monitor.draw_eval(model, tok, max(1, s.eval_n // 15))
    return out


def run_stage3(gen: StageSettings, und: StageSettings, init: Path, out: Path, resume: bool = False) -> Path:
    """Both stage 3 runs from the same stage 2 folder, then the merge into `out`."""
    out = Path(out)
    if resume and (out / DONE).is_file():
        return out
    for s, sub in ((gen, "gen"), (und, "und")):
        ck = out / sub
        run_stage(s, ck, init=init, resume=resume and ((ck / CHECKPOINT).is_file() or (ck / DONE).is_file()))
    return merge_stage3_once(init, out / "gen", out / "und", out, resume)


def merge_stage3_once(base: Path, gen: Path, und: Path, out: Path, resume: bool = False) -> Path:
    """merge_stage3 on the main process (every rank waits for it); a resumed run keeps a merge
    that already finished."""
    dist = dist_mod.setup()
    if dist.is_main and not (resume and (Path(out) / DONE).is_file()):
        merge_stage3(base, gen, und, out)
    dist.barrier()
    return Path(out)


def merge_stage3(base: Path, gen: Path, und: Path, out: Path) -> Path:
    """One model from the two stage 3 runs: each contributes only the tensors it trained.

    Raises if the runs' trained sets overlap, or if any other tensor differs from `base`
    (then the runs did not start from the same stage 2 folder)."""
    base, gen, und, out = map(Path, (base, gen, und, out))
    for (a, pa), (b, pb) in itertools.combinations((("--base", base), ("--gen", gen), ("--und", und)), 2):
        if pa.resolve() == pb.resolve():
            raise InputError(f"{a} and {b} are the same folder {pa}: give the stage 2 folder and the two stage 3 "
                             "runs (3-gen and 3-und) that started from it")
    models = {k: load_model(p) for k, p in (("base", base), ("gen", gen), ("und", und))}
    cfgs = {k: m.cfg.to_dict() for k, m in models.items()}
    if cfgs["gen"] != cfgs["base"] or cfgs["und"] != cfgs["base"]:
        raise ModelFolderError(f"stage 3 runs {gen} and {und} do not share the config of {base}")
    toks = {p: (p / TOKENIZER).read_bytes() for p in (base, gen, und) if (p / TOKENIZER).is_file()}
    if len(set(toks.values())) != 1 or len(toks) != 3:
        raise ModelFolderError(f"{base}, {gen} and {und} must hold the same {TOKENIZER}")
    g_names = set(trainable_names(models["base"], "3-gen"))
    u_names = set(trainable_names(models["base"], "3-und"))
    assert not g_names & u_names, f"stage 3 gen and und train overlapping tensors: {sorted(g_names & u_names)}"
    states = {k: load_state(p / WEIGHTS) for k, p in (("base", base), ("gen", gen), ("und", und))}
    merged = {}
    for name, t in states["base"].items():
        for run, owned in (("gen", g_names), ("und", u_names)):
            if name not in owned and not torch.equal(states[run][name], t):
                raise ModelFolderError(f"{name} differs between {base} and the stage 3 {run} run, which "
                                       "should have left it frozen: were both runs started from this folder?")
        merged[name] = states["gen"][name] if name in g_names else states["und"][name] if name in u_names else t
    model = models["base"]
    load_into(model, merged, f"merge of {gen} and {und}")
    out.mkdir(parents=True, exist_ok=True)
    save_model(model, out, tokenizer=gen / TOKENIZER, metadata={"stage": "3-merged"})
    done = {"stage": "3-merged", "base": str(base), "gen": str(gen), "und": str(und),
            "from_gen": len(g_names), "from_und": len(u_names), "from_base": len(merged) - len(g_names) - len(u_names)}
    for run, path in (("gen", gen), ("und", und)):
        if (path / DONE).is_file():
            done[f"{run}_run"] = json.loads((path / DONE).read_text(encoding="utf-8"))
    atomic_write_text(out / DONE, json.dumps(done, indent=2) + "\n")
    return out
