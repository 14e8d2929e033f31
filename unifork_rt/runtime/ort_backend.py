"""ONNX Runtime backend: CPU by default; CUDA and TensorRT execution providers on a GPU.

ONNX Runtime silently falls back to the CPU when a GPU provider cannot load; this backend
checks what each session actually got and refuses a silent fallback unless asked for it.

On the GPU providers the KV buffers stay on the device for a whole call (IOBinding):

    new_cache ─► two device OrtValues A, B (zeroed once)
    step:  feeds (host) ─┐
           kv = A ───────┴► graph ─► kv_new (device) ─► kv_write: Concat(A[..:pos], kv_new, A[pos+T:..]) ─► B
                                   ─► other outputs (host: what sampling needs)
           then A, B swap roles

ONNX Runtime cannot write into an input in place, so the update runs as a small graph
(`kv_write`, built at load with onnx.helper) on the CUDA provider into the other buffer: a
device-to-device copy of the buffer per step, instead of uploading the whole buffer from the
host and copying kv_new back, as plain session.run does. ort-cpu keeps the host buffers
(there is no device to save copies to); `iobinding=True` runs the device path on the CPU, which
is how the binding logic is tested without a GPU.

Bundles exported with `--graphs ort` (docs/GRAPHS.md) need none of this for trunk, branches and depth head:
their GroupQueryAttention nodes take each layer's K and V slice of the one buffer as both
`past_*` and `present_*`, bound by address through IOBinding (host or device buffer alike), and
write the new slices in place:

    buffer (L, 2, B, Hkv, S, Dh) ─► [i, 0] ─► past_key_i ═ present_key_i   (same address)
                                  ─► [i, 1] ─► past_value_i ═ present_value_i
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import weakref

import numpy as np

from ..errors import InputError, MissingDependencyError, ModelFolderError
from .backend import Backend
from .bundle import Bundle, KVSpec
from .qmatmul import mode as qmatmul_mode
from .qmatmul import ATTENTION_OP, FLOAT_KERNEL_OP, INTEGER_OP, set_session_threads

log = logging.getLogger(__name__)

_PROVIDERS = {
    "ort-cpu": ["CPUExecutionProvider"],
    "ort-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "ort-tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}
DEFAULT_TRT_MAX_BATCH = 8  # ort-tensorrt profiles: B in 1..8 (a guided draw of n images needs 2n rows)

# Intra-op threads: one pool per session, or one pool for the whole process (ONNX Runtime's global
# thread pool). A step chains sessions (trunk -> branch -> depth head); with a pool each, a pool must
# not spin after its graph (it would hold the cores the next graph needs), so its worker sleeps and is
# woken for every parallel op: a few hundred wake-ups a step, costly on a virtual machine. One shared
# pool may spin: the int4 caption step took 12.4 ms against 15.7 with a pool per session, spinning off
# (docs/BENCHMARKS.md "One thread pool"). But ONNX Runtime then refuses any session of the process that
# asks for its own pool, so only a process whose every session is made here (or with `session_options`)
# may share: the `unifork-rt` command and the bench's workers. UNIFORK_RT_ORT_POOL=session|shared overrides.
POOL_ENV = "UNIFORK_RT_ORT_POOL"
POOLS = ("session", "shared")
_shared_pool: list[int] = []  # the shared pool's size (0: ONNX Runtime's default), once this process made it
_pool_lock = threading.Lock()


def pool_choice(asked: str | None) -> str:
    """The pool a backend gets: UNIFORK_RT_ORT_POOL if set, else `asked`, else one per session."""
    env = os.environ.get(POOL_ENV, "").strip().lower()
    if asked is not None and asked not in POOLS:
        raise InputError(f"pool={asked!r}: the thread pool must be one of {', '.join(POOLS)}")
    choice = env or asked or "session"
    if choice not in POOLS:
        raise InputError(f"{POOL_ENV}={env}: the thread pool must be one of {', '.join(POOLS)}")
    return choice


def share_thread_pool(ort, threads: int | None) -> None:
    """Make this process's CPU sessions share one intra-op pool of `threads` (None: ONNX Runtime's default)."""
    size = threads or 0
    with _pool_lock:
        if not _shared_pool:
            try:
                ort.set_global_thread_pool_sizes(size, 1)
            except Exception as e:  # noqa: BLE001 - e.g. pools another library of this process made
                raise InputError(f"ONNX Runtime would not share one thread pool in this process "
                                 f"({_first_line(e)}): set {POOL_ENV}=session") from None
            _shared_pool.append(size)
        elif _shared_pool[0] != size:
            raise InputError(f"this process's ONNX Runtime sessions share one thread pool of "
                             f"{_shared_pool[0] or 'the default number of'} threads; a backend cannot ask for "
                             f"{threads or 'the default'}: use one thread count per process, or set {POOL_ENV}=session")


def shares_pool() -> bool:
    """Whether this process's CPU sessions share one pool (`share_thread_pool` ran)."""
    return bool(_shared_pool)


