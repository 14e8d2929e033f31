"""The native TensorRT backend: prebuilt engines, device KV buffers, one CUDA stream.

    load():  ENGINES/NAME.engine ─► check fingerprint (graph hash, TensorRT, GPU) ─► deserialize
             one execution context per optimization profile (prefill, decode), each bound to
             its profile once; device staging buffers at each tensor's largest shape
    run():   feeds ─H2D─► staging ─┐
             cache (device, fused) ┴─► context.execute_async_v3 ─► outputs (device)
                                        kv_new ─D2D, strided─► cache[..., pos:pos+T, :]
                                        other outputs ─D2H─► numpy (what sampling needs)

Letters: L layers, B batch, Hkv kv heads, S max_seq, T new tokens, Dh head dim.
The KV buffer stays on the GPU for the whole session; only the T new slices move, with one
cudaMemcpy2DAsync (rows = L*2*B*Hkv, each T*Dh elements, into a row pitch of S*Dh). The
graph's kv_new output has T slices while the buffer has S, so the buffer cannot be bound as
that output too. With cuda_graphs=True, each decode step (fixed shapes, fixed addresses)
replays a captured CUDA graph of the TensorRT launch instead of enqueuing it again.
"""

from __future__ import annotations

import math
import threading
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UniforkError
from ..runtime.backend import Backend
from ..runtime.bundle import Bundle, KVSpec
from .build import default_engines_dir, engine_path
from .fingerprint import StaleEngineError, check_engine, make_fingerprint
from .profiles import Profile, profiles_max_batch, select_profile
from .trt_env import CudaError, cuda_call, current_device, load_cudart, load_tensorrt, native_handle

MAX_CUDA_GRAPHS = 32  # captured decode steps kept (a few per open session)


@dataclass(frozen=True)
class Copy2D:
    """Arguments of cudaMemcpy2DAsync, in bytes, with the destination as an offset."""

    dst_offset: int
    dpitch: int
    spitch: int
    width: int
    height: int


def kv_write_plan(spec: KVSpec, batch: int, itemsize: int, pos: int, new_tokens: int) -> Copy2D:
    """Where kv_new (L, 2, B, Hkv, T, Dh), contiguous, lands in the buffer (L, 2, B, Hkv, S, Dh).

    Both are L*2*B*Hkv rows; a source row is T*Dh elements, a destination row S*Dh, and the
    new slices start pos*Dh elements into it.
    """
    if pos < 0 or pos + new_tokens > spec.max_seq:
        raise ValueError(f"positions [{pos}, {pos + new_tokens}) are outside the KV buffer of {spec.max_seq}")
    row = new_tokens * spec.head_dim * itemsize
    return Copy2D(dst_offset=pos * spec.head_dim * itemsize, dpitch=spec.max_seq * spec.head_dim * itemsize,
                  spitch=row, width=row, height=spec.layers * 2 * batch * spec.kv_heads)


class DeviceBuffer:
    """cudaMalloc'd bytes, freed by free() or when garbage collected."""

    def __init__(self, cudart, nbytes: int):
        self.nbytes = max(int(nbytes), 1)
        self.ptr = cuda_call(cudart, cudart.cudaMalloc(self.nbytes))
        self._finalizer = weakref.finalize(self, cudart.cudaFree, self.ptr)

    def free(self) -> None:
        self._finalizer()


class DeviceKVCache:
    """A fused KV buffer on the GPU: (L, 2, B, Hkv, S, Dh), zeroed and allocated once."""

    def __init__(self, cudart, spec: KVSpec, batch: int, dtype: str):
        self.cudart, self.spec, self.batch, self.dtype = cudart, spec, batch, np.dtype(dtype)
        self.shape = spec.shape(batch)
        self.mem = DeviceBuffer(cudart, math.prod(self.shape) * self.dtype.itemsize)
        # zeros, not garbage: masked slots still meet the values (0 x NaN is NaN)
        cuda_call(cudart, cudart.cudaMemset(self.mem.ptr, 0, self.mem.nbytes))

    @property
    def ptr(self) -> int:
        return self.mem.ptr

    def write(self, pos: int, src_ptr: int, new_tokens: int, stream) -> None:
        """Copy kv_new (L, 2, B, Hkv, T, Dh) from device memory into positions [pos, pos + T)."""
        c = kv_write_plan(self.spec, self.batch, self.dtype.itemsize, pos, new_tokens)
        cuda_call(self.cudart, self.cudart.cudaMemcpy2DAsync(
            self.ptr + c.dst_offset, c.dpitch, src_ptr, c.spitch, c.width, c.height,
            self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToDevice, stream))

    def to_host(self) -> np.ndarray:
        """The whole buffer as a numpy array (for tests and debugging; synchronous)."""
        out = np.empty(self.shape, self.dtype)
        cuda_call(self.cudart, self.cudart.cudaMemcpy(out.ctypes.data, self.ptr, out.nbytes,
                                                      self.cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost))
        return out

    def free(self) -> None:
        self.mem.free()


