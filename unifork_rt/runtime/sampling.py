"""Token sampling in numpy with an explicit generator: greedy, temperature, top-k, top-p.

Classifier-free guidance mixes the logits of cond and uncond rows before sampling.

At temperature 1 (the draw default) with float32 or float16 logits, the rows are sampled by
kernels/sample_kernels.c from the kernel library (runtime/qmatmul.py builds it), with NumPy's own exp and
sums between its passes: the same float64 arithmetic as the numpy path below, in the same order, so the
same token for the same logits and uniform draw. A guided `--n 4` draw samples 4 rows 1024 times; in numpy
that took 0.7-0.9 s of a 12 s draw. Where the library cannot be built, or with UNIFORK_RT_SAMPLER=0, the
numpy path runs (docs/KERNELS.md, "The sampler").
"""

from __future__ import annotations

import ctypes
import functools
import os
import threading
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
    """logits (B, V) -> token ids (B,) int64. Non-finite logits raise NumericsError.

    Per row: temperature, then top-k (every token at least as likely as the k-th is kept, ties
    included), then top-p over what is left (the smallest most-likely prefix whose mass reaches
    top_p), then one uniform draw from `rng` per row against the kept tokens in vocabulary order.
    Only the top-k candidates are softmaxed and sorted, not the whole vocabulary: a guided draw
    samples every row at every depth step, and sorting 16k logits per row cost more than the
    depth head's extra rows (docs/BENCHMARKS.md, "Sampling").
    """
    check_finite(logits)
    if s.temperature == 0:
        return np.argmax(logits, axis=-1).astype(np.int64)
    B, V = logits.shape
    u = rng.random(B)  # one draw per row, taken before any work: the stream is fixed by B
    lib = native() if s.temperature == 1.0 and V > 0 and logits.dtype in (np.float32, np.float16) else None
    if lib is not None:
        return _sample_native(lib, logits, s, u)
    out = np.empty(B, dtype=np.int64)
    t, top_k = s.temperature, s.top_k
    for b in range(B):
        row = logits[b]
        if 0 < top_k < V:  # keep: the candidates' ids, ascending
            # the k-th largest logit, found on the logits as given: x = float64(l) / t is non-decreasing
            # in l, so the k-th largest x is exactly that value divided by t
            keep, kept, kth = top_entries(row, top_k)
            if t == 1.0:  # x = float64(l) exactly: the kept set is the one read on the row
                x = kept.astype(np.float64)
            else:  # the division can make neighbours of the k-th value equal to it: decide on x itself
                x = row.astype(np.float64) / t
                keep = np.flatnonzero(x >= np.float64(kth) / t)
                x = x[keep]
        else:
            x = row.astype(np.float64) / t
            keep = np.arange(V)
        p = np.exp(x - x.max())
        p /= p.sum()
        if s.top_p < 1:
            order = np.argsort(-p, kind="stable")
            sorted_p = p[order]
            kept = np.sort(order[(np.cumsum(sorted_p) - sorted_p) < s.top_p])  # back in id order
            keep, p = keep[kept], p[kept]
            p /= p.sum()
        j = min(int(np.searchsorted(np.cumsum(p), u[b], side="right")), p.shape[0] - 1)
        out[b] = keep[j]
    return out


def native():
    """The C sampler's library (ctypes), or None: UNIFORK_RT_SAMPLER=0, or no library on this machine."""
    if os.environ.get("UNIFORK_RT_SAMPLER", "").strip().lower() in ("0", "off", "false", "no"):
        return None
    return _load_native()


@functools.lru_cache(maxsize=1)
def _load_native():
    from .qmatmul import build

    path, _ = build()  # built once per process and source hash (qmatmul.build's own cache and lock)
    if path is None:
        return None
    lib = ctypes.CDLL(str(path))
    p = ctypes.c_void_p
    lib.uk_sample_select.argtypes = [p, ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, p, p, p, p]
    lib.uk_sample_select.restype = None
    lib.uk_sample_top_p.argtypes = [p, p, p, ctypes.c_int64, p, ctypes.c_double]
    lib.uk_sample_top_p.restype = ctypes.c_int
    lib.uk_sample_pick.argtypes = [p, p, p, ctypes.c_int64, p, p, p]
    lib.uk_sample_pick.restype = None
    return lib