def session_options(ort, threads: int | None = None, spin: bool = False):
    """SessionOptions for a CPU session of this process: its own pool of `threads` (spinning only if `spin`),
    or, once the process shares a pool (`share_thread_pool`), that one, as ONNX Runtime then requires."""
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if _shared_pool:
        opts.use_per_session_threads = False
        return opts
    if threads:
        opts.intra_op_num_threads = threads
    # With ORT's default spinning, the pool of the graph that just finished keeps spinning on the cores
    # the next graph needs: on 2 cores the paper caption step took 112 ms chained against 64 ms for its
    # two graphs alone; with spinning off, 68 ms (docs/BENCHMARKS.md). spin=True restores ORT's default.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return opts


class DeviceKVCache:
    """A fused KV buffer as two OrtValues on the session's device, used in turns (see module doc)."""

    def __init__(self, ort, spec: KVSpec, batch: int, dtype: str, device_type: str, device_id: int, copies: int = 2):
        self.spec, self.batch, self.device_type, self.device_id = spec, batch, device_type, device_id
        self.dtype = np.dtype(dtype)
        # zeros, not garbage: masked slots still meet the values (0 x NaN is NaN). One array each: on
        # the CPU an OrtValue wraps the array's memory (kept alive here), on a GPU it is copied once.
        # A graph that writes in place (kv_io "shared") needs one copy, not two
        self._arrays = [np.zeros(spec.shape(batch), dtype=dtype) for _ in range(copies)]
        self.values = [ort.OrtValue.ortvalue_from_numpy(a, device_type, device_id) for a in self._arrays]
        self.current = 0

    @property
    def value(self):
        return self.values[self.current]

    def to_host(self) -> np.ndarray:
        """The whole buffer as numpy (tests, debugging)."""
        return self.value.numpy()


