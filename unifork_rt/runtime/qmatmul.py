"""Our own kernels for ONNX Runtime's MatMulNBits on x86-64 CPUs (issue #16), as a custom-op library.

ONNX Runtime's MatMulNBits kernels (MLAS) are compute-bound at a handful of rows: a guided
`draw --n 4` (8 rows) cost 2.3x the time of `--n 1` (2 rows) in int4, where a memory-bound
kernel costs little more. `kernels/qmatmul_kernels.c` repacks each weight matrix once, at load,
into groups of 16 columns, so one AVX-512 VNNI instruction multiplies 16 columns by 4 activation
bytes with no horizontal sums (VPMADDUBSW in two halves on AVX2 CPUs); the activations are
quantized to int8 per block as MatMulNBits does at accuracy level 4, so the results agree with
ONNX Runtime's to float rounding. `kernels/qmatmul_op.c` registers it as the CPU kernel of
com.microsoft MatMulNBits in our sessions: the graphs are unchanged.

The library is compiled from the C files in `kernels/` (SOURCES) on first use with the system C compiler and cached
(`user_cache_dir("kernels")`); where there is no compiler, no x86-64 CPU with AVX2, or
UNIFORK_RT_QMATMUL=0, sessions keep ONNX Runtime's own kernel. UNIFORK_RT_QMATMUL=1 makes a
missing library an error instead.

The same library runs com.microsoft TransposeMatMul (fp32 `--graphs ort` weights, fmatmul_kernels.c) and
GroupQueryAttention (attn_kernels.c: one task per row and KV head reading the cache directly, where ONNX
Runtime's kernel ran two packed GEMMs per row and query head); UNIFORK_RT_ATTENTION=0 keeps ONNX Runtime's
GroupQueryAttention. It runs com.microsoft SkipLayerNormalization too, the depth head's (norm_kernels.c: ONNX
Runtime's took about 3 us a row of 896; UNIFORK_RT_NORM=0 keeps it). On AVX-512 VNNI CPUs it also runs
com.microsoft DynamicQuantizeMatMul and MatMulIntegerToFloat, the ops ONNX Runtime fuses an int8-dynamic
`--graphs ort` bundle's integer matmuls into
(the 8-bit tile, B in one block of K). It also holds the sampler's temperature-1 rows (sample_kernels.c, called by
runtime/sampling.py through ctypes, not by ONNX Runtime; UNIFORK_RT_SAMPLER=0 keeps numpy's). docs/KERNELS.md.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

from ..errors import MissingDependencyError

FLOAT_KERNEL_OP = "TransposeMatMul"  # the op of fp32 weight MatMuls in `--graphs ort` bundles (export/ort_graphs.py)
ATTENTION_OP = "GroupQueryAttention"  # the attention of every `--graphs ort` trunk, branch and depth head
INTEGER_OP = "MatMulInteger"  # int8-dynamic weights (export/quantize.py), fused by ONNX Runtime at load
SOURCES = ("qmatmul_kernels.h", "qmatmul_kernels.c", "fmatmul_kernels.c", "attn_kernels.c", "norm_kernels.c",
           "sample_kernels.c", "qmatmul_op.c")
_lock = threading.Lock()
_built: dict[str, tuple[Path | None, str]] = {}


class UkShape(ctypes.Structure):
    """uk_shape (kernels/qmatmul_kernels.h), for calling the packed GEMM through ctypes (the tests, the bench's
    compute-rate probe): bit width, weights per scale along K, K, N, K padded to whole blocks, N padded to 16."""

    _fields_ = [("bits", ctypes.c_int), ("block", ctypes.c_int), ("k", ctypes.c_int64), ("n", ctypes.c_int64),
                ("kp", ctypes.c_int64), ("np", ctypes.c_int64)]


def mode() -> str:
    """'off', 'on' (required) or 'auto', from UNIFORK_RT_QMATMUL (0 / 1 / unset or auto)."""
    v = os.environ.get("UNIFORK_RT_QMATMUL", "auto").strip().lower()
    if v in ("0", "off", "false", "no"):
        return "off"
    if v in ("1", "on", "true", "yes"):
        return "on"
    return "auto"


def _source_dir() -> Path:
    return Path(__file__).with_name("kernels")


def _compiler() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def source_digest() -> str:
    """The kernel sources' version as they are on disk now: the name of the cache folder `build` compiles them into."""
    src = _source_dir()
    return hashlib.sha256(b"".join((src / f).read_bytes() for f in SOURCES)).hexdigest()[:16]


