"""What TensorRT and CUDA this machine has: lazy imports with install hints, the current GPU.

Nothing here is imported at module level: `import unifork_rt.engines.build` works on a
machine without TensorRT, and only the functions that need the GPU say what is missing.
cuda-python's runtime bindings are `cuda.bindings.runtime` (cuda-python >= 12.6; the older
`cuda.cudart` still works there and is the only name before 12.6).
"""

from __future__ import annotations

import importlib
import platform
from dataclasses import dataclass

from ..errors import MissingDependencyError, UniforkError

MIN_TENSORRT = 10  # the API used here: named I/O tensors, execute_async_v3, INT64 I/O, memory pools


class CudaError(UniforkError):
    """A CUDA runtime call failed."""


def install_hint(machine: str | None = None) -> str:
    """How to get TensorRT and cuda-python on this kind of machine."""
    machine = machine or platform.machine()
    if machine in ("aarch64", "arm64"):
        return ("on a Jetson, TensorRT comes with JetPack (JetPack 6.x ships TensorRT 10): `sudo apt install "
                "python3-libnvinfer` and run unifork-rt from the system Python or a venv made with "
                "`python3 -m venv --system-site-packages`; then `pip install cuda-python==12.6` (match JetPack's "
                "CUDA version)")
    return ("on x86-64 with an NVIDIA driver for CUDA 12 or newer: `pip install 'unifork-rt[tensorrt]'` (the tensorrt and "
            "cuda-python wheels); or use the ONNX Runtime GPU backends: `pip install 'unifork-rt[gpu]'` and "
            "--backend ort-cuda")


def load_tensorrt(purpose: str):
    """The tensorrt module (>= 10), or a MissingDependencyError that says how to install it."""
    try:
        trt = importlib.import_module("tensorrt")
    except ImportError as e:
        raise MissingDependencyError(f"{purpose} needs NVIDIA TensorRT (the 'tensorrt' Python package), which is "
                                     f"not installed ({e}); {install_hint()}") from None
    major = int(str(getattr(trt, "__version__", "0")).split(".")[0] or 0)
    if major < MIN_TENSORRT:
        raise MissingDependencyError(f"{purpose} needs TensorRT {MIN_TENSORRT} or newer; this is TensorRT "
                                     f"{trt.__version__}: {install_hint()}")
    return trt


def load_cudart(purpose: str):
    """cuda-python's runtime API module, or a MissingDependencyError with the install hint."""
    errors = []
    for name in ("cuda.bindings.runtime", "cuda.cudart"):
        try:
            return importlib.import_module(name)
        except ImportError as e:
            errors.append(f"{name}: {e}")
    raise MissingDependencyError(f"{purpose} needs cuda-python for GPU memory and streams, which is not installed "
                                 f"({'; '.join(errors)}); {install_hint()}")


def cuda_call(cudart, result):
    """Unpack a cuda-python result tuple (err, *values); raise CudaError unless err is success."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if err != cudart.cudaError_t.cudaSuccess:
        name = cudart.cudaGetErrorName(err)
        name = name[1] if isinstance(name, tuple) else name
        name = name.decode() if isinstance(name, bytes) else str(name)
        raise CudaError(f"CUDA runtime error {name} ({err})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def native_handle(obj) -> int:
    """The integer address of a CUDA object (a stream), as TensorRT's Python API takes it."""
    try:
        from cuda.bindings.utils import get_cuda_native_handle  # cuda-python >= 12.9: int(obj) is deprecated

        return int(get_cuda_native_handle(obj))
    except ImportError:
        return int(obj)


@dataclass(frozen=True)
class Device:
    index: int
    name: str
    compute_capability: tuple[int, int]
    total_bytes: int
    integrated: bool  # a Jetson: GPU and CPU share the same memory

    @property
    def sm(self) -> str:
        return f"{self.compute_capability[0]}.{self.compute_capability[1]}"


def current_device(cudart, index: int = 0) -> Device:
    """Select GPU `index` and describe it; a MissingDependencyError when no GPU is visible."""
    result = cudart.cudaGetDeviceCount()
    try:
        count = cuda_call(cudart, result)
    except CudaError as e:
        count, why = 0, str(e)
    else:
        why = "cudaGetDeviceCount found none"
    if count == 0 and result[0] == cudart.cudaError_t.cudaErrorInsufficientDriver:
        raise MissingDependencyError(f"the NVIDIA driver is older than the CUDA runtime of the installed cuda-python "
                                     f"({why}): install the cuda-python that matches the driver's CUDA version "
                                     "(`nvidia-smi` shows it), e.g. `pip install 'cuda-python>=12,<13'` for a CUDA 12 "
                                     "driver, or update the driver")
    if count == 0:
        raise MissingDependencyError(f"no NVIDIA GPU is visible ({why}): the TensorRT backend needs a CUDA GPU and "
                                     "its driver; on a CPU-only machine use --backend ort-cpu")
    if not 0 <= index < count:
        raise UniforkError(f"GPU {index} does not exist: this machine has {count} (0..{count - 1})")
    cuda_call(cudart, cudart.cudaSetDevice(index))
    prop = cuda_call(cudart, cudart.cudaGetDeviceProperties(index))
    name = prop.name
    name = name.split(b"\0")[0].decode(errors="replace") if isinstance(name, bytes) else str(name)
    return Device(index, name.strip(), (int(prop.major), int(prop.minor)), int(prop.totalGlobalMem),
                  bool(prop.integrated))
