"""Held-out ShapesWorld figures of a model in training: ShapesBench through the runtime.

The in-memory model runs as the runtime's PyTorch backend (export/torch_backend.py), so the
captions and drawings come from the very loops, sampler and seeds of `unifork-rt eval`: a
checkpoint scores the same here as its exported bundle does there, e.g.

    draw_eval(model, tok, 20, seed=0, cfg_scale=2.0)
    == unifork-rt eval draw --model BUNDLE --n 20 --seed 0 --cfg-scale 2 --temperature 1 --top-k 0 --top-p 1
"""

from __future__ import annotations

from tokenizers import Tokenizer

from .. import shapesbench
from ..export.torch_backend import torch_runtime
from ..model.unifork import UniFork
from ..runtime.pipeline import DrawSettings


def caption_eval(model: UniFork, tok: Tokenizer, n: int = 300, seed: int = 0) -> dict:
    """Greedy captions of n held-out scenes (the mask renderer): scoring.caption_report."""
    report = shapesbench.eval_caption(torch_runtime(model, tok), n, seed)
    del report["samples"]  # every prediction: the command's report keeps them, a training summary need not
    return report


def draw_eval(model: UniFork, tok: Tokenizer, n_per_category: int = 20, seed: int = 0, cfg_scale: float = 2.0,
              temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> dict:
    """One drawing per held-out prompt of each category (prompt i with seed + i): scoring.draw_report
    plus its settings (top_k 0 and top_p 1: every code)."""
    settings = DrawSettings(cfg_scale, temperature, top_k, top_p)
    report, _ = shapesbench.eval_draw(torch_runtime(model, tok), n_per_category, seed, settings)
    return report