def loaded_digests() -> list[str]:
    """The source versions of the libraries this process has built or found (normally one; more when the sources
    changed on disk while it ran)."""
    with _lock:
        return sorted(d for d, (lib, _) in _built.items() if lib is not None)


def build(cache_dir: Path | None = None) -> tuple[Path | None, str]:
    """(path of the compiled library, '') or (None, why not). Compiled once per source version."""
    from ..io import user_cache_dir

    if platform.machine().lower() not in ("x86_64", "amd64"):
        return None, f"the kernels are for x86-64 CPUs (this is {platform.machine()})"
    src, digest = _source_dir(), source_digest()
    with _lock:
        if digest in _built:
            return _built[digest]
        out_dir = Path(cache_dir) if cache_dir else user_cache_dir("kernels", digest)
        lib = out_dir / "libunifork_qmatmul.so"
        if lib.is_file():
            _built[digest] = (lib, "")
            return _built[digest]
        cc = _compiler()
        if cc is None:
            _built[digest] = (None, "no C compiler (cc, gcc or clang) to build them with")
            return _built[digest]
        try:
            out_dir.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".build-", suffix=".so", dir=out_dir)
            os.close(fd)
        except OSError as e:
            _built[digest] = (None, f"the cache folder {out_dir} is not writable ({e.strerror or e}); "
                                    "set UNIFORK_RT_CACHE to a writable folder")
            return _built[digest]
        cmd = [cc, "-O3", "-std=gnu11", "-fPIC", "-shared", "-o", tmp,
               *(str(src / f) for f in SOURCES if f.endswith(".c")), "-lm"]
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as e:
            r = None
            err = str(e)
        if r is None or r.returncode != 0:
            os.unlink(tmp)
            msg = err if r is None else (r.stderr.strip().splitlines() or ["?"])[-1][:300]
            _built[digest] = (None, f"{cc} could not build them: {msg}")
            return _built[digest]
        os.replace(tmp, lib)  # atomic: a concurrent process sees the whole library or none
        _built[digest] = (lib, "")
        return _built[digest]


def library_for_sessions() -> Path | None:
    """The library to register in ONNX Runtime CPU sessions, or None to keep ONNX Runtime's kernel."""
    m = mode()
    if m == "off":
        return None
    lib, why = build()
    if lib is None and m == "on":
        raise MissingDependencyError(f"UNIFORK_RT_QMATMUL=1 asks for unifork-rt's matmul kernels (MatMulNBits, "
                                     f"and TransposeMatMul of fp32 ort bundles), but {why}; unset it to fall back "
                                     "to ONNX Runtime's kernels")
    return lib


def set_session_threads(lib: Path, threads: int | None) -> None:
    """Tell LIB, on this thread, the intra-op thread count of the session this thread creates next
    (None: ONNX Runtime's default, not known here). Its op splits each matrix into that many tasks, one
    long range of columns per thread; without it, one per CPU (kernels/qmatmul_op.c, task_count)."""
    ctypes.CDLL(str(lib)).uk_set_session_threads(ctypes.c_int(threads or 0))


def attention_kernel() -> bool:
    """Whether the library runs com.microsoft GroupQueryAttention: unless UNIFORK_RT_ATTENTION=0
    (kernels/qmatmul_op.c reads the same variable when a session registers it)."""
    return os.environ.get("UNIFORK_RT_ATTENTION") != "0"


def integer_kernel(lib: Path) -> bool:
    """Whether LIB runs com.microsoft DynamicQuantizeMatMul / MatMulIntegerToFloat (int8-dynamic `--graphs ort`
    bundles) on this CPU: AVX-512 VNNI and (since session 50) AVX2 CPUs, unless UNIFORK_RT_INTEGER_KERNEL=0
    (kernels/qmatmul_op.c)."""
    return bool(ctypes.CDLL(str(lib)).uk_integer_kernel())


def float_kernel(lib: Path) -> bool:
    """Whether LIB runs com.microsoft TransposeMatMul (the float kernel of fp32 `--graphs ort` bundles) on
    this CPU: wherever its tiles run (AVX2 and FMA, or AVX-512 VNNI), unless UNIFORK_RT_FLOAT_KERNEL=0 keeps ONNX
    Runtime's SGEMM for it (kernels/qmatmul_op.c)."""
    return bool(ctypes.CDLL(str(lib)).uk_float_kernel())