_work = threading.local()


_WORK_KEEP = 1 << 18  # entries (rows x vocabulary) whose buffers a thread keeps: 3 MB; larger ones are fresh


def _workspace(entries: int, scratch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """This thread's buffers for the C sampler, kept between calls up to _WORK_KEEP entries (a guided draw's
    8 rows of 16k codes): fresh ones cost their page faults on every call."""
    have = getattr(_work, "bufs", None)
    if have is None or have[0].shape[0] < entries or have[2].shape[0] < scratch:
        have = (np.empty(entries, np.int32), np.empty(entries, np.float64), np.empty(scratch, np.float32))
        if entries <= _WORK_KEEP:
            _work.bufs = have
    return have


def _sample_native(lib, logits: np.ndarray, s: Sampling, u: np.ndarray) -> np.ndarray:
    """`sample` at temperature 1 in C (kernels/sample_kernels.c): the rows' kept sets and x - max(x), then
    p / sum and top-p, then the draw, in C; every exp and sum in between by NumPy, on the same values in the
    same order as the numpy path takes them (its sums are blocked by np.getbufsize(), not a C loop's)."""
    x = np.require(logits, np.float32, ["C", "A"])  # float16 -> float32 is exact and keeps the order
    B, V = x.shape
    ids, d, scratch = _workspace(B * V, 4 * V)
    counts = np.empty(B, np.int64)
    ptr = lambda a: a.ctypes.data_as(ctypes.c_void_p)  # noqa: E731
    lib.uk_sample_select(ptr(x), B, V, s.top_k, ptr(ids), ptr(d), ptr(counts), ptr(scratch))
    total = int(counts.sum())
    np.exp(d[:total], out=d[:total])

    def row_sums() -> np.ndarray:  # each row's set, as the numpy path sums its own array
        sums, at = np.empty(B, np.float64), 0
        for b, n in enumerate(counts.tolist()):
            sums[b] = d[at:at + n].sum()
            at += n
        return sums

    if lib.uk_sample_top_p(ptr(ids), ptr(d), ptr(counts), B, ptr(row_sums()), float(s.top_p)):
        raise MemoryError("the C sampler could not allocate its scratch")
    out = np.empty(B, np.int64)
    u = np.ascontiguousarray(u, dtype=np.float64)
    lib.uk_sample_pick(ptr(ids), ptr(d), ptr(counts), B, ptr(row_sums()) if s.top_p < 1 else None, ptr(u), ptr(out))
    return out


def top_entries(row: np.ndarray, k: int, stride: int = 8) -> tuple[np.ndarray, np.ndarray, np.generic]:
    """Every entry of ROW (1-D, finite) at least as large as its k-th largest value, ties included:
    (ids ascending, their values, that k-th value). 0 < k < len(row).

    Exact, and several times faster than np.partition on 16k logits: a cut c is read off a sorted
    1-in-STRIDE sample, low enough that about 1.5 k entries clear it; when at least k do, the k-th
    largest of the row is the k-th largest of those candidates. When fewer do, the whole row is sorted.
    """
    V = row.shape[0]
    sample_ = row[::stride]
    m = (k // stride) * 3 // 2 + 8  # the sample rank of the cut: ~1.5 k entries of the row above it
    if m < sample_.shape[0]:
        cut = np.sort(sample_)[sample_.shape[0] - m]
        ids = np.flatnonzero(row >= cut)
        if ids.shape[0] >= k:
            vals = row[ids]
            kth = np.sort(vals)[vals.shape[0] - k]
            sel = vals >= kth
            return ids[sel], vals[sel], kth
    kth = np.sort(row)[V - k]
    ids = np.flatnonzero(row >= kth)
    return ids, row[ids], kth


def cfg_mix(logits: np.ndarray, scale: float) -> np.ndarray:
    """Rows [0, B/2) are cond, [B/2, B) uncond -> uncond + scale * (cond - uncond), (B/2, V)."""
    half = logits.shape[0] // 2
    cond, uncond = logits[:half], logits[half:]
    return uncond + scale * (cond - uncond)
