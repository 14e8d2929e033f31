"""Bounds on what the runtime accepts: option values, seeds, and the memory a request needs.

Every value a caller or a bundle gives is checked here at the API boundary, so that a bad
value fails with one line before any work starts, not deep in numpy or ONNX Runtime.
Memory limits come from the machine: a request whose estimate exceeds the memory available
now is refused with the estimate, instead of starting an allocation that cannot succeed.
"""

from __future__ import annotations

import math
import numbers
import os
from dataclasses import dataclass

from ..errors import InputError

MAX_SEED = 2**63 - 1  # numpy's generators take larger ints, but seeds are documented as int64
MAX_CFG_SCALE = 100.0  # larger scales only overflow the mix; the image stops changing long before
MIN_TEMPERATURE = 1e-4  # 0 is greedy; smaller positive values only overflow logits / T
MAX_TEMPERATURE = 1e4
MAX_TOP_K = 2**31 - 1
MAX_SEQ = 1 << 20  # a KV buffer longer than this is a damaged manifest, not a model


def integer(value, what: str, lo: int, hi: int) -> int:
    """A true integer (not a bool, not 2.5, not "3") in [lo, hi]."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{what} must be an integer, got {_show(value)}")
    value = int(value)
    if not lo <= value <= hi:
        raise InputError(f"{what} {value} must be in [{lo}, {hi}]")
    return value


def real(value, what: str) -> float:
    """A finite real number (int or float, not a bool, not a string)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{what} must be a number, got {_show(value)}")
    try:
        value = float(value)
    except OverflowError:  # an int too large for a float
        raise InputError(f"{what} {value} must be a finite number") from None
    if not math.isfinite(value):
        raise InputError(f"{what} {value} must be a finite number")
    return value


def seed(value) -> int:
    return integer(value, "seed", 0, MAX_SEED)


def seed_for(base: int, index: int) -> int:
    """The seed of the index-th prompt of a call: base + index, wrapped into [0, MAX_SEED]."""
    return (seed(base) + index) % (MAX_SEED + 1)


def cfg_scale(value) -> float:
    value = real(value, "cfg-scale")
    if not 0 <= value <= MAX_CFG_SCALE:
        raise InputError(f"cfg-scale {value} must be in [0, {MAX_CFG_SCALE:g}] (1 = no guidance)")
    return value


def temperature(value) -> float:
    value = real(value, "temperature")
    if value < 0:
        raise InputError(f"temperature {value} must be >= 0 (0 = greedy)")
    if value != 0 and not MIN_TEMPERATURE <= value <= MAX_TEMPERATURE:
        raise InputError(f"temperature {value} must be 0 (greedy) or in [{MIN_TEMPERATURE:g}, {MAX_TEMPERATURE:g}]")
    return value


def top_k(value) -> int:
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and value < 0:
        raise InputError(f"top-k {value} must be >= 0 (0 = off)")
    return integer(value, "top-k", 0, MAX_TOP_K)


def top_p(value) -> float:
    value = real(value, "top-p")
    if not 0 < value <= 1:
        raise InputError(f"top-p {value} must be in (0, 1] (1 = off)")
    return value


def _show(value) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:40] + '…' if len(text) > 40 else text}"


# --- memory --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Estimate:
    """Bytes a request needs, and what the number counts (for the message)."""

    bytes: int
    what: str


def available_memory() -> int:
    """Bytes this process can allocate now without swapping (MemAvailable), or physical memory."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse what we cannot judge


def gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**27 else f"{n / 2**20:.1f} MiB"


def check_memory(est: Estimate, limit: int | None, fix: str) -> None:
    """Refuse a request whose estimate exceeds `limit` bytes (default: the memory available now)."""
    limit = available_memory() if limit is None else limit
    if est.bytes > limit:
        raise InputError(f"{est.what} needs about {gib(est.bytes)} of memory, more than the {gib(limit)} "
                         f"available: {fix}")


def kv_bytes(spec, batch: int, itemsize: int) -> int:
    """One fused KV buffer (layers, 2, batch, kv_heads, max_seq, head_dim)."""
    return math.prod(spec.shape(batch)) * itemsize


def image_bytes(cfg, images: int, itemsize: int) -> int:
    """The image tokenizer's largest live activations per image (its widest full-resolution
    layer, input and output, twice over for the convolution's temporaries) plus the pixels."""
    p = cfg.image.image_size
    widest = max(cfg.image.channels) if cfg.image.channels else 3
    return images * (4 * widest * p * p + 3 * p * p) * itemsize


def attention_bytes(cfg, batch: int, new: int, max_seq: int, itemsize: int) -> int:
    """A prefill's attention scores and MLP activations in one layer (the peak of one graph call)."""
    t = cfg.text
    return batch * new * (t.num_heads * max_seq + 3 * t.intermediate_size + 4 * t.hidden_size) * itemsize
