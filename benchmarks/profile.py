"""Where a decode step's time goes: ONNX Runtime's own profiler on one graph at T = 1.

    per graph: run ms (ORT's model_run events), kernel ms summed over nodes, nodes executed per
    run, and the time per op type, split into weight-streaming ops (MatMul and its quantized
    forms) and everything else ("glue": rotary, masks, GQA reshapes, norms, casts ...).

A step at its bandwidth bound is all weight streaming; glue time and the gap between run
time and kernel time (per-node dispatch) are what a fused graph would remove.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

# ops that stream a weight matrix: the part that a bandwidth bound describes
MATMUL_OPS = {"MatMul", "Gemm", "FusedMatMul", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeMatMul",
              "MatMulNBits", "QGemm", "QLinearMatMul", "FusedGemm", "TransposeMatMul"}


def summarize(trace: list[dict], runs: int) -> dict:
    """ORT profile events -> per-run figures (the first `len - runs` runs are warm-up, dropped)."""
    run_events = [e for e in trace if e.get("cat") == "Session" and e.get("name") == "model_run"]
    keep_from = run_events[-runs]["ts"] if len(run_events) >= runs else 0
    runs_kept = [e["dur"] for e in run_events if e["ts"] >= keep_from]
    by_op = defaultdict(float)
    count = defaultdict(int)
    for e in trace:
        if e.get("cat") == "Node" and e.get("name", "").endswith("_kernel_time") and e["ts"] >= keep_from:
            op = e.get("args", {}).get("op_name", "?")
            by_op[op] += e["dur"]
            count[op] += 1
    n = max(len(runs_kept), 1)
    kernel_us = sum(by_op.values()) / n
    matmul_us = sum(v for k, v in by_op.items() if k in MATMUL_OPS) / n
    top = sorted(by_op.items(), key=lambda kv: -kv[1])[:12]
    return {
        "runs": len(runs_kept),
        "run_ms": float(np.median(runs_kept)) / 1e3 if runs_kept else None,
        "kernel_ms": kernel_us / 1e3,
        "matmul_ms": matmul_us / 1e3,
        "glue_ms": (kernel_us - matmul_us) / 1e3,
        "nodes_per_run": sum(count.values()) / n,
        "glue_nodes_per_run": sum(c for k, c in count.items() if k not in MATMUL_OPS) / n,
        "top_ops": [{"op": k, "ms_per_run": v / n / 1e3, "nodes_per_run": count[k] / n} for k, v in top],
    }


def _backend(bundle, **kw):
    """An ort-cpu backend as the runtime makes one (our kernels in the graphs it gives them, the process's
    shared pool once it has one), with `kw` (threads, spin, pool, profile_prefix)."""
    from unifork_rt.runtime.ort_backend import OrtBackend, shares_pool

    if shares_pool():  # ONNX Runtime allows no other pool in this process now
        kw = {**kw, "pool": "shared"}
    return OrtBackend(bundle, "ort-cpu", **kw).load()


def profile_graph(bundle, graph: str, feeds: dict[str, np.ndarray], runs: int, warmup: int = 2,
                  threads: int | None = None) -> dict:
    """Run one graph of BUNDLE `warmup + runs` times with profiling on, in the session the runtime would
    make (its options, our MatMulNBits / TransposeMatMul / GroupQueryAttention kernels where the runtime
    registers them); summary of the last `runs`."""
    with tempfile.TemporaryDirectory() as tmp:
        # a single session: ORT's default spinning
        backend = _backend(bundle, threads=threads, spin=True, profile_prefix=os.path.join(tmp, "ort"))
        sess = backend.session(graph)
        step = runner(sess, feeds)
        for _ in range(warmup + runs):
            step()
        trace = json.loads(Path(sess.end_profiling()).read_text())
        kernels = backend.our_kernels(graph)
        backend.close()
    return {**summarize(trace, runs), "our_kernels": kernels}


def runner(sess, feeds: dict[str, np.ndarray], outputs: list[str] | None = None):
    """run(extra_feeds) -> [outputs] of SESS, as the runtime runs it. `--graphs ort` graphs take
    each layer's K and V as past_*_i and write them in place: present_*_i is bound to the same
    array (IOBinding), so no copy of the cache is timed that the runtime does not make."""
    outputs = outputs or [o.name for o in sess.get_outputs() if not o.name.startswith("present_")]
    past = [n for n in feeds if n.startswith("past_")]
    if not past:
        return lambda extra=None: sess.run(outputs, {**feeds, **(extra or {})})
    io = sess.io_binding()
    for n in outputs:  # bound first: get_outputs() lists them first
        io.bind_output(n, "cpu")
    for n in past:
        a = feeds[n]
        io.bind_input(n, "cpu", 0, a.dtype, list(a.shape), a.ctypes.data)
        io.bind_output(n.replace("past_", "present_", 1), "cpu", 0, a.dtype, list(a.shape), a.ctypes.data)

    def run(extra=None):
        for n, v in {**feeds, **(extra or {})}.items():
            if not n.startswith("past_"):
                io.bind_cpu_input(n, v)
        for n in outputs:
            io.bind_output(n, "cpu")
        sess.run_with_iobinding(io)
        return [v.numpy() for v in io.get_outputs()[:len(outputs)]]
    return run


def decode_feeds(bundle, graph: str, batch: int = 1) -> dict[str, np.ndarray]:
    """The T = 1 inputs the pipeline feeds `graph` mid-sequence (zeros: values do not change the time)."""
    spec = bundle.graphs[graph]
    dt = bundle.float_dtype
    H = bundle.config.text.hidden_size
    if spec.kv_io == "shared":  # `--graphs ort`: one (B, kv_heads, max_seq, head_dim) array per layer, K and V
        kv = spec.kv
        feeds = {f"past_{k}_{i}": np.zeros((batch, kv.kv_heads, kv.max_seq, kv.head_dim), dtype=dt)
                 for i in range(kv.layers) for k in ("key", "value")}
    else:
        feeds = {"kv": np.zeros(spec.kv.shape(batch), dtype=dt)}
    if graph == "rq_head":
        D = bundle.config.image.depth
        feeds.update(hidden=np.zeros((batch, H), dt), codes=np.zeros((batch, D), np.int64),
                     pos=np.array(1, np.int64))
    else:
        feeds.update({("x" if graph == "trunk" else "h"): np.zeros((batch, 1, H), dt),
                      "pos": np.array(spec.kv.max_seq // 2, np.int64), "start": np.zeros(batch, np.int64)})
    return feeds


# (graph, batch): the caption's decode graphs at batch 1, a draw's at 2 rows (--n 1 with guidance) and 8 (--n 4)
PROFILED = (("trunk", 1), ("und_branch", 1), ("rq_head", 2), ("trunk", 8), ("rq_head", 8))


def profile_bundle(bundle_dir: str | Path, runs: int = 10) -> dict:
    """The caption decode step's graphs and a draw's at 2 and 8 rows (PROFILED), one step each."""
    from unifork_rt.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir, verify=False)
    return {f"{graph}_b{batch}": profile_graph(bundle, graph, decode_feeds(bundle, graph, batch), runs)
            for graph, batch in PROFILED}


def chained_step_spinning(bundle_dir: str | Path, runs: int = 10) -> dict:
    """The caption decode step (trunk then und_branch, two sessions of one backend, our kernels where the
    runtime uses them) with a pool per session, ORT's default intra-op spinning and spinning off (with two
    sessions on a 2-core machine, the threads of the session that just finished spin while the next one
    starts); in a process whose sessions share one pool (runtime/ort_backend.py, POOL_ENV), that pool,
    spinning: the only kind ORT then allows."""
    import time

    from unifork_rt.runtime import ort_backend
    from unifork_rt.runtime.bundle import load_bundle

    bundle = load_bundle(bundle_dir, verify=False)
    out = {}
    kinds = (("shared_pool", True),) if ort_backend.shares_pool() else (("spinning_default", True),
                                                                       ("spinning_off", False))
    for label, spin in kinds:
        backend = _backend(bundle, spin=spin, pool="session")
        trunk = runner(backend.session("trunk"), decode_feeds(bundle, "trunk"), ["h"])
        und = runner(backend.session("und_branch"), decode_feeds(bundle, "und_branch"), ["logits"])
        times = []
        for i in range(runs + 2):
            t0 = time.perf_counter()
            h = trunk()[0]
            und({"h": h})
            if i >= 2:
                times.append(time.perf_counter() - t0)
        out[label] = {"median_ms": float(np.median(times)) * 1e3, "min_ms": float(np.min(times)) * 1e3}
        del trunk, und
        backend.close()
    return out
