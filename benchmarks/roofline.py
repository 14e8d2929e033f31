"""Roofline: bytes and FLOPs per decode step from the config, the machine's own bandwidth and
GEMM rate measured in the same run, and projections onto other devices.

A batch-1 decode step reads every weight of the graphs it runs once, plus the KV buffers,
and does ~2 FLOPs per weight per row. On a CPU or an edge GPU that is bandwidth-bound:

    bound (s) = bytes read per step / memory bandwidth          (the roofline's flat part)
    fraction  = bound / measured step time                      (1.0 = at the roofline)

The portable graphs read the WHOLE fused KV buffer (max_seq slots, masked) every step; the report counts
that for them, and for the `--graphs ort` ones (GroupQueryAttention, which reads only the slots in use) the
prompt and the new token (report._caption_slots); the functions here take the slot count. Weight bytes per element of a matrix: fp32 4, fp16 2; the MatMulNBits weight-only
schemes (export/quantize.py) int8 1 and int4 0.5 + one fp32 scale per 128-weight block
(onnxruntime-genai's blocks, `int8-b32` / `int4-b32`: per 32); int8-dynamic 1 (one scale per column, not
counted); llama.cpp's q8_0 / q4_0 1 / 0.5 + one fp16 scale per 32. The quantized graphs keep
biases, norms and the KV cache in fp32 (the peers' KV is counted the same, a little in their favour
where it is f16).

Everything here is numpy or arithmetic: no torch, no onnxruntime.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass

import numpy as np

# int8 / int4: export/quantize.py's SCHEMES (blocks of 128; tests/test_bench.py checks they agree)
WEIGHT_BYTES = {"fp32": 4.0, "fp16": 2.0, "int8": 1.0 + 4 / 128, "int4": 0.5 + 4 / 128, "int8-b32": 1.0 + 4 / 32,
                "int4-b32": 0.5 + 4 / 32,
                "int8-dynamic": 1.0, "q8_0": 1.0 + 2 / 32, "q4_0": 0.5 + 2 / 32}
ACT_BYTES = {"fp16": 2}  # KV cache / activations: fp32 (4 bytes) everywhere else


def act_bytes(precision: str) -> int:
    return ACT_BYTES.get(precision, 4)

# Projection targets: peak memory bandwidth (bytes/s) and dense fp16 tensor throughput (FLOP/s).
# A100 figures are NVIDIA's datasheet; the Orin compute figures are approximate (dense fp16 on
# the GPU, derived from the sparse-int8 TOPS of the datasheets) and matter only for prefill.
DEVICES = {
    "A100 40GB": {"bandwidth": 1.555e12, "flops": 312e12, "precision": "fp16"},
    "A100 80GB": {"bandwidth": 2.039e12, "flops": 312e12, "precision": "fp16"},
    "Jetson AGX Orin 64GB": {"bandwidth": 204.8e9, "flops": 42.5e12, "precision": "fp16"},
    "Jetson Orin Nano 8GB": {"bandwidth": 68e9, "flops": 10e12, "precision": "fp16"},
}


@dataclass(frozen=True)
class StepCost:
    """What one step reads and computes. bytes = weights + kv; flops counts multiply-adds as 2."""

    weight_bytes: float
    kv_bytes: float
    flops: float

    @property
    def bytes(self) -> float:
        return self.weight_bytes + self.kv_bytes

    def __add__(self, other: "StepCost") -> "StepCost":
        return StepCost(self.weight_bytes + other.weight_bytes, self.kv_bytes + other.kv_bytes,
                        self.flops + other.flops)

    def __mul__(self, k: float) -> "StepCost":
        return StepCost(self.weight_bytes * k, self.kv_bytes * k, self.flops * k)

    def to_dict(self) -> dict:
        return {"weight_bytes": self.weight_bytes, "kv_bytes": self.kv_bytes, "bytes": self.bytes,
                "flops": self.flops}


def _linear(n_in: int, n_out: int, bias: bool, precision: str, rows: int) -> StepCost:
    """A Linear layer: its matrix at the weight precision, the bias in float; 2*in*out FLOPs per row."""
    w = n_in * n_out * WEIGHT_BYTES[precision] + (n_out * act_bytes(precision) if bias else 0)
    return StepCost(w, 0.0, 2.0 * n_in * n_out * rows)


def _norm(dim: int, precision: str, params_per_dim: int = 1) -> StepCost:
    return StepCost(dim * params_per_dim * act_bytes(precision), 0.0, 0.0)


def decoder_layer(text, precision: str, batch: int = 1, new: int = 1) -> StepCost:
    """One Qwen2 layer (no KV): q/k/v with bias, o, SwiGLU MLP, two RMSNorms."""
    H, Hkv, Dh, I = text.hidden_size, text.num_kv_heads, text.head_dim, text.intermediate_size
    rows = batch * new
    c = _linear(H, H, True, precision, rows) + _linear(H, Hkv * Dh, True, precision, rows) * 2
    c = c + _linear(H, H, False, precision, rows)
    c = c + _linear(H, I, False, precision, rows) * 2 + _linear(I, H, False, precision, rows)
    return c + _norm(H, precision) * 2


def kv_read(layers: int, kv_heads: int, slots: int, head_dim: int, precision: str, batch: int) -> StepCost:
    """Reading the fused buffer (layers, 2, B, Hkv, slots, Dh) whole."""
    return StepCost(0.0, float(layers * 2 * batch * kv_heads * slots * head_dim * act_bytes(precision)), 0.0)


def attention_flops(layers: int, heads: int, head_dim: int, slots: int, batch: int, new: int = 1) -> StepCost:
    """Scores and weighted sum over `slots` keys: 2 * 2 * heads * head_dim * slots per new row."""
    return StepCost(0.0, 0.0, 4.0 * layers * heads * head_dim * slots * batch * new)


def stack(text, layers: int, precision: str, max_seq: int, batch: int = 1) -> StepCost:
    """A trunk or branch graph at T = 1: its layers, its whole KV buffer, attention over max_seq slots."""
    return (decoder_layer(text, precision, batch) * layers
            + kv_read(layers, text.num_kv_heads, max_seq, text.head_dim, precision, batch)
            + attention_flops(layers, text.num_heads, text.head_dim, max_seq, batch))


def lm_head(text, precision: str, batch: int = 1) -> StepCost:
    """Final norm + logits of the last position: the (V, H) matrix (the tied embedding)."""
    return _norm(text.hidden_size, precision) + _linear(text.hidden_size, text.vocab_size, False, precision, batch)


def caption_decode_step(cfg, precision: str, max_seq: int, batch: int = 1) -> dict[str, StepCost]:
    """One caption token: trunk (Ls layers) + und branch (Lb layers + norm + lm_head)."""
    t = cfg.text
    trunk = stack(t, t.shared_layers, precision, max_seq, batch)
    und = stack(t, t.branch_layers, precision, max_seq, batch) + lm_head(t, precision, batch)
    return {"trunk": trunk, "und_branch": und, "total": trunk + und}


def head_step(cfg, precision: str, batch: int) -> StepCost:
    """One rq_head depth step: both input projections (the graph computes both and selects), the
    blocks (attention at attn_width, its projections folded where the export folds them), LayerNorm
    and the codebook logits; its KV is D slots."""
    h, t, im = cfg.head, cfg.text, cfg.image
    W, A, M = h.width, h.attn_width, h.mlp_dim
    c = _linear(t.hidden_size, W, True, precision, batch) + _linear(im.codebook_dim, W, True, precision, batch)
    block = _norm(W, precision, 2) * 2 + _linear(W, M, True, precision, batch) + _linear(M, W, True, precision, batch)
    if h.folds_attn_proj:  # the exported graph's composed q/k/v (W -> A) and out (A -> W) (export/graphs.py)
        block = block + _linear(W, A, True, precision, batch) * 3 + _linear(A, W, True, precision, batch)
    else:
        block = block + _linear(A, A, True, precision, batch) * 4
        if A != W:
            block = block + _linear(W, A, True, precision, batch) + _linear(A, W, True, precision, batch)
    c = c + block * h.num_layers + _norm(W, precision, 2) + _linear(W, im.codebook_size, True, precision, batch)
    c = c + StepCost(im.depth * W * act_bytes(precision), 0.0, 0.0)  # depth position embedding
    return (c + kv_read(h.num_layers, h.num_heads, im.depth, h.head_dim, precision, batch)
            + attention_flops(h.num_layers, h.num_heads, h.head_dim, im.depth, batch))


def draw_cell_step(cfg, precision: str, max_seq: int, batch: int = 2) -> dict[str, StepCost]:
    """One image cell with CFG (batch 2): connector + trunk + gen branch (+ norm_gen) + D head steps."""
    t, im = cfg.text, cfg.image
    conn = _linear(im.codebook_dim, t.hidden_size, True, precision, batch) + \
        _linear(t.hidden_size, t.hidden_size, True, precision, batch)
    trunk = stack(t, t.shared_layers, precision, max_seq, batch)
    gen = stack(t, t.branch_layers, precision, max_seq, batch) + _norm(t.hidden_size, precision)
    head = head_step(cfg, precision, batch) * im.depth
    return {"connector": conn, "trunk": trunk, "gen_branch": gen, "rq_head": head,
            "total": conn + trunk + gen + head}


def qwen_decode_step(n_layers: int, text, precision: str, context: int, batch: int = 1) -> StepCost:
    """A plain Qwen2 decoder with a growing cache of `context` tokens (the peers' layout)."""
    return (decoder_layer(text, precision, batch) * n_layers
            + kv_read(n_layers, text.num_kv_heads, context, text.head_dim, precision, batch)
            + attention_flops(n_layers, text.num_heads, text.head_dim, context, batch)
            + lm_head(text, precision, batch))


# --- the machine, measured in the same run ---------------------------------------------------------
def _timed_best(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _parallel(fn, a, b, threads: int):
    """run() -> calls fn(part of a, part of b) on `threads` threads at once, one slice of each per thread."""
    n = a.size
    parts = [(a[i * n // threads:(i + 1) * n // threads], b[i * n // threads:(i + 1) * n // threads])
             for i in range(threads)]

    def run():
        ts = [threading.Thread(target=fn, args=p) for p in parts]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    return run


def _stream_probes(a, b, threads: int, repeats: int, streams=None) -> dict:
    """Bytes/s of `threads` threads streaming their slices of A, best of `repeats` each: read front to back
    (numpy reductions release the GIL); copied into B (read + write); and, where our library runs here
    (STREAMS, from _read_streams_fn), read as 4 side-by-side streams each, as our kernels read weights (on
    some hosts 1.3-1.5x the first: docs/KERNELS.md, "Several streams"; a bound without it flatters them)."""
    out = {"read_bytes_per_s": a.nbytes / _timed_best(_parallel(lambda x, y: np.add.reduce(x), a, b, threads),
                                                      repeats),
           "copy_bytes_per_s": 2 * a.nbytes / _timed_best(_parallel(lambda x, y: np.copyto(y, x), a, b, threads),
                                                          repeats)}
    if streams:
        out["read_4_streams_bytes_per_s"] = a.nbytes / _timed_best(
            _parallel(lambda x, y: streams(x, 4), a, b, threads), repeats)
    return out


def bandwidth_probe(threads: int = 2, mib: int = 512, repeats: int = 5):
    """probe() -> this machine's memory bandwidth now (bytes/s): the best of the stream probes (_stream_probes)
    as measure_machine takes them (its defaults: the same buffer size, threads and repeats; on the EPYC host a
    copy of 256 MiB read 28 GB/s where one of 512 read 42-45), without its GEMV and GEMM; about 0.5 s, to take
    beside a timing."""
    a = np.ones(mib * 2**20 // 4, dtype=np.float32)
    b = np.empty_like(a)
    streams = _read_streams_fn()
    return lambda: max(_stream_probes(a, b, threads, repeats, streams).values())


def measure_machine(threads: int = 2, mib: int = 512, repeats: int = 5) -> dict:
    """Memory bandwidth (bytes/s) and fp32 GEMM rate (FLOP/s) of this machine, now.

    Bandwidth probes, best of `repeats` each: the stream probes (reads, a copy: _stream_probes) and a large
    GEMV (how MatMul streams weights). The roofline uses the highest, so the bound is never flattered by a
    weak probe."""
    n = mib * 2**20 // 4
    a = np.ones(n, dtype=np.float32)
    b = np.empty_like(a)
    probes = _stream_probes(a, b, threads, repeats, _read_streams_fn())
    del b
    W = a[: (n // 4096) * 4096].reshape(-1, 4096)
    v = np.ones(4096, dtype=np.float32)
    gemv = W.nbytes / _timed_best(lambda: W @ v, repeats)
    k = 1536
    A = np.random.default_rng(0).standard_normal((k, k), dtype=np.float32)
    gemm = 2 * k**3 / _timed_best(lambda: A @ A, repeats)
    probes["gemv_bytes_per_s"] = gemv
    out = {"bandwidth": max(probes.values()), "probes": probes, "gemm_flops_per_s": gemm, "threads": threads,
           "buffer_mib": mib}
    try:  # our kernels' compute ceilings (batching_floor); a probe that fails leaves the rest of the bench standing
        out.update(kernel_rates(repeats=repeats))
    except Exception as e:  # noqa: BLE001 - said in the JSON, and the floors are then not given
        out["kernel_rates_error"] = f"{type(e).__name__}: {e}"
    return out


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def kernel_rates(threads: int | None = None, repeats: int = 5) -> dict:
    """Multiply-adds a second of unifork-rt's 8-bit and 4-bit kernels in their largest row tiles (8 rows on AVX-512
    VNNI, 4 on AVX2), their weights in cache, on every core this process may use (as the runtime's sessions): the
    compute ceilings of the quantized matmuls here; where the library runs fp32 `--graphs ort` bundles' weight
    MatMuls (float_kernel: AVX2 and AVX-512 VNNI CPUs since session 45, unless UNIFORK_RT_FLOAT_KERNEL=0) also our
    fp32 tile's (f32_macs_per_s). {} where the kernel library does not build or the CPU has no AVX2; kernel_isa: the
    library's ISA level (2: AVX-512 VNNI, 1: AVX2; both run int8-dynamic's integer ops since session 50)."""
    lib = _kernel_lib()
    if lib is None:
        return {}
    isa = lib.uk_isa()
    threads = threads or _cores()
    out = {"kernel_isa": isa, "int8_macs_per_s": _kernel_rate(lib, isa, 8, threads, repeats),
           "int4_macs_per_s": _kernel_rate(lib, isa, 4, threads, repeats)}
    out["float_kernel"] = bool(lib.uk_float_kernel())  # our fp32 tile runs fp32 `--graphs ort` bundles' MatMuls
    if out["float_kernel"]:
        out["f32_macs_per_s"] = _f32_rate(lib, isa, threads, repeats)
    return out


def _kernel_rate(lib, isa: int, bits: int, threads: int, repeats: int, rows: int = 64, k: int = 896,
                 columns: int = 256, reps: int = 100) -> float:
    """One `bits` kernel's multiply-adds a second: each thread its own K x COLUMNS weights (229 KB at 8 bits, with
    its activations and outputs about 350 KB: in a core's L2 on current x86 parts) times ROWS rows (8 of the 8-row
    tiles, so that a call is long against Python's: each call's overhead still costs a few %, which makes a
    compute-bound floor read that much high), REPS calls, best of REPEATS."""
    import ctypes

    from unifork_rt.runtime.qmatmul import UkShape as Shape

    for f in ("uk_packed_bytes", "uk_packed_scales", "uk_scratch_bytes"):
        getattr(lib, f).restype = ctypes.c_size_t
    rng = np.random.default_rng(0)
    n = columns * threads
    s = Shape(bits, 128, k, n, k, n)
    src = rng.integers(0, 256, (n, k * bits // 8), dtype=np.uint8)  # MatMulNBits' bytes: 2 weights a byte at 4 bits
    scales = np.full((n, k // 128), 0.01, np.float32)
    w = np.zeros(lib.uk_packed_bytes(ctypes.byref(s)), np.uint8)
    ws = np.zeros(lib.uk_packed_scales(ctypes.byref(s)), np.float32)
    lib.uk_pack(ctypes.byref(s), _ptr(src), _ptr(scales), _ptr(w), _ptr(ws))
    a = rng.standard_normal((rows, k)).astype(np.float32)
    scratch = np.zeros(lib.uk_scratch_bytes(ctypes.byref(s), ctypes.c_int64(rows)), np.uint8)
    lib.uk_quantize(ctypes.byref(s), _ptr(a), ctypes.c_int64(rows), _ptr(scratch))
    c = np.zeros((rows, n), np.float32)  # the threads write their own columns

    def share(g0, g1):
        args = (ctypes.byref(s), _ptr(scratch), ctypes.c_int64(rows), _ptr(w), _ptr(ws), None, _ptr(c),
                ctypes.c_int64(g0), ctypes.c_int64(g1), ctypes.c_int(isa))
        for _ in range(reps):
            lib.uk_gemm(*args)

    return _threaded_rate(share, n // 16, threads, repeats, reps * rows * k * n)


def _ptr(x: np.ndarray):
    import ctypes

    return ctypes.c_void_p(x.ctypes.data)


def _threaded_rate(share, groups: int, threads: int, repeats: int, macs: int) -> float:
    """MACS multiply-adds a second over SHARE(g0, g1), the column groups [g0, g1) of each of THREADS threads, run side
    by side (ctypes releases the GIL), once to warm each share into its core's cache, then best of REPEATS."""
    def run():
        ts = [threading.Thread(target=share, args=(groups * i // threads, groups * (i + 1) // threads))
              for i in range(threads)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
    run()
    return macs / _timed_best(run, repeats)


def _f32_rate(lib, isa: int, threads: int, repeats: int, rows: int = 64, k: int = 896, columns: int = 192,
              reps: int = 100) -> float:
    """Our fp32 weight tile's multiply-adds a second (uk_f32_gemm, fmatmul_kernels.c: 8-row tiles on AVX-512), each
    thread its own K x COLUMNS packed weights (688 KB: in a core's L2; 12 panels of 16, a multiple of the 3 streams
    the 8-row tile walks, so no panel falls to the one-stream rest) times ROWS rows, REPS calls, best of REPEATS: the
    compute ceiling of fp32 `--graphs ort` bundles' weight MatMuls, which the GEMM probe (numpy's BLAS) can
    understate (session 36's Intel host, full2: the GEMM probe 70 GFLOP/s at best, this one 352)."""
    import ctypes

    lib.uk_f32_packed_floats.restype = ctypes.c_size_t
    n = columns * threads
    b = np.random.default_rng(0).standard_normal((k, n)).astype(np.float32)
    size = lib.uk_f32_packed_floats(ctypes.c_int64(k), ctypes.c_int64(n))
    raw = np.zeros(size + 16, np.float32)
    off = (-raw.ctypes.data % 64) // 4  # the tiles load 64-byte aligned panels
    w = raw[off:off + size]
    lib.uk_f32_pack(ctypes.c_int64(k), ctypes.c_int64(n), _ptr(b), _ptr(w))
    a = np.random.default_rng(1).standard_normal((rows, k)).astype(np.float32)
    c = np.zeros((rows, n), np.float32)

    def share(g0, g1):
        args = (_ptr(a), ctypes.c_int64(rows), ctypes.c_int64(k), _ptr(w), ctypes.c_int64(n), ctypes.c_float(1.0),
                _ptr(c), ctypes.c_int64(g0), ctypes.c_int64(g1), ctypes.c_int(isa))
        for _ in range(reps):
            lib.uk_f32_gemm(*args)

    return _threaded_rate(share, n // 16, threads, repeats, reps * rows * k * n)


# the kernel rate each precision's matmuls run at (batching_floor); int8-dynamic's integer ops run on the 8-bit
# MatMulNBits tiles (the rate probed) on AVX-512 VNNI CPUs (kernel_isa 2); on AVX2 on tiles of their own (session
# 50: one product fewer per weight vector than the probed 8-bit tile, or twice the work for full-range weights), whose
# rate is not probed
RATE_OF = {"int8": "int8_macs_per_s", "int8-b32": "int8_macs_per_s", "int4": "int4_macs_per_s",
           "int4-b32": "int4_macs_per_s", "int8-dynamic": "int8_macs_per_s"}


def batching_floor(cfg, precision: str, slots: int, machine: dict, rows: tuple[int, int] = (2, 8),
                   graphs: str | None = None) -> dict | None:
    """The roofline of a draw cell step at rows[0] (`--n 1`: 2 with guidance) and rows[1] (`--n 4`) on this machine:
    each at max(bytes / bandwidth, multiply-adds / the measured compute rate): fp32 `--graphs ort` (GRAPHS "ort")
    where our fp32 tile runs them (float_kernel; a bench.json from before session 45 has only kernel_isa 2) at its
    probed rate, the other float ones at the fp32 GEMM probe's,
    the quantized ones at our kernel's (RATE_OF). Their ratio is what batching costs here when
    both steps run at their bounds: a measured ratio under it comes from a `--n 1` step further from its bound
    than the `--n 4` one, not from better batching. The image decoder and the prompt are not in it. None without
    the rate (int8-dynamic off AVX-512 VNNI: its own AVX2 tiles, not probed)."""
    tile = machine.get("float_kernel", machine.get("kernel_isa") == 2)
    if precision == "fp32" and graphs == "ort" and tile and machine.get("f32_macs_per_s"):
        rate = machine["f32_macs_per_s"]
    elif precision in ("fp32", "fp16"):
        rate = machine.get("gemm_flops_per_s", 0) / 2
    elif precision == "int8-dynamic" and machine.get("kernel_isa") != 2:
        rate = None
    else:
        rate = machine.get(RATE_OF.get(precision, ""))
    if not rate:
        return None
    out = {"rows": list(rows), "bandwidth": machine["bandwidth"], "macs_per_s": rate}
    for r in rows:
        cost = draw_cell_step(cfg, precision, slots, r)["total"]
        t_mem, t_mac = cost.bytes / machine["bandwidth"], cost.flops / 2 / rate
        out[f"rows_{r}"] = {"seconds": max(t_mem, t_mac), "bound": "memory" if t_mem >= t_mac else "compute"}
    out["ratio"] = out[f"rows_{rows[1]}"]["seconds"] / out[f"rows_{rows[0]}"]["seconds"]
    return out


def _kernel_lib():
    """unifork-rt's kernel library (ctypes) for the probes that run its code, or None where it does not build (no C
    compiler, not x86-64, UNIFORK_RT_QMATMUL=0) or the CPU has no AVX2 (or UNIFORK_RT_ISA=none): those probes are
    then left out and the others stand."""
    import ctypes

    try:
        from unifork_rt.runtime.qmatmul import library_for_sessions

        path = library_for_sessions()
    except Exception:  # noqa: BLE001 - UNIFORK_RT_QMATMUL=1 without a library
        path = None
    if path is None:
        return None
    lib = ctypes.CDLL(str(path))
    return lib if lib.uk_isa() > 0 else None


def _read_streams_fn():
    """fn(float32 array, streams) -> its sum, read by unifork-rt's kernel library as 4 side-by-side
    streams (ctypes releases the GIL, so threads run it in parallel); None where the library does not
    build (no C compiler, not x86-64, UNIFORK_RT_QMATMUL=0): that probe is then left out."""
    import ctypes

    lib = _kernel_lib()
    if lib is None:
        return None
    fn = lib.uk_read_streams
    fn.restype = ctypes.c_float
    fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int]
    return lambda x, streams: fn(x.ctypes.data, x.size, streams)


def fraction_of_bound(cost: StepCost, seconds: float, bandwidth: float) -> float:
    """bytes / bandwidth / measured: 1.0 means the step streams its bytes at the measured bandwidth."""
    return cost.bytes / bandwidth / seconds if seconds > 0 else float("nan")


def project(cost_by_precision, devices: dict = DEVICES, efficiency: float = 1.0) -> dict:
    """Per device: the roofline step time max(bytes / bandwidth, flops / peak) at its precision.

    cost_by_precision(precision) -> StepCost. efficiency scales both peaks (1.0 = ideal)."""
    out = {}
    for name, d in devices.items():
        c = cost_by_precision(d["precision"])
        t_mem = c.bytes / (d["bandwidth"] * efficiency)
        t_flop = c.flops / (d["flops"] * efficiency)
        out[name] = {"seconds": max(t_mem, t_flop), "bound": "memory" if t_mem >= t_flop else "compute",
                     "bytes": c.bytes, "flops": c.flops, **d, "efficiency": efficiency}
    return out