class _Graph:
    """One engine: its contexts (one per profile), profiles, tensor dtypes and staging buffers."""

    def __init__(self, name, engine, profiles: list[Profile], contexts, inputs, outputs, dtypes, buffers, dynamic):
        self.name, self.engine, self.profiles, self.contexts = name, engine, profiles, contexts
        self.inputs, self.outputs, self.dtypes, self.buffers, self.dynamic = inputs, outputs, dtypes, buffers, dynamic


class TensorRTBackend(Backend):
    """Runs the bundle's graphs with the engines `unifork-rt build` wrote (ENGINES/NAME.engine)."""

    name = "tensorrt"

    def __init__(self, bundle: Bundle, variant: str = "tensorrt", engines_dir: str | Path | None = None,
                 device: int = 0, cuda_graphs: bool = False, verbose: bool = False):
        super().__init__(bundle)
        self.name = variant
        self.engines_dir = Path(engines_dir) if engines_dir is not None else default_engines_dir(bundle.root)
        self.device_index, self.cuda_graphs, self.verbose = device, cuda_graphs, verbose
        self.graphs: dict[str, _Graph] = {}
        self._lock = threading.Lock()  # contexts and staging buffers are shared by all callers
        self._captured: OrderedDict = OrderedDict()  # (graph, profile, shapes, kv address) -> graph exec
        self._no_capture: set = set()
        self._last_shapes: dict = {}  # (graph, profile) -> the shapes of its last call

    # --- load -----------------------------------------------------------------------------------
    def load(self) -> "TensorRTBackend":
        self.trt = trt = load_tensorrt("the tensorrt backend")
        self.cudart = cudart = load_cudart("the tensorrt backend")
        self.gpu = current_device(cudart, self.device_index)
        self.stream = cuda_call(cudart, cudart.cudaStreamCreate())
        self._stream_handle = native_handle(self.stream)
        self.logger = trt.Logger(trt.Logger.INFO if self.verbose else trt.Logger.WARNING)
        self.runtime = trt.Runtime(self.logger)
        rebuild = f"unifork-rt build {self.bundle.root} --out {self.engines_dir}"
        try:
            for name, spec in self.bundle.graphs.items():
                path = engine_path(self.engines_dir, name)
                data = path.read_bytes() if path.is_file() else None
                expected = make_fingerprint(name, spec.sha256, trt.__version__, self.gpu.name,
                                            self.gpu.compute_capability)
                fp = check_engine(path, expected, data, rebuild=rebuild)
                engine = self.runtime.deserialize_cuda_engine(data)
                if engine is None:
                    raise StaleEngineError(f"TensorRT could not deserialize {path}: rebuild it with `{rebuild}`")
                self.graphs[name] = self._prepare(name, spec, engine, [Profile.from_dict(p) for p in fp["profiles"]],
                                                  rebuild)
            cuda_call(cudart, cudart.cudaStreamSynchronize(self.stream))
        except BaseException:
            self._release()  # what was allocated before the failure
            raise
        return self

    def _prepare(self, name, spec, engine, profiles: list[Profile], rebuild: str) -> _Graph:
        trt, cudart = self.trt, self.cudart
        names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
        inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if n not in inputs]
        want_in = [i["name"] for i in spec.inputs]
        want_out = [o["name"] for o in spec.outputs]
        if sorted(inputs) != sorted(want_in) or sorted(outputs) != sorted(want_out):
            raise StaleEngineError(f"engine {name} has inputs {inputs} / outputs {outputs}, the manifest "
                                   f"{want_in} / {want_out}: rebuild it with `{rebuild}`")
        if engine.num_optimization_profiles != len(profiles):
            raise StaleEngineError(f"engine {name} has {engine.num_optimization_profiles} optimization profiles, its "
                                   f"sidecar {len(profiles)}: rebuild it with `{rebuild}`")
        dtypes = {n: np.dtype(trt.nptype(engine.get_tensor_dtype(n))) for n in names}
        dynamic = {n for n in inputs if any(d < 0 for d in engine.get_tensor_shape(n))}
        contexts, largest = [], {}
        for k, p in enumerate(profiles):
            ctx = engine.create_execution_context()
            try:  # TensorRT's Python bindings raise RuntimeError here rather than return False
                selected, why = ctx.set_optimization_profile_async(k, self._stream_handle), ""
            except RuntimeError as e:
                selected, why = False, f" ({e})"
            if not selected:
                raise StaleEngineError(f"engine {name}: cannot select optimization profile {k}{why}: rebuild it "
                                       f"with `{rebuild}`")
            contexts.append(ctx)
            # the largest shape of every tensor under this profile sizes its staging buffer
            for n in inputs:
                if n in dynamic and n not in dict(p.shapes):
                    raise StaleEngineError(f"engine {name}: its sidecar profile {p.name} has no range for {n}: "
                                           f"rebuild it with `{rebuild}`")
                shape = tuple(p.shape(n).max) if n in dynamic else tuple(engine.get_tensor_shape(n))
                if n in dynamic and not ctx.set_input_shape(n, shape):
                    raise StaleEngineError(f"engine {name} refuses {n} {list(shape)} under profile {p.name}: rebuild "
                                           f"it with `{rebuild}`")
                largest[n] = max(largest.get(n, 0), math.prod(shape) * dtypes[n].itemsize)
            for n in outputs:
                shape = tuple(ctx.get_tensor_shape(n))
                if any(d < 0 for d in shape):
                    raise UniforkError(f"engine {name}: output {n} has a data-dependent shape {shape}")
                largest[n] = max(largest.get(n, 0), math.prod(shape) * dtypes[n].itemsize)
        buffers = {n: DeviceBuffer(cudart, size) for n, size in largest.items() if n != "kv"}
        return _Graph(name, engine, profiles, contexts, inputs, outputs, dtypes, buffers, dynamic)

    @property
    def max_batch(self) -> int | None:
        """The smallest batch limit over the engines' profiles (the pipeline chunks to it)."""
        limits = [profiles_max_batch(self.bundle.graphs[n], g.profiles) for n, g in self.graphs.items()]
        limits = [b for b in limits if b is not None]
        return min(limits) if limits else None

    @property
    def providers(self) -> list[str]:
        gpu = getattr(self, "gpu", None)
        trt = getattr(self, "trt", None)
        return [f"TensorRT {trt.__version__} on {gpu.name} (sm {gpu.sm})" if gpu and trt else self.name]

    # --- caches ---------------------------------------------------------------------------------
    def new_cache(self, graph: str, batch: int) -> DeviceKVCache:
        spec = self.bundle.graphs[graph].kv
        if spec is None:
            raise ValueError(f"graph {graph} has no KV cache")
        self._use_device()
        return DeviceKVCache(self.cudart, spec, batch, self.graphs[graph].dtypes["kv"])

    def _use_device(self) -> None:
        """CUDA's current device is per host thread (device 0 until set): select ours in every
        thread that calls in, or its allocations and launches land on another GPU."""
        cuda_call(self.cudart, self.cudart.cudaSetDevice(self.device_index))

    # --- run --------------------------------------------------------------------------------------
    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        with self._lock:
            self._use_device()
            return self._run_locked(self.graphs[graph], feeds, cache)

    def _run_locked(self, g: _Graph, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        cudart, stream = self.cudart, self.stream
        h2d, d2h = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        if cache is not None and not isinstance(cache, DeviceKVCache):
            raise TypeError(f"{g.name}: the tensorrt backend needs its own caches (backend.new_cache)")
        shapes = {n: v.shape for n, v in feeds.items()}
        if cache is not None:
            shapes["kv"] = cache.shape
        k = select_profile(g.profiles, shapes)
        ctx = g.contexts[k]
        host = {}
        for n, v in feeds.items():
            # engines keep the graph's I/O types; the cast only matters if a parser narrowed INT64 to INT32
            host[n] = np.ascontiguousarray(v, dtype=g.dtypes[n])
            if n in g.dynamic:
                self._set_shape(g, ctx, k, n, host[n].shape)
            cuda_call(cudart, cudart.cudaMemcpyAsync(g.buffers[n].ptr, host[n].ctypes.data, host[n].nbytes, h2d,
                                                     stream))
            self._bind(g, ctx, n, g.buffers[n].ptr)
        if cache is not None:
            self._set_shape(g, ctx, k, "kv", cache.shape)
            self._bind(g, ctx, "kv", cache.ptr)
        out_shapes = {}
        for n in g.outputs:
            out_shapes[n] = tuple(ctx.get_tensor_shape(n))
            self._bind(g, ctx, n, g.buffers[n].ptr)
        self._execute(g, k, ctx, shapes, cache)
        if cache is not None:
            cache.write(int(feeds["pos"]), g.buffers["kv_new"].ptr, out_shapes["kv_new"][4], stream)
        result = {}
        for n in g.outputs:
            if n == "kv_new":
                continue
            result[n] = np.empty(out_shapes[n], g.dtypes[n])
            cuda_call(cudart, cudart.cudaMemcpyAsync(result[n].ctypes.data, g.buffers[n].ptr, result[n].nbytes, d2h,
                                                     stream))
        # the host arrays above must outlive the async copies: wait before returning them
        cuda_call(cudart, cudart.cudaStreamSynchronize(stream))
        return result

    @staticmethod
    def _bind(g: _Graph, ctx, name: str, ptr: int) -> None:
        if not ctx.set_tensor_address(name, ptr):  # an unknown name or a misaligned address: nothing would run
            raise UniforkError(f"engine {g.name} refused the device address of {name}: the engine does not match "
                               "the bundle; rebuild it with `unifork-rt build`")

    @staticmethod
    def _set_shape(g: _Graph, ctx, k: int, name: str, shape) -> None:
        if not ctx.set_input_shape(name, tuple(shape)):  # select_profile chose k, so this is a bug or a stale engine
            raise UniforkError(f"engine {g.name} refused {name} {list(shape)} under its profile {g.profiles[k].name}")

    def _execute(self, g: _Graph, k: int, ctx, shapes: dict, cache) -> None:
        """Enqueue the engine; decode steps replay a captured CUDA graph when enabled."""
        decode = g.profiles[k].name in ("decode", "step")
        shape_key = tuple(sorted(shapes.items()))
        key = (g.name, k, shape_key, cache.ptr if cache is not None else 0)
        if self._last_shapes.get((g.name, k)) != shape_key:
            # a capture is valid for the context state it saw; new shapes on this context retire them
            self._last_shapes[(g.name, k)] = shape_key
            self._drop_captures(lambda old: old[:2] == (g.name, k))
        if not (self.cuda_graphs and decode) or key in self._no_capture:
            self._enqueue(ctx)
            return
        exe = self._captured.get(key)
        if exe is not None:
            self._captured.move_to_end(key)
            cuda_call(self.cudart, self.cudart.cudaGraphLaunch(exe, self.stream))
            return
        # the first such step runs uncaptured (TensorRT finishes its deferred setup on it) and
        # is then captured, without running, for the identical steps that follow
        self._enqueue(ctx)
        self._capture(ctx, key)

    def _enqueue(self, ctx) -> None:
        if not ctx.execute_async_v3(self._stream_handle):
            raise CudaError("TensorRT execute_async_v3 failed (see the TensorRT log)")

    def _capture(self, ctx, key) -> None:
        """Capture this step's launch; a step that cannot be captured runs uncaptured from now on."""
        cudart = self.cudart
        mode = cudart.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        cuda_call(cudart, cudart.cudaStreamSynchronize(self.stream))
        try:
            cuda_call(cudart, cudart.cudaStreamBeginCapture(self.stream, mode))
            try:
                launched = ctx.execute_async_v3(self._stream_handle)
            finally:
                ended = cudart.cudaStreamEndCapture(self.stream)  # close the capture whatever happened
            graph = cuda_call(cudart, ended)
            if not launched:
                raise CudaError("execute_async_v3 failed during capture")
            exe = cuda_call(cudart, cudart.cudaGraphInstantiateWithFlags(graph, 0))
            cuda_call(cudart, cudart.cudaGraphDestroy(graph))
        except CudaError:
            self._no_capture.add(key)
            cudart.cudaGetLastError()  # clear the error the failed capture left behind
            return
        self._captured[key] = exe
        while len(self._captured) > MAX_CUDA_GRAPHS:
            _, old = self._captured.popitem(last=False)
            cudart.cudaGraphExecDestroy(old)

    def _drop_captures(self, which) -> None:
        for key in [key for key in self._captured if which(key)]:
            self.cudart.cudaGraphExecDestroy(self._captured.pop(key))

    # --- close ------------------------------------------------------------------------------------
    def close(self) -> None:
        if not self.closed:
            self._release()
        super().close()

    def _release(self) -> None:
        """Free the device memory, captured graphs, contexts and the stream (caches belong to their owners)."""
        stream = getattr(self, "stream", None)
        if stream is None:
            return
        cudart = self.cudart
        cudart.cudaSetDevice(self.device_index)  # free on our GPU, whichever thread closes
        cudart.cudaStreamSynchronize(stream)
        self._drop_captures(lambda key: True)
        for g in self.graphs.values():
            for buf in g.buffers.values():
                buf.free()
            g.contexts.clear()
        self.graphs.clear()
        cudart.cudaStreamDestroy(stream)
        self.stream = None
