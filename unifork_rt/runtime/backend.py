"""One interface for every backend: load / run / close, a context manager.

The base class owns the input checks and the host KV cache; a backend overrides only what
differs (`load`, `_run`, and `new_cache` where its buffers live on a device). Backends
import their engine (onnxruntime, tensorrt) inside their own module, never at the top.

    with get_backend("ort-cpu", bundle) as be:
        cache = be.new_cache("trunk", batch=2)
        out = be.run("trunk", {"x": x, "pos": pos, "start": start}, cache)   # writes kv_new at pos
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod

import numpy as np

from ..errors import InputError
from .bundle import Bundle, KVSpec

# name -> (module, class, what it needs). The default is ort-cpu.
BACKENDS = {
    "ort-cpu": ("unifork_rt.runtime.ort_backend", "OrtBackend", "onnxruntime (pip install 'unifork-rt[cpu]')"),
    "ort-cuda": ("unifork_rt.runtime.ort_backend", "OrtBackend", "onnxruntime-gpu (pip install 'unifork-rt[gpu]')"),
    "ort-tensorrt": ("unifork_rt.runtime.ort_backend", "OrtBackend",
                     "onnxruntime-gpu with TensorRT libraries (pip install 'unifork-rt[gpu]')"),
    "tensorrt": ("unifork_rt.engines.trt_backend", "TensorRTBackend",
                 "tensorrt and cuda-python on an NVIDIA GPU (pip install 'unifork-rt[tensorrt]')"),
}
DEFAULT_BACKEND = "ort-cpu"


class KVCache:
    """A fused KV buffer on the host: (layers, 2, B, kv_heads, max_seq, head_dim), allocated once."""

    def __init__(self, spec: KVSpec, batch: int, dtype: str):
        self.spec, self.batch = spec, batch
        self.buf = np.zeros(spec.shape(batch), dtype=dtype)

    def write(self, pos: int, new: np.ndarray) -> None:
        """Write the new K/V slices (layers, 2, B, kv_heads, T, head_dim) at positions [pos, pos + T)."""
        self.buf[:, :, :, :, pos:pos + new.shape[4]] = new


class Backend(ABC):
    name = "base"

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.closed = False

    # --- what a backend provides ---------------------------------------------------------
    @abstractmethod
    def load(self) -> "Backend":
        """Prepare every graph of the bundle (sessions, engines). Returns self."""

    @abstractmethod
    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        """Run one graph. With a cache: pass its buffer as `kv`, write `kv_new` at `pos`, and
        leave `kv_new` out of the result."""

    @property
    def providers(self) -> list[str]:
        """What actually executes the graphs (ONNX Runtime falls back to CPU silently: say so)."""
        return [self.name]

    @property
    def max_batch(self) -> int | None:
        """The most rows one run may carry (engines are built for a batch range), or None for no
        limit. The pipeline splits larger work (many captions, the 2n rows of a guided draw) into
        chunks of this size."""
        return None

    @property
    def decode_batch(self) -> int | None:
        """The most images one run of the vision decoder carries (None: all of a call's, up to max_batch)."""
        return self.max_batch

    def new_cache(self, graph: str, batch: int):
        spec = self.bundle.graphs[graph].kv
        if spec is None:
            raise ValueError(f"graph {graph} has no KV cache")
        return KVCache(spec, batch, self.bundle.float_dtype)

    def close(self) -> None:
        self.closed = True

    # --- shared ---------------------------------------------------------------------------
    def run(self, graph: str, feeds: dict[str, np.ndarray], cache=None) -> dict[str, np.ndarray]:
        if self.closed:
            raise RuntimeError(f"backend {self.name} is closed")
        self._check(graph, feeds, cache)
        return self._run(graph, feeds, cache)

    def _check(self, graph: str, feeds: dict[str, np.ndarray], cache) -> None:
        spec = self.bundle.graphs[graph]
        want = {n: spec.input(n) for n in spec.feeds}
        if set(feeds) != set(want):
            raise ValueError(f"{graph}: inputs {sorted(feeds)} != {sorted(want)}")
        if (cache is None) != (spec.kv is None):
            raise ValueError(f"{graph}: {'needs' if spec.kv else 'takes no'} KV cache")
        for name, value in feeds.items():
            w = want[name]
            if value.dtype != np.dtype(w["dtype"]) or value.ndim != len(w["shape"]):
                raise ValueError(f"{graph}.{name}: got {value.dtype}{list(value.shape)}, "
                                 f"expected {w['dtype']}{w['shape']}")
            for got, dim in zip(value.shape, w["shape"]):
                if isinstance(dim, int) and got != dim:
                    raise ValueError(f"{graph}.{name}: got shape {list(value.shape)}, expected {w['shape']}")
        if cache is not None and not 0 <= int(feeds["pos"]) < spec.kv.max_seq:
            # how many positions a call writes is the graph contract's business (the pipeline checks
            # whole sequences against max_seq); a start past the buffer's end is wrong for any graph
            pos = int(feeds["pos"])
            raise InputError(f"{graph}: position {pos} is past the end of its KV buffer (max_seq {spec.kv.max_seq}): "
                             f"shorten the sequence or re-export with --max-seq {max(pos, 0) + 64}")

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def get_backend(name: str, bundle: Bundle, **options) -> Backend:
    """Create and load a backend by name; an unknown or uninstalled one fails clearly."""
    if name not in BACKENDS:
        raise InputError(f"unknown backend {name!r}; valid backends: {', '.join(BACKENDS)}")
    module, cls, needs = BACKENDS[name]
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise InputError(f"backend {name!r} needs {needs}: {e}") from None
    return getattr(mod, cls)(bundle, variant=name, **options).load()
