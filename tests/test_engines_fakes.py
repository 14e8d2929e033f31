"""Stand-ins for `tensorrt` and cuda-python's runtime, so the build and backend code paths run
on a CPU-only machine. They follow the documented TensorRT 10 / cudart call signatures and
check what the real ones check (profile ranges, copy directions and bounds, capture rules):

    FakeCudart    device memory is host memory it owns; every copy validates that its device
                  side lies inside a live allocation and its host side does not; stream capture
                  records work and cudaGraphLaunch replays it (addresses baked, data read live)
    fake tensorrt Builder/OnnxParser/config/profiles record what they were given; an "engine"
                  is JSON naming the ONNX file and its profiles; an execution context runs the
                  graph with ONNX Runtime on the bytes at the bound addresses

They prove the plumbing (names, shapes, addresses, strided KV writes, profile choice,
fingerprints, files), not TensorRT's numerics: tests/test_engines_gpu.py does that on a GPU.
"""

from __future__ import annotations

import ctypes
import importlib.machinery
import json
import threading
import types
from types import SimpleNamespace

import numpy as np
import pytest



# --- cuda-python runtime ------------------------------------------------------------------------
class _Enum:
    def __init__(self, **members):
        self.__dict__.update(members)


class FakeStream:
    def __init__(self, handle):
        self.handle = handle

    def __int__(self):
        return self.handle