class OrtBackend(Backend):
    def __init__(self, bundle: Bundle, variant: str = "ort-cpu", threads: int | None = None,
                 allow_fallback: bool = False, cache_dir: str | None = None, spin: bool = False,
                 preload: bool | None = None, iobinding: bool | None = None, device: int = 0,
                 max_batch: int | None = None, pool: str | None = None, profile_prefix: str | None = None):
        super().__init__(bundle)
        self.name = variant
        self.threads = threads
        self.spin = spin
        self.pool = pool_choice(pool)  # "shared": ort-cpu sessions join the process's one pool (see POOL_ENV)
        # ONNX Runtime's profiler on every session, its files at this prefix (the bench's profile: the
        # sessions, options and kernels the runtime has)
        self.profile_prefix = profile_prefix
        # create every session in load(), not on first use: the default on GPU providers, so that
        # a provider that cannot start is reported at load and `providers` names what runs
        self.preload = variant != "ort-cpu" if preload is None else preload
        self.allow_fallback = allow_fallback
        self.device = device
        # the TensorRT provider's engines are built for B in 1..max_batch; others take any batch
        # unless a limit is asked for (the pipeline chunks to it)
        self._max_batch = max_batch if max_batch is not None else (
            DEFAULT_TRT_MAX_BATCH if variant == "ort-tensorrt" else None)
        if self._max_batch is not None and self._max_batch < 1:
            raise InputError(f"max_batch {self._max_batch} must be >= 1")
        self.iobinding = variant != "ort-cpu" if iobinding is None else iobinding
        self.device_type = "cuda" if variant in ("ort-cuda", "ort-tensorrt") else "cpu"
        # the TensorRT provider's engine cache: a per-user folder keyed by the bundle, never the
        # (possibly read-only, shared) installed package or bundle
        self.cache_dir = cache_dir or str(_default_cache_dir(bundle))
        self.sessions = {}
        # output names per graph, read once (not every step); an in-place graph's present_* outputs are
        # bound to its KV buffer, not returned, so they are left out
        self._outputs: dict[str, list[str]] = {}
        self.qmatmul_skipped: dict[str, str] = {}  # graph -> why our MatMulNBits kernels did not load there
        # cache -> (session, IOBinding) of an in-place (kv_io "shared") graph: the KV addresses bound once
        self._bindings = weakref.WeakKeyDictionary()

    @property
    def max_batch(self) -> int | None:
        return self._max_batch

    @property
    def decode_batch(self) -> int | None:
        """One image a run on the CPU: the paper decoder's widest activations are 128 x 256 x 256 floats (32 MiB) an
        image, and 4 images one at a time took 993-1021 ms where one run of 4 took 1045-1186 (4 of 4 rounds, the same
        bits: docs/results/bench/2026-12-06-shared-bcast/decoder-batch.txt). GPUs take the batch."""
        return 1 if self.device_type == "cpu" else self._max_batch

    def _provider_list(self, graph: str | None = None) -> list:
        if self.name == "ort-cpu":
            return _PROVIDERS["ort-cpu"]
        try:  # the TensorRT/CUDA provider options live with the engines package
            from ..engines.ort_providers import provider_list
            from ..engines.profiles import graph_profiles
        except ImportError:
            return _PROVIDERS[self.name]
        profile = None
        if self.name == "ort-tensorrt" and graph is not None:
            # the graph's own prefill profile (T from 1, so decode steps fit too): without one the
            # provider sizes its engine to the first shapes it sees and rebuilds at the first larger one
            profile = graph_profiles(self.bundle.graphs[graph], max_batch=self._max_batch, max_seq=self.bundle.max_seq,
                                     cells=self.bundle.config.image.num_cells)[0]
        return provider_list(self.name, self.cache_dir, fp16=self.bundle.precision == "fp16", device=self.device,
                             profile=profile)

    def load(self) -> "OrtBackend":
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError("the ONNX Runtime backend needs onnxruntime: pip install 'unifork-rt[cpu]' "
                                         "(or 'unifork-rt[gpu]' for onnxruntime-gpu)") from None
        available = ort.get_available_providers()
        first = _PROVIDERS[self.name][0] if self.name in _PROVIDERS else self.name
        if first not in available and not self.allow_fallback:
            raise InputError(f"backend {self.name} needs ONNX Runtime's {first}, but this onnxruntime offers only "
                             f"{', '.join(available)}: install onnxruntime-gpu (pip install 'unifork-rt[gpu]') "
                             "or choose --backend ort-cpu")
        if self.name != "ort-cpu" and self.bundle.variant != "portable":
            # TensorRT cannot build the contrib ops; CUDA's GroupQueryAttention takes fp16/bf16 only, and
            # the variant is exported in fp32 or quantized (CPU kernels)
            raise InputError(f"{self.bundle.root} holds `--graphs {self.bundle.variant}` graphs, built for ONNX "
                             f"Runtime's CPU kernels ({self.bundle.precision}; CUDA's GroupQueryAttention needs fp16 "
                             "and TensorRT cannot build contrib ops): use --backend ort-cpu, or export the portable "
                             f"graphs (--graphs portable) for {self.name}")
        if self.name == "ort-cpu" and (self.pool == "shared" or shares_pool()):
            # once the process shares a pool, every backend joins it (ONNX Runtime allows no other): its
            # size must be this backend's thread count, which our kernels split their work by
            share_thread_pool(ort, self.threads)
        # MatMulNBits (int4 / int8 bundles), the weight TransposeMatMuls of fp32 `--graphs ort` bundles and
        # GroupQueryAttention on our kernels where they build (runtime/qmatmul.py). Only the graphs the
        # manifest lists as MatMulNBits-quantized, or whose ops include TransposeMatMul or GroupQueryAttention,
        # get the library: its com.microsoft domain hides the contrib ops that ONNX Runtime's optimizer inserts
        # into a graph that does not import that domain itself (FusedMatMul, FusedConv, MatMulIntegerToFloat in
        # the connector of an int8-dynamic bundle), so those graphs fail to load with it. A graph with
        # GroupQueryAttention imports it: there the library's ops run where it defines them (the integer
        # DynamicQuantizeMatMul / MatMulIntegerToFloat of int8-dynamic graphs), and ONNX Runtime's own contrib
        # kernels elsewhere.
        quant = self.bundle.manifest.get("quantization") or {}
        graphs = quant.get("graphs") if quant.get("method") == "MatMulNBits" else None
        quant_graphs = frozenset(g for g in graphs if isinstance(g, str)) if isinstance(graphs, list) else frozenset()
        entries = self.bundle.manifest.get("graphs")
        entries = entries if isinstance(entries, dict) else {}

        def with_op(op: str) -> frozenset:
            return frozenset(g for g, e in entries.items() if isinstance(e, dict) and op in (e.get("ops") or ()))

        float_graphs, attention_graphs = with_op(FLOAT_KERNEL_OP), with_op(ATTENTION_OP)
        integer_graphs = with_op(INTEGER_OP) & attention_graphs  # those that import com.microsoft
        self._qmatmul_graphs, self.qmatmul = quant_graphs, None
        if self.name == "ort-cpu" and (quant_graphs or float_graphs or attention_graphs):
            from .qmatmul import attention_kernel, float_kernel, integer_kernel, library_for_sessions

            lib = library_for_sessions()
            if lib is not None and float_kernel(lib):  # not with UNIFORK_RT_FLOAT_KERNEL=0
                self._qmatmul_graphs = self._qmatmul_graphs | float_graphs
            if lib is not None and integer_kernel(lib):  # likewise
                self._qmatmul_graphs = self._qmatmul_graphs | integer_graphs
            if lib is not None and attention_kernel():  # not with UNIFORK_RT_ATTENTION=0
                self._qmatmul_graphs = self._qmatmul_graphs | attention_graphs
            if lib is not None and self._qmatmul_graphs:
                self.qmatmul = lib
        self._ort, self._first = ort, first
        self._lock = threading.Lock()
        self._kv_write = None
        if self.iobinding and any(spec.kv is not None for spec in self.bundle.graphs.values()):
            self._kv_write = self._kv_write_session()
        if self.preload:
            for name in self.bundle.graphs:
                self.session(name)
        return self

    def our_kernels(self, graph: str) -> bool:
        """Whether GRAPH's session runs unifork-rt's kernel library (once made: not where it failed to load)."""
        return self.qmatmul is not None and graph in self._qmatmul_graphs and graph not in self.qmatmul_skipped

    def _session_options(self, ort):
        opts = session_options(ort, self.threads, self.spin)
        if self.profile_prefix:
            opts.enable_profiling = True
            opts.profile_file_prefix = self.profile_prefix
        return opts

    def _kv_write_session(self):
        from ..engines.ort_providers import cuda_options

        model = kv_write_model(self.bundle.float_dtype)
        providers = ["CPUExecutionProvider"] if self.device_type == "cpu" else [
            ("CUDAExecutionProvider", cuda_options(self.device)), "CPUExecutionProvider"]
        return self._ort.InferenceSession(model, sess_options=self._session_options(self._ort), providers=providers)

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
                    sess = None
                    # options made per session, not at load: a pool the process came to share since
                    # then is the only one ONNX Runtime lets a new session have
                    if self.qmatmul is not None and name in self._qmatmul_graphs:
                        try:
                            set_session_threads(self.qmatmul, self.threads)
                            opts = self._session_options(self._ort)
                            opts.register_custom_ops_library(str(self.qmatmul))
                            sess = self._ort.InferenceSession(str(spec.path), sess_options=opts,
                                                              providers=self._provider_list(name))
                        except Exception as e:  # noqa: BLE001 - keep ONNX Runtime's kernel, and say why
                            if qmatmul_mode() == "on":
                                raise
                            self.qmatmul_skipped[name] = _first_line(e)
                            log.warning("graph %s: unifork-rt's matmul kernels not used (%s)", name,
                                        self.qmatmul_skipped[name])
                    if sess is None:
                        sess = self._ort.InferenceSession(str(spec.path), sess_options=self._session_options(self._ort),
                                                          providers=self._provider_list(name))
                except Exception as e:  # noqa: BLE001 - ORT raises its own types (Fail, InvalidGraph, ...)
                    raise ModelFolderError(f"ONNX Runtime cannot load graph {name} ({spec.path}): "
                                           f"{_first_line(e)}; "
                                           "re-export the bundle with `unifork-rt export`") from None
                got = sess.get_providers()
                if got[0] != self._first and not self.allow_fallback:
                    raise InputError(f"ONNX Runtime could not start {self._first} for graph {name} (it got {got}): "
                                     "check the CUDA/TensorRT libraries, or pass --allow-fallback to run on the CPU")
                self._outputs[name] = [o.name for o in sess.get_outputs() if not o.name.startswith("present_")]
                self.sessions[name] = sess
            return self.sessions[name]

    @property
    def providers(self) -> list[str]:
        got = {p for s in self.sessions.values() for p in s.get_providers()[:1]}
        return sorted(got) or [self.name]

    def new_cache(self, graph: str, batch: int):
        if not self.iobinding:
            return super().new_cache(graph, batch)
        g = self.bundle.graphs[graph]
        if g.kv is None:
            raise ValueError(f"graph {graph} has no KV cache")
        return DeviceKVCache(self._ort, g.kv, batch, self.bundle.float_dtype, self.device_type, self.device,
                             copies=1 if g.kv_io == "shared" else 2)

    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        sess = self.session(graph)
        if cache is not None and self.bundle.graphs[graph].kv_io == "shared":
            return self._run_shared(sess, graph, feeds, cache)
        if self.iobinding and isinstance(cache, DeviceKVCache):
            return self._run_bound(sess, graph, feeds, cache)
        if cache is not None:
            if self.iobinding or not hasattr(cache, "buf"):
                raise TypeError(f"{graph}: this cache belongs to another backend (use backend.new_cache)")
            feeds = {**feeds, "kv": cache.buf}
        names = self._outputs[graph]
        out = dict(zip(names, sess.run(names, feeds)))
        if cache is not None:
            cache.write(int(feeds["pos"]), out.pop("kv_new"))
        return out

    def _run_bound(self, sess, graph: str, feeds: dict[str, np.ndarray], cache: DeviceKVCache) -> dict:
        """One step with the KV buffer on the device: kv in, kv_new out and into the other buffer there."""
        io = sess.io_binding()
        for n, v in feeds.items():  # (np.ascontiguousarray would make the scalar pos 1-D)
            io.bind_cpu_input(n, v if v.flags.c_contiguous else np.ascontiguousarray(v))
        io.bind_ortvalue_input("kv", cache.value)
        names = self._outputs[graph]
        for n in names:  # kv_new stays on the device; what sampling needs comes to the host
            if n == "kv_new":
                io.bind_output(n, cache.device_type, self.device if cache.device_type != "cpu" else 0)
            else:
                io.bind_output(n, "cpu")
        sess.run_with_iobinding(io)
        values = dict(zip(names, io.get_outputs()))
        w = self._kv_write.io_binding()
        w.bind_ortvalue_input("kv", cache.value)
        w.bind_ortvalue_input("new", values.pop("kv_new"))
        w.bind_cpu_input("pos", np.asarray(feeds["pos"], dtype=np.int64).reshape(()))
        w.bind_ortvalue_output("out", cache.values[1 - cache.current])
        self._kv_write.run_with_iobinding(w)
        cache.current = 1 - cache.current
        return {n: v.numpy() for n, v in values.items()}

    def _run_shared(self, sess, graph: str, feeds: dict[str, np.ndarray], cache) -> dict:
        """One step of an `--graphs ort` graph: every layer's K and V slice of the cache's one buffer
        bound by address as both past_* and present_*, so the graph writes the new slices in place."""
        if isinstance(cache, DeviceKVCache):
            base, device_type, device_id = cache.value.data_ptr(), cache.device_type, cache.device_id
            dtype, spec, batch = cache.dtype, cache.spec, cache.batch
        elif hasattr(cache, "buf") and not self.iobinding:
            buf = cache.buf
            if not buf.flags.c_contiguous or buf.dtype != np.dtype(self.bundle.float_dtype):
                raise TypeError(f"{graph}: the KV buffer must be one C-contiguous {self.bundle.float_dtype} array "
                                "(use backend.new_cache)")
            base, device_type, device_id = buf.ctypes.data, "cpu", 0
            dtype, spec, batch = buf.dtype, cache.spec, cache.batch
        else:
            raise TypeError(f"{graph}: this cache belongs to another backend (use backend.new_cache)")
        names = self._outputs[graph]
        bound = self._bindings.get(cache)
        if bound is None or bound[0] is not sess:  # once per cache: 0.3 ms per 12-layer step saved
            io = sess.io_binding()
            for n in names:  # bound first, so that get_outputs() lists them first
                io.bind_output(n, "cpu")
            shape = [batch, spec.kv_heads, spec.max_seq, spec.head_dim]
            part = int(np.prod(shape)) * dtype.itemsize  # bytes of one layer's K (or V): buffer[i, j]
            for i in range(spec.layers):
                for j, kv in enumerate(("key", "value")):
                    ptr = base + (2 * i + j) * part
                    io.bind_input(f"past_{kv}_{i}", device_type, device_id, dtype, shape, ptr)
                    io.bind_output(f"present_{kv}_{i}", device_type, device_id, dtype, shape, ptr)
            self._bindings[cache] = bound = (sess, io)
        io = bound[1]
        for n, v in feeds.items():  # (np.ascontiguousarray would make the scalar pos 1-D)
            io.bind_cpu_input(n, v if v.flags.c_contiguous else np.ascontiguousarray(v))
        for n in names:  # a fresh host array per step (rebinding keeps each output's place in the list)
            io.bind_output(n, "cpu")
        sess.run_with_iobinding(io)
        values = io.get_outputs()
        return {n: values[k].numpy() for k, n in enumerate(names)}

    def close(self) -> None:
        self.sessions.clear()
        self._outputs.clear()
        self._bindings.clear()
        self._kv_write = None
        super().close()


