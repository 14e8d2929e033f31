"""ONNX Runtime backend: CPU by default; CUDA and TensorRT execution providers on a GPU.

ONNX Runtime silently falls back to the CPU when a GPU provider cannot load; this backend
checks what each session actually got and refuses a silent fallback unless asked for it.
"""

from __future__ import annotations

import threading

import numpy as np

from ..errors import InputError, MissingDependencyError, ModelFolderError
from .backend import Backend
from .bundle import Bundle

_PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class OrtBackend(Backend):
    def __init__(self, bundle: Bundle, variant: str = "ort-cpu", threads: int | None = None,
                 allow_fallback: bool = False, cache_dir: str | None = None, spin: bool = False,
                 preload: bool | None = None):
        super().__init__(bundle)
        self.name = variant
        self.threads = threads
        self.spin = spin
        # create every session in load(), not on first use: the default on GPU providers, so that
        # a provider that cannot start is reported at load and `providers` names what runs
        self.preload = variant != "ort-cpu" if preload is None else preload
        self.allow_fallback = allow_fallback
        self.cache_dir = cache_dir or str(bundle.root / "ort_cache")
        self.sessions = {}
        self._outputs: dict[str, list[str]] = {}  # output names per graph, read once (not every step)

    def _provider_list(self) -> list:
        if self.name == "ort-cpu":
            return _PROVIDERS["ort-cpu"]
        try:  # the TensorRT/CUDA provider options live with the engines package
            from ..engines.ort_providers import provider_list

            return provider_list(self.name, self.cache_dir, fp16=self.bundle.precision == "fp16")
        except ImportError:
            return _PROVIDERS[self.name]

    def load(self) -> "OrtBackend":
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("the ONNX Runtime backend needs onnxruntime: pip install 'unifork-rt[cpu]' "
                                         "(or 'unifork-rt[gpu]' for onnxruntime-gpu)") from None
        available = ort.get_available_providers()
        wanted = self._provider_list()
        first = wanted[0] if isinstance(wanted[0], str) else wanted[0][0]
        if first not in available and not self.allow_fallback:
            raise InputError(f"backend {self.name} needs ONNX Runtime's {first}, but this onnxruntime offers only "
                             f"{', '.join(available)}: install onnxruntime-gpu (pip install 'unifork-rt[gpu]') "
                             "or choose --backend ort-cpu")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if self.threads:
            opts.intra_op_num_threads = self.threads
        # Every step chains sessions (trunk -> branch -> depth head), each with its own intra-op
        # pool. With ORT's default spinning, the pool of the graph that just finished keeps
        # spinning on the cores the next graph needs: on 2 cores the paper caption step took
        # 112 ms chained against 64 ms for its two graphs alone; with spinning off, 68 ms
        # (docs/BENCHMARKS.md). spin=True restores ORT's default.
        opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if self.spin else "0")
        self._ort, self._opts, self._wanted, self._first = ort, opts, wanted, first
        self._lock = threading.Lock()
        if self.preload:
            for name in self.bundle.graphs:
                self.session(name)
        return self

    def session(self, name: str):
        """The graph's session, created on first use: a caption never loads the drawing graphs
        (at `paper` fp32 the depth head, generation branch and image decoder are 2.4 of the bundle's 4.9 GB)."""
        sess = self.sessions.get(name)
        if sess is not None:
            return sess
        with self._lock:
            if name not in self.sessions:
                spec = self.bundle.graphs[name]
                try:
                    sess = self._ort.InferenceSession(str(spec.path), sess_options=self._opts, providers=self._wanted)
                except Exception as e:  # noqa: BLE001 - ORT raises its own types (Fail, InvalidGraph, ...)
                    raise ModelFolderError(f"ONNX Runtime cannot load graph {name} ({spec.path}): "
                                           f"{str(e).splitlines()[0][:200] if str(e) else type(e).__name__}; "
                                           "re-export the bundle with `unifork-rt export`") from None
                got = sess.get_providers()
                if got[0] != self._first and not self.allow_fallback:
                    raise InputError(f"ONNX Runtime could not start {self._first} for graph {name} (it got {got}): "
                                     "check the CUDA/TensorRT libraries, or pass --allow-fallback to run on the CPU")
                self._outputs[name] = [o.name for o in sess.get_outputs()]
                self.sessions[name] = sess
            return self.sessions[name]

    @property
    def providers(self) -> list[str]:
        got = {p for s in self.sessions.values() for p in s.get_providers()[:1]}
        return sorted(got) or [self.name]

    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        sess = self.session(graph)
        if cache is not None:
            feeds = {**feeds, "kv": cache.buf}
        names = self._outputs[graph]
        out = dict(zip(names, sess.run(names, feeds)))
        if cache is not None:
            cache.write(int(feeds["pos"]), out.pop("kv_new"))
        return out

    def close(self) -> None:
        self.sessions.clear()
        self._outputs.clear()
        super().close()

