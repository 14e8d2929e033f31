"""Token sampling in numpy with an explicit generator: greedy, temperature, top-k, top-p.

Classifier-free guidance mixes the logits of cond and uncond rows before sampling.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import UniforkError
from . import limits


@dataclass(frozen=True)
class Sampling:
    temperature: float = 1.0  # 0 means greedy (argmax)
    top_k: int = 0  # 0 disables
    top_p: float = 1.0  # 1 disables

    def __post_init__(self):  # types and ranges: bounds live in limits.py
        limits.temperature(self.temperature)
        limits.top_k(self.top_k)
        limits.top_p(self.top_p)


class NumericsError(UniforkError):
    """The model produced NaN or infinite logits: a numerical fault of the backend or precision."""


def check_finite(logits: np.ndarray) -> None:
    """Refuse NaN/inf logits: argmax and the sampler would silently return token 0 for them."""
    if not np.isfinite(logits).all():
        bad = sorted({int(r) for r in np.argwhere(~np.isfinite(logits))[:, 0]})
        raise NumericsError(f"the model produced non-finite logits (NaN or inf) in row(s) {bad[:8]}: a numerical "
                            "fault of the backend or precision (e.g. a float32 bundle built with --fp16, or a "
                            "bundle exported before the finite attention-mask fill); rebuild the engines without "
                            "--fp16, re-export the bundle, or use --backend ort-cpu")


def sample(logits: np.ndarray, s: Sampling, rng: np.random.Generator) -> np.ndarray:
    """logits (B, V) -> token ids (B,) int64. Non-finite logits raise NumericsError."""
    check_finite(logits)
    if s.temperature == 0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    x = logits.astype(np.float64) / s.temperature
    if 0 < s.top_k < x.shape[-1]:
        kth = np.partition(x, -s.top_k, axis=-1)[:, -s.top_k][:, None]
        x = np.where(x < kth, -np.inf, x)
    x = x - x.max(-1, keepdims=True)
    p = np.exp(x)
    p /= p.sum(-1, keepdims=True)
    if s.top_p < 1:
        order = np.argsort(-p, axis=-1, kind="stable")
        sorted_p = np.take_along_axis(p, order, -1)
        cum = np.cumsum(sorted_p, -1)
        drop_sorted = (cum - sorted_p) >= s.top_p  # keep the smallest prefix whose mass reaches top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        p = np.where(drop, 0.0, p)
        p /= p.sum(-1, keepdims=True)
    u = rng.random((p.shape[0], 1))
    idx = (np.cumsum(p, -1) < u).sum(-1)
    return np.minimum(idx, p.shape[-1] - 1).astype(np.int64)


def cfg_mix(logits: np.ndarray, scale: float) -> np.ndarray:
    """Rows [0, B/2) are cond, [B/2, B) uncond -> uncond + scale * (cond - uncond), (B/2, V)."""
    half = logits.shape[0] // 2
    cond, uncond = logits[:half], logits[half:]
    return uncond + scale * (cond - uncond)
