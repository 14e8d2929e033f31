"""The training loop every stage shares: AdamW, warmup + cosine, clipping, checkpoints.

A stage supplies a `Job` (how to draw a batch, what the loss is, what to do after a
step, what extra state to save); the loop owns everything else:

    for step in [start, total):
        lr = schedule(step)                      a pure function of the step: nothing to save
        loss = job.loss(module, job.batch())     module = the DDP-wrapped loss module
        backward; clip; AdamW step; job.after_step(step)
        every save_every steps: checkpoint (rank 0, atomic)

Exact resume: the checkpoint holds the weights, AdamW moments, torch RNG, every rank's
data-generator state and the step, so continuing from it replays the same batches and
produces the same weights as a run that was never interrupted.

Time budgets: with --minutes and no --steps, the loop times a few warmup steps, fixes the
step count from that (printed, and saved in checkpoints) and then runs a normal schedule.
The LR during those timed steps does not depend on the total, so `--steps N` with the
printed N reproduces the run.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from ..errors import InputError
from ..io import atomic_write_text
from .dist import Dist
from .state import CHECKPOINT, read_checkpoint, restore, save_checkpoint

CALIBRATION_STEPS = 10  # steps timed to turn --minutes into a step count
BUDGET_SLACK = 0.97  # leave room for checkpoints and evaluation inside the budget


@dataclass(frozen=True)
class LoopSettings:
    steps: int | None
    minutes: float | None
    lr: float
    warmup: int
    min_lr_ratio: float
    weight_decay: float
    grad_clip: float
    save_every: int

    def validate(self) -> None:
        if (self.steps is None) == (self.minutes is None):
            raise InputError("give exactly one of --steps N or --minutes M")
        if self.steps is not None and self.steps <= 0 or self.minutes is not None and self.minutes <= 0:
            raise InputError("--steps and --minutes must be positive")
        if self.lr <= 0 or self.warmup < 0 or not 0 <= self.min_lr_ratio <= 1 or self.save_every <= 0:
            raise InputError("need --lr > 0, --warmup >= 0, 0 <= min_lr_ratio <= 1, --save-every > 0")


class Job(Protocol):
    """What a stage plugs into the loop."""

    module: torch.nn.Module  # computes the loss; the loop wraps it in DDP

    def batch(self) -> Any: ...
    def loss(self, module: torch.nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]: ...
    def after_step(self, step: int, optimizer: torch.optim.Optimizer) -> dict[str, float]: ...
    def should_stop(self, step: int) -> bool: ...
    def state(self) -> dict: ...  # this rank's JSON-able state (data positions, generators)
    def state_tensors(self) -> dict[str, torch.Tensor]: ...
    def load_state(self, per_rank: dict, tensors: dict[str, torch.Tensor]) -> None: ...


def lr_at(step: int, s: LoopSettings, total: int | None) -> float:
    """Linear warmup over s.warmup steps, then cosine from lr down to lr * min_lr_ratio."""
    if step < s.warmup:
        return s.lr * (step + 1) / s.warmup
    if total is None:  # only reachable when warmup is shorter than the timing window
        return s.lr
    frac = min(1.0, (step - s.warmup) / max(1, total - s.warmup))
    return s.lr * (s.min_lr_ratio + (1 - s.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))


def make_optimizer(named: list[tuple[str, torch.nn.Parameter]], s: LoopSettings) -> torch.optim.AdamW:
    """AdamW; weight decay only on matrices (not on norms, biases, BOI/EOI, depth embeddings)."""
    decay = [p for _, p in named if p.ndim >= 2]
    keep = [p for _, p in named if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": s.weight_decay}, {"params": keep, "weight_decay": 0.0}]
    # foreach=False: one fixed kernel order, so reruns and resumes are bitwise identical
    return torch.optim.AdamW(groups, lr=s.lr, betas=(0.9, 0.95), foreach=False)


def run(job: Job, model: torch.nn.Module, settings: LoopSettings, out: Path, resume: bool,
        dist: Dist, run_info: dict, desc: str) -> dict:
    """Train to the end (or to job.should_stop); returns a summary. `run_info` (JSON) is
    stored in every checkpoint and must match on --resume."""
    settings.validate()
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    optimizer = make_optimizer(params, settings)
    module = dist.wrap(job.module)
    ckpt = out / CHECKPOINT
    step, total, s_per_step, before = 0, settings.steps, None, 0.0  # before: loop seconds of earlier processes
    if resume:
        meta, tensors = read_checkpoint(ckpt)
        if meta["run"] != run_info:
            diff = sorted(k for k in set(meta["run"]) | set(run_info) if meta["run"].get(k) != run_info.get(k))
            raise InputError(f"{ckpt} was written by a different run (differs in: {', '.join(diff)}); "
                             "resume with the options it was started with, or use a fresh --out")
        if meta["world"] != dist.world:
            raise InputError(f"{ckpt} was written by {meta['world']} process(es), this run has {dist.world}: "
                             "resume with the same --nproc_per_node")
        extra = restore(meta, tensors, model, optimizer)
        job.load_state(meta["ranks"][dist.rank], extra)
        step, total, s_per_step, before = meta["step"], meta["total"], meta.get("s_per_step"), meta.get("seconds", 0.0)

    def save(at: int) -> None:
        ranks = dist.gather_objects(job.state())  # every rank's generators, for exact resume
        if dist.is_main:
            save_checkpoint(ckpt, model, optimizer, {
                "step": at, "total": total, "s_per_step": s_per_step, "world": dist.world,
                "seconds": round(before + time.perf_counter() - t0, 3),
                "ranks": ranks, "run": run_info}, job.state_tensors())
        dist.barrier()

    log_path = out / "log.jsonl"
    if resume and dist.is_main:
        _truncate_log(log_path, step)
    bar = tqdm(total=total, initial=step, desc=desc, disable=not dist.is_main, dynamic_ncols=True, smoothing=0.05)
    t0, timed_from = time.perf_counter(), None
    window = (min(1, settings.warmup), max(2, min(settings.warmup, CALIBRATION_STEPS + 1)))
    losses: list[float] = []
    try:
        while total is None or step < total:
            if total is None and step == window[0]:
                timed_from = time.perf_counter()
            for g in optimizer.param_groups:
                g["lr"] = lr_at(step, settings, total)
            loss, logs = job.loss(module, job.batch())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_([p for _, p in params], settings.grad_clip)
            optimizer.step()
            info = job.after_step(step, optimizer)
            step += 1
            losses.append(loss.item())
            if total is None and step == window[1]:
                total, s_per_step = _decide_total(step, timed_from, window, settings.minutes * 60 - (time.perf_counter() - t0), dist)
                bar.total = total
                if dist.is_main:
                    tqdm.write(f"{desc}: {s_per_step:.3f} s/step -> {total} steps for {settings.minutes:g} min "
                               f"(reproduce with --steps {total})")
            bar.update(1)
            row = {"step": step, "time": round(before + time.perf_counter() - t0, 3),  # loop seconds, across resumes
                   "loss": round(losses[-1], 5), "lr": optimizer.param_groups[0]["lr"],
                   "grad_norm": round(float(grad_norm), 4),
                   **{k: round(float(v), 5) for k, v in logs.items()}, **info}
            bar.set_postfix({k: f"{v:.3f}" if isinstance(v, float) else v for k, v in row.items()
                             if k not in ("step", "time", "lr", "grad_norm")}, refresh=False)
            if dist.is_main:
                with open(log_path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(row) + "\n")
            stop = job.should_stop(step - 1)
            if stop:
                total = step
            elif total is not None and step < total and step % settings.save_every == 0:
                save(step)
    except KeyboardInterrupt:
        if not dist.enabled and total is not None:
            save(step)  # the state between two steps is consistent: --resume continues exactly
            tqdm.write(f"interrupted at step {step}; saved {ckpt}: rerun with --resume to continue")
        raise
    finally:
        bar.close()
    save(step)
    elapsed = before + time.perf_counter() - t0
    tail = losses[-min(len(losses), 50):]
    return {"steps": step, "seconds": round(elapsed, 1),
            "s_per_step": round((time.perf_counter() - t0) / len(losses), 4) if losses else s_per_step,
            "final_loss": round(sum(tail) / len(tail), 5) if tail else None}


def _decide_total(step: int, timed_from: float, window: tuple[int, int], seconds_left: float,
                  dist: Dist) -> tuple[int, float]:
    """Steps that fit the budget, decided on rank 0 and shared (every rank must agree)."""
    s_per_step = (time.perf_counter() - timed_from) / (window[1] - window[0])
    total = step + max(0, int(seconds_left * BUDGET_SLACK / s_per_step))
    return dist.broadcast_int(total), s_per_step


def _truncate_log(path: Path, step: int) -> None:
    """Drop log rows of steps after the checkpoint: the resumed run logs them again. A row cut
    short by the kill is dropped too."""
    if path.is_file():
        kept = []
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                if json.loads(line)["step"] <= step:
                    kept.append(line)
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
        atomic_write_text(path, "".join(r + "\n" for r in kept))