def _first_line(e: Exception) -> str:
    """ONNX Runtime's error in one line (its messages run to pages)."""
    return str(e).splitlines()[0][:200] if str(e) else type(e).__name__


def _default_cache_dir(bundle: Bundle):
    from ..io import user_cache_dir

    key = hashlib.sha256(repr(sorted((n, s.sha256) for n, s in bundle.graphs.items())).encode()).hexdigest()[:16]
    return user_cache_dir("ort-tensorrt", key)


def kv_write_model(dtype: str) -> bytes:
    """The serialized ONNX graph out = kv with kv_new written at [pos, pos + T) along the
    sequence axis: Concat(kv[..., :pos, :], new, kv[..., pos + T:, :]). Every dimension is
    symbolic, so one session serves every attention graph and batch."""
    try:
        from onnx import TensorProto, helper
    except ImportError:
        raise MissingDependencyError("the ONNX Runtime GPU backends need the 'onnx' package for their on-device KV "
                                     "update: pip install 'unifork-rt[gpu]'") from None
    elem = {"float32": TensorProto.FLOAT, "float16": TensorProto.FLOAT16}[str(np.dtype(dtype))]
    buf = ["layers", 2, "batch", "kv_heads", "max_seq", "head_dim"]
    new = ["layers", 2, "batch", "kv_heads", "seq", "head_dim"]
    i64 = TensorProto.INT64

    def const(name, values):
        return helper.make_node("Constant", [], [name], value=helper.make_tensor(name, i64, [len(values)], values))

    nodes = [
        const("axis", [4]), const("zero", [0]), const("last", [np.iinfo(np.int64).max]),
        helper.make_node("Unsqueeze", ["pos", "zero"], ["start"]),  # () -> (1,): axes [0]
        helper.make_node("Shape", ["new"], ["t"], start=4, end=5),
        helper.make_node("Add", ["start", "t"], ["stop"]),
        helper.make_node("Slice", ["kv", "zero", "start", "axis"], ["head"]),
        helper.make_node("Slice", ["kv", "stop", "last", "axis"], ["tail"]),
        helper.make_node("Concat", ["head", "new", "tail"], ["out"], axis=4),
    ]
    graph = helper.make_graph(nodes, "kv_write",
                              [helper.make_tensor_value_info("kv", elem, buf),
                               helper.make_tensor_value_info("new", elem, new),
                               helper.make_tensor_value_info("pos", i64, [])],
                              [helper.make_tensor_value_info("out", elem, buf)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=8)
    return model.SerializeToString()