class FakeCudart(types.ModuleType):
    """cuda.bindings.runtime with memory in numpy arrays; results are (err, *values) tuples."""

    def __init__(self, devices: int = 1, total: int = 8 << 30, integrated: bool = True, name: bytes = b"Fake Orin",
                 driver_too_old: bool = False):
        super().__init__("cuda.bindings.runtime")
        self.__spec__ = importlib.machinery.ModuleSpec(self.__name__, None)  # others probe sys.modules' specs
        self.cudaError_t = _Enum(cudaSuccess=0, cudaErrorInvalidValue=1, cudaErrorInsufficientDriver=35,
                                 cudaErrorNoDevice=100, cudaErrorStreamCaptureUnsupported=900)
        self.cudaMemcpyKind = _Enum(cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2, cudaMemcpyDeviceToDevice=3)
        self.cudaStreamCaptureMode = _Enum(cudaStreamCaptureModeGlobal=0, cudaStreamCaptureModeThreadLocal=1)
        self.devices, self.total, self.integrated, self.name = devices, total, integrated, name
        self.driver_too_old = driver_too_old
        self.allocs: dict[int, np.ndarray] = {}
        self.alloc_device: dict[int, int] = {}  # allocation -> the device it was made on
        self._thread = threading.local()  # CUDA's current device is per host thread, 0 until set
        self.capturing = None  # the list recording captured work, while a capture is open
        self.launches = 0
        self.captures = 0
        self.copies2d = []

    @property
    def current(self) -> int:
        return getattr(self._thread, "device", 0)

    # memory bookkeeping
    def _device(self, ptr: int, nbytes: int) -> None:
        for base, arr in self.allocs.items():
            if base <= ptr and ptr + nbytes <= base + arr.nbytes:
                assert self.alloc_device[base] == self.current, \
                    f"memory of GPU {self.alloc_device[base]} used while this thread's current device is {self.current}"
                return
        raise AssertionError(f"device range [{ptr:#x}, +{nbytes}) is outside every live allocation")

    def _host(self, ptr: int) -> None:
        for base, arr in self.allocs.items():
            assert not base <= ptr < base + arr.nbytes, "a host pointer points into device memory"

    def _check_kind(self, dst, src, n, kind):
        H2D, D2H, D2D = (self.cudaMemcpyKind.cudaMemcpyHostToDevice, self.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                         self.cudaMemcpyKind.cudaMemcpyDeviceToDevice)
        if kind == H2D:
            self._device(dst, n), self._host(src)
        elif kind == D2H:
            self._host(dst), self._device(src, n)
        elif kind == D2D:
            self._device(dst, n), self._device(src, n)
        else:
            raise AssertionError(f"unknown copy kind {kind}")

    def _run(self, fn):
        """Work on a stream: recorded while a capture is open, done now otherwise."""
        if self.capturing is not None:
            self.capturing.append(fn)
        else:
            fn()

    # device
    def cudaGetDeviceCount(self):
        if self.driver_too_old:
            return (self.cudaError_t.cudaErrorInsufficientDriver, 0)
        return (0, self.devices) if self.devices else (self.cudaError_t.cudaErrorNoDevice, 0)

    def cudaSetDevice(self, index):
        if not 0 <= index < self.devices:
            return (self.cudaError_t.cudaErrorInvalidValue,)
        self._thread.device = index
        return (0,)

    def cudaGetDeviceProperties(self, index):
        return (0, SimpleNamespace(name=self.name + b"\0" * 8, major=8, minor=7, totalGlobalMem=self.total,
                                   integrated=int(self.integrated)))

    def cudaGetErrorName(self, err):
        names = {v: k for k, v in vars(self.cudaError_t).items()}
        return (0, names.get(err, f"cudaError{err}").encode())

    def cudaGetLastError(self):
        return (0,)

    # memory
    def cudaMalloc(self, nbytes):
        arr = np.full(nbytes, 0xAB, np.uint8)  # garbage, like real fresh memory
        self.allocs[arr.ctypes.data] = arr
        self.alloc_device[arr.ctypes.data] = self.current
        return (0, arr.ctypes.data)

    def cudaFree(self, ptr):
        self.allocs.pop(ptr)
        self.alloc_device.pop(ptr)
        return (0,)

    def cudaMemset(self, ptr, value, nbytes):
        self._device(ptr, nbytes)
        ctypes.memset(ptr, value, nbytes)
        return (0,)

    def cudaMemcpy(self, dst, src, nbytes, kind):
        assert self.capturing is None, "synchronous copy during a capture"
        self._check_kind(dst, src, nbytes, kind)
        ctypes.memmove(dst, src, nbytes)
        return (0,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        assert self.capturing is None or kind == self.cudaMemcpyKind.cudaMemcpyDeviceToDevice, \
            "host copies cannot be captured from pageable memory"
        self._check_kind(dst, src, nbytes, kind)
        self._run(lambda: ctypes.memmove(dst, src, nbytes))
        return (0,)

    def cudaMemcpy2DAsync(self, dst, dpitch, src, spitch, width, height, kind, stream):
        assert width <= dpitch and width <= spitch, "width must not exceed either pitch"
        self._check_kind(dst, src, 0, kind)
        self._check_kind(dst + (height - 1) * dpitch, src + (height - 1) * spitch, width, kind)
        self.copies2d.append((dpitch, spitch, width, height))

        def copy():
            for r in range(height):
                ctypes.memmove(dst + r * dpitch, src + r * spitch, width)
        self._run(copy)
        return (0,)

    # streams and graphs
    def cudaStreamCreate(self):
        return (0, FakeStream(0x5EED))

    def cudaStreamSynchronize(self, stream):
        assert self.capturing is None, "synchronize during a capture"
        return (0,)

    def cudaStreamDestroy(self, stream):
        return (0,)

    def cudaStreamBeginCapture(self, stream, mode):
        assert self.capturing is None
        self.capturing = []
        return (0,)

    def cudaStreamEndCapture(self, stream):
        work, self.capturing = self.capturing, None
        self.captures += 1
        return (0, SimpleNamespace(work=work))

    def cudaGraphInstantiateWithFlags(self, graph, flags):
        return (0, SimpleNamespace(work=list(graph.work)))

    def cudaGraphLaunch(self, exe, stream):
        self.launches += 1
        for fn in exe.work:
            fn()
        return (0,)

    def cudaGraphDestroy(self, graph):
        return (0,)

    def cudaGraphExecDestroy(self, exe):
        return (0,)


# --- tensorrt -----------------------------------------------------------------------------------
NP = {"FLOAT": np.float32, "HALF": np.float16, "INT64": np.int64, "INT32": np.int32, "BOOL": np.bool_}


def _onnx_io(path):
    import onnx

    m = onnx.load(str(path), load_external_data=False)

    def shapes(values):
        return {v.name: ([-1 if d.dim_param else d.dim_value for d in v.type.tensor_type.shape.dim],
                         [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim],
                         {1: "FLOAT", 10: "HALF", 7: "INT64", 6: "INT32", 9: "BOOL"}[v.type.tensor_type.elem_type])
                for v in values}
    return m, shapes(m.graph.input), shapes(m.graph.output)


def make_fake_tensorrt(cudart: FakeCudart, version: str = "10.99.0") -> types.ModuleType:
    trt = types.ModuleType("tensorrt")
    trt.__spec__ = importlib.machinery.ModuleSpec("tensorrt", None)  # torch._dynamo probes sys.modules' specs
    trt.__version__ = version
    trt.stats = SimpleNamespace(builds=0, configs=[], networks=[], parsed=[])

    class Logger:
        VERBOSE, INFO, WARNING, ERROR = 0, 1, 2, 3

        def __init__(self, severity=2):
            self.min_severity = severity

    trt.Logger = Logger
    trt.TensorIOMode = _Enum(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.MemoryPoolType = _Enum(WORKSPACE="WORKSPACE")
    trt.BuilderFlag = _Enum(FP16="FP16", INT8="INT8", TF32="TF32")
    trt.nptype = lambda dt: NP[dt]

    class Tensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype, self.is_shape_tensor = name, tuple(shape), dtype, False

    class Network:
        def __init__(self, flags):
            self.flags, self.inputs, self.path = flags, [], None
            trt.stats.networks.append(self)

        @property
        def num_inputs(self):
            return len(self.inputs)

        def get_input(self, i):
            return self.inputs[i]

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.errors = network, []

        def parse_from_file(self, path):
            from unifork_rt.engines import opcheck

            trt.stats.parsed.append(path)
            m, ins, _ = _onnx_io(path)
            self.errors = [str(p) for p in opcheck.check_graph(m, "g") if p.severity == "error"]
            self.network.path = path
            self.network.inputs = [Tensor(n, s, dt) for n, (s, _, dt) in ins.items()]
            return not self.errors

        @property
        def num_errors(self):
            return len(self.errors)

        def get_error(self, i):
            return self.errors[i]

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, lo, opt, hi):
            assert all(a <= b <= c for a, b, c in zip(lo, opt, hi)), f"{name}: min <= opt <= max violated"
            self.shapes[name] = (list(lo), list(opt), list(hi))

    class TimingCache:
        def __init__(self, data):
            self.data = bytes(data)

        def serialize(self):
            return memoryview(self.data + b"t")  # TensorRT returns an IHostMemory (buffer protocol)

    class Config:
        def __init__(self):
            self.pools, self.flags, self.profiles, self.cache = {}, {"TF32"}, [], None  # TF32: on by default
            trt.stats.configs.append(self)

        def set_memory_pool_limit(self, pool, size):
            self.pools[pool] = size

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def add_optimization_profile(self, profile):
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            return TimingCache(data)

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache.data.startswith(b"other-gpu"):
                return False
            self.cache = cache
            return True

        def get_timing_cache(self):
            return self.cache

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            return Network(flags)

        def create_builder_config(self):
            return Config()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            trt.stats.builds += 1
            dynamic = {t.name for t in network.inputs if -1 in t.shape}
            for p in config.profiles:  # TensorRT refuses a profile that misses a dynamic input
                if set(p.shapes) != dynamic:
                    return None
            return memoryview(json.dumps({"fake": "engine", "onnx": str(network.path), "trt": trt.__version__,
                                          "profiles": [p.shapes for p in config.profiles],
                                          "flags": sorted(config.flags)}).encode())

    class Context:
        def __init__(self, engine):
            self.engine, self.profile, self.shapes, self.addresses = engine, 0, {}, {}

        def set_optimization_profile_async(self, index, stream_handle):
            assert isinstance(stream_handle, int)
            if not 0 <= index < len(self.engine.profiles):  # the bindings raise; they never return False
                raise RuntimeError("Error in set optimization profile async.")
            self.profile = index
            return True

        def set_input_shape(self, name, shape):
            lo, _, hi = self.engine.profiles[self.profile][name]
            if len(shape) != len(lo) or not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
                return False
            self.shapes[name] = tuple(int(d) for d in shape)
            return True

        def set_tensor_address(self, name, ptr):
            if name not in self.engine.ins and name not in self.engine.outs:
                return False  # TensorRT logs an error and returns False; nothing is bound
            self.addresses[name] = int(ptr)
            return True

        def _dims(self):
            dims = {}
            for name, (_, named, _) in self.engine.ins.items():
                for d, v in zip(named, self.get_tensor_shape(name)):
                    if isinstance(d, str):
                        dims[d] = v
            return dims

        def get_tensor_shape(self, name):
            if name in self.engine.ins:
                static, _, _ = self.engine.ins[name]
                return self.shapes.get(name, tuple(static))
            _, named, _ = self.engine.outs[name]
            dims = self._dims()
            return tuple(dims.get(d, -1) if isinstance(d, str) else d for d in named)

        def execute_async_v3(self, stream_handle):
            assert isinstance(stream_handle, int)
            e = self.engine
            missing = [n for n in list(e.ins) + list(e.outs) if n not in self.addresses]
            assert not missing, f"no address for {missing}"
            ins = {n: (self.addresses[n], self.get_tensor_shape(n), NP[e.ins[n][2]]) for n in e.ins}
            outs = {n: (self.addresses[n], self.get_tensor_shape(n), NP[e.outs[n][2]]) for n in e.outs}

            def work():  # reads and writes the bound memory when it runs (now, or at replay)
                feeds = {}
                for n, (ptr, shape, dt) in ins.items():
                    nbytes = int(np.prod(shape)) * np.dtype(dt).itemsize
                    cudart._device(ptr, nbytes)
                    feeds[n] = np.frombuffer((ctypes.c_char * nbytes).from_address(ptr), dt).reshape(shape).copy()
                for n, value in zip(e.outs, e.session.run(list(e.outs), feeds)):
                    ptr, shape, dt = outs[n]
                    value = np.ascontiguousarray(value, dt)
                    assert value.shape == tuple(shape), (n, value.shape, shape)
                    cudart._device(ptr, value.nbytes)
                    ctypes.memmove(ptr, value.ctypes.data, value.nbytes)
            cudart._run(work)
            return True

    class Engine:
        def __init__(self, spec):
            import onnxruntime as ort

            _, self.ins, self.outs = _onnx_io(spec["onnx"])
            self.names = list(self.ins) + list(self.outs)
            self.profiles = spec["profiles"]
            opts = ort.SessionOptions()
            opts.intra_op_num_threads = 1  # tiny graphs; threads only add contention on a shared machine
            self.session = ort.InferenceSession(spec["onnx"], opts, providers=["CPUExecutionProvider"])

        @property
        def num_io_tensors(self):
            return len(self.names)

        @property
        def num_optimization_profiles(self):
            return len(self.profiles)

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return trt.TensorIOMode.INPUT if name in self.ins else trt.TensorIOMode.OUTPUT

        def get_tensor_dtype(self, name):
            return (self.ins.get(name) or self.outs[name])[2]

        def get_tensor_shape(self, name):
            return tuple((self.ins.get(name) or self.outs[name])[0])

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            try:
                spec = json.loads(bytes(data))
            except ValueError:
                return None
            return Engine(spec) if spec.get("fake") == "engine" and spec["trt"] == trt.__version__ else None

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture
def fake_gpu(monkeypatch):
    """Install the fakes as `tensorrt` and `cuda.bindings.runtime` for one test."""
    pytest.importorskip("onnxruntime")
    cudart = FakeCudart()
    trt = make_fake_tensorrt(cudart)
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", trt)
    monkeypatch.setitem(__import__("sys").modules, "cuda.bindings.runtime", cudart)
    return SimpleNamespace(trt=trt, cudart=cudart)


# --- the fakes check what the real calls check --------------------------------------------------
def test_fake_cudart_checks_copies():
    rt = FakeCudart()
    ptr = rt.cudaMalloc(64)[1]
    host = np.zeros(16, np.float32)
    kinds = rt.cudaMemcpyKind
    assert rt.cudaMemcpyAsync(ptr, host.ctypes.data, 64, kinds.cudaMemcpyHostToDevice, None) == (0,)
    with pytest.raises(AssertionError, match="outside every live allocation"):
        rt.cudaMemcpyAsync(ptr + 8, host.ctypes.data, 64, kinds.cudaMemcpyHostToDevice, None)
    with pytest.raises(AssertionError, match="host pointer points into device memory"):
        rt.cudaMemcpyAsync(ptr, ptr, 8, kinds.cudaMemcpyHostToDevice, None)
    with pytest.raises(AssertionError, match="width must not exceed"):
        rt.cudaMemcpy2DAsync(ptr, 8, ptr, 16, 12, 2, kinds.cudaMemcpyDeviceToDevice, None)
    rt.cudaFree(ptr)
    assert rt.allocs == {}
