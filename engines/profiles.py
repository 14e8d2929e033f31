"""TensorRT optimization profiles and memory estimates for a bundle's graphs. Pure functions.

An engine built from a graph with dynamic dimensions needs, for every input with a dynamic
dimension, a (min, opt, max) shape per optimization profile; TensorRT tunes its kernels for
`opt` and accepts anything in [min, max]. The manifest names the dynamic dimensions:

    batch  B  rows (1 caption image; 2 = cond + uncond rows of one guided draw)
    seq    T  new tokens this step (prefill: the prompt; decode: 1)
    cells  n  image cells handed to the connector (N for a caption, 1 per draw step)

Every other dimension is static (the KV buffer's S = the bundle's max_seq). Profiles:

    graph            profile 0            profile 1       B opt   T / n opt
    trunk            prefill T 1..Tmax    decode T = 1     2       caption prefill
    und_branch       prefill              decode           1       caption prefill
    gen_branch       prefill              decode           2       prompt + BOI
    connector        prefill n 1..N       decode n = 1     2       N
    rq_head          step                 -                2       -
    vision_encoder   all                  -                1       -
    vision_decoder   all                  -                1       -

B runs 1..max_batch everywhere; its opt is 2 on the graphs the guided draw loop runs for
every image cell (its cost dominates a draw), 1 on the caption-only and one-shot graphs.
A step picks the narrowest profile that covers its shapes (`select_profile`): T = 1 runs on
the decode profile, whose kernels are tuned for a single token.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from ..errors import InputError, ModelFolderError, UniforkError

BATCH, SEQ, CELLS = "batch", "seq", "cells"
# graphs the guided draw loop runs at B = 2 (cond + uncond) once per image cell
CFG_GRAPHS = frozenset({"trunk", "gen_branch", "rq_head", "connector"})
PROMPT_OPT = 16  # a typical prompt, in tokens: the opt point of prefill profiles
GiB = 1 << 30


@dataclass(frozen=True)
class ShapeRange:
    min: tuple[int, ...]
    opt: tuple[int, ...]
    max: tuple[int, ...]

    def covers(self, shape) -> bool:
        shape = tuple(int(d) for d in shape)
        return len(shape) == len(self.min) and all(lo <= d <= hi for lo, d, hi in zip(self.min, shape, self.max))


@dataclass(frozen=True)
class Profile:
    """One TensorRT optimization profile: (min, opt, max) for each input with a dynamic dim."""

    name: str
    shapes: tuple[tuple[str, ShapeRange], ...]

    def shape(self, name: str) -> ShapeRange:
        for n, r in self.shapes:
            if n == name:
                return r
        raise KeyError(name)

    def covers(self, shapes: dict[str, tuple]) -> bool:
        """Do the given input shapes fall inside this profile (inputs it does not name are static)?"""
        return all(n not in shapes or r.covers(shapes[n]) for n, r in self.shapes)

    def to_dict(self) -> dict:
        return {"name": self.name,
                "shapes": {n: {"min": list(r.min), "opt": list(r.opt), "max": list(r.max)} for n, r in self.shapes}}

    @classmethod
    def from_dict(cls, d: dict) -> "Profile":
        return cls(d["name"], tuple((n, ShapeRange(tuple(r["min"]), tuple(r["opt"]), tuple(r["max"])))
                                    for n, r in d["shapes"].items()))


def _graph_io(spec, name: str | None) -> tuple[str, list[dict], dict | None]:
    """(name, inputs, kv) from a GraphSpec or a manifest entry (a dict)."""
    if isinstance(spec, dict):
        if name is None:
            raise ValueError("a manifest entry needs the graph name")
        return name, list(spec["inputs"]), spec.get("kv")
    kv = spec.kv
    return spec.name, list(spec.inputs), (None if kv is None else {
        "layers": kv.layers, "kv_heads": kv.kv_heads, "max_seq": kv.max_seq, "head_dim": kv.head_dim})


def graph_profiles(spec, *, max_batch: int, max_seq: int, cells: int, name: str | None = None,
                   prompt_opt: int = PROMPT_OPT) -> tuple[Profile, ...]:
    """The optimization profiles of one graph (a GraphSpec, or a manifest entry plus its name).

    max_batch: the largest B; max_seq: the longest prefill T (at most the KV length S);
    cells: the number of image cells N (the connector's largest n).
    """
    name, inputs, kv = _graph_io(spec, name)
    if max_batch < 1:
        raise InputError(f"--max-batch {max_batch} must be >= 1")
    if kv is not None and name != "rq_head" and max_seq > kv["max_seq"]:
        raise InputError(f"--max-seq {max_seq} is longer than the KV buffers of {name} ({kv['max_seq']} "
                         f"positions, fixed at export): use at most {kv['max_seq']} or re-export with "
                         f"--max-seq {max_seq}")
    opt_b = min(2, max_batch) if name in CFG_GRAPHS else 1
    dims = {d for i in inputs for d in i["shape"] if isinstance(d, str)}
    unknown = dims - {BATCH, SEQ, CELLS}
    if unknown:
        raise ModelFolderError(f"graph {name} has dynamic dimension(s) {sorted(unknown)}; this version of the "
                               f"engine builder knows {BATCH!r}, {SEQ!r} and {CELLS!r}: re-export the bundle")
    if SEQ in dims:
        caption_prefill = cells + 2 + prompt_opt  # BOI, N image cells, EOI, the prompt
        opt_t = {"gen_branch": prompt_opt + 1}.get(name, caption_prefill)
        step = {SEQ: (1, min(opt_t, max_seq), max_seq)}
    elif CELLS in dims:
        step = {CELLS: (1, cells, cells)}
    else:
        step = {}
    batch = (1, opt_b, max_batch)

    def profile(pname: str, ranges: dict[str, tuple[int, int, int]]) -> Profile:
        shapes = []
        for inp in inputs:
            shape = inp["shape"]
            if not any(isinstance(d, str) for d in shape):
                continue
            lo, op, hi = ([ranges[d][k] if isinstance(d, str) else d for d in shape] for k in range(3))
            shapes.append((inp["name"], ShapeRange(tuple(lo), tuple(op), tuple(hi))))
        return Profile(pname, tuple(shapes))

    if not step:
        return (profile("step" if name == "rq_head" else "all", {BATCH: batch}),)
    (dim, prefill), = step.items()
    return (profile("prefill", {BATCH: batch, dim: prefill}), profile("decode", {BATCH: batch, dim: (1, 1, 1)}))


def profiles_max_batch(spec, profiles, name: str | None = None) -> int | None:
    """The largest batch every profile of a graph accepts (None: no input has a batch dim)."""
    _, inputs, _ = _graph_io(spec, name)
    best = None
    for p in profiles:
        ranges = dict(p.shapes)
        for inp in inputs:
            if BATCH in inp["shape"] and inp["name"] in ranges:
                hi = ranges[inp["name"]].max[inp["shape"].index(BATCH)]
                best = hi if best is None else min(best, hi)
    return best


def bundle_profiles(bundle, max_batch: int = 2, max_seq: int | None = None) -> dict[str, tuple[Profile, ...]]:
    """Profiles for every graph of a loaded Bundle; max_seq defaults to the bundle's."""
    max_seq = bundle.max_seq if max_seq is None else max_seq
    cells = bundle.config.image.num_cells
    return {name: graph_profiles(spec, max_batch=max_batch, max_seq=max_seq, cells=cells)
            for name, spec in bundle.graphs.items()}


def check_profiles(spec, profiles: tuple[Profile, ...], name: str | None = None) -> list[str]:
    """Problems with a graph's profiles: ranges out of order, static dims that differ from the
    manifest, a KV input whose static dims differ from the KV spec, a T beyond the KV length,
    or batch ranges that differ between inputs of one profile."""
    name, inputs, kv = _graph_io(spec, name)
    by_name = {i["name"]: i for i in inputs}
    problems = []
    for p in profiles:
        batch_ranges = set()
        for iname, r in p.shapes:
            where = f"{name}/{p.name}/{iname}"
            if iname not in by_name:
                problems.append(f"{where}: not an input of the graph")
                continue
            shape = by_name[iname]["shape"]
            if not len(r.min) == len(r.opt) == len(r.max) == len(shape):
                problems.append(f"{where}: rank differs from the manifest's {shape}")
                continue
            for k, (lo, op, hi, d) in enumerate(zip(r.min, r.opt, r.max, shape)):
                if not 1 <= lo <= op <= hi:
                    problems.append(f"{where}: dim {k} needs 1 <= min <= opt <= max, got {lo}, {op}, {hi}")
                if isinstance(d, int) and not lo == op == hi == d:
                    problems.append(f"{where}: dim {k} is static ({d}) in the manifest, profile has {lo}..{hi}")
                if d == BATCH:
                    batch_ranges.add((lo, op, hi))
                if d == SEQ and kv is not None and hi > kv["max_seq"]:
                    problems.append(f"{where}: T up to {hi} exceeds the KV length {kv['max_seq']}")
            if iname == "kv" and kv is not None:
                want = (kv["layers"], 2, None, kv["kv_heads"], kv["max_seq"], kv["head_dim"])
                if any(w is not None and w != got for w, got in zip(want, r.max)):
                    problems.append(f"{where}: static dims {r.max} differ from the KV spec {want}")
        if len(batch_ranges) > 1:
            problems.append(f"{name}/{p.name}: inputs disagree on the batch range {sorted(batch_ranges)}")
    missing = {i["name"] for i in inputs if any(isinstance(d, str) for d in i["shape"])}
    for p in profiles:
        lacking = missing - {n for n, _ in p.shapes}
        if lacking:
            problems.append(f"{name}/{p.name}: no range for dynamic input(s) {sorted(lacking)}")
    return problems


def select_profile(profiles, shapes: dict[str, tuple]) -> int:
    """Index of the narrowest profile covering these input shapes (decode for T = 1)."""
    fits = [(sum(math.prod(r.max) for _, r in p.shapes), k) for k, p in enumerate(profiles) if p.covers(shapes)]
    if not fits:
        ranges = "; ".join(f"{p.name}: " + ", ".join(f"{n} {list(r.min)}..{list(r.max)}" for n, r in p.shapes)
                           for p in profiles)
        got = ", ".join(f"{n} {list(s)}" for n, s in shapes.items())
        raise InputError(f"input shapes {got} are outside every optimization profile of the engine ({ranges}): "
                         "rebuild the engines with a larger --max-batch / --max-seq (`unifork-rt build`)")
    return min(fits)[1]


def ort_profile_options(profile: Profile) -> dict[str, str]:
    """The profile as ONNX Runtime TensorRT EP options (trt_profile_{min,opt,max}_shapes)."""
    def fmt(which):
        return ",".join(f"{n}:{'x'.join(str(d) for d in getattr(r, which))}" for n, r in profile.shapes)

    return {f"trt_profile_{w}_shapes": fmt(w) for w in ("min", "opt", "max")}


# --- memory -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class MemoryEstimate:
    """Bytes on the GPU (on a Jetson: in the memory it shares with the CPU)."""

    weights: int      # engine weights
    kv: int           # the fused KV buffers of one caption and one draw session
    scratch: int      # kv_new staging, one per attention graph at the largest step
    activations: int  # execution-context memory, roughly: the largest layer of each engine
    workspace: int    # the builder's workspace limit (tactics may use up to this at run time)

    @property
    def total(self) -> int:
        return self.weights + self.kv + self.scratch + self.activations + self.workspace

    def describe(self) -> str:
        parts = ", ".join(f"{k} {getattr(self, k) / GiB:.2f}" for k in
                          ("weights", "kv", "scratch", "activations", "workspace"))
        return f"{self.total / GiB:.2f} GiB ({parts})"


def kv_bytes(kv: dict, batch: int, dtype_bytes: int) -> int:
    """One fused KV buffer (layers, 2, B, kv_heads, S, head_dim)."""
    return kv["layers"] * 2 * batch * kv["kv_heads"] * kv["max_seq"] * kv["head_dim"] * dtype_bytes


def estimate_memory(cfg, kvs: dict[str, dict | None], weight_bytes: int, *, max_batch: int, max_seq: int,
                    dtype_bytes: int, workspace_bytes: int) -> MemoryEstimate:
    """A rough, deliberately generous estimate for choosing --max-batch/--workspace-gb.

    cfg: the ModelConfig; kvs: graph name -> KV spec dict (None without attention);
    weight_bytes: the graphs' weights as the engines will store them.
    """
    t = cfg.text
    kv = sum(kv_bytes(k, max_batch, dtype_bytes) for k in kvs.values() if k)
    # kv_new of the largest step: like the buffer, with T = max_seq instead of S
    scratch = sum(kv_bytes({**k, "max_seq": max_seq if n != "rq_head" else 1}, max_batch, dtype_bytes)
                  for n, k in kvs.items() if k)
    # per text engine at B x T: attention scores (fp32 softmax), SwiGLU, a few hidden copies,
    # logits of the last position; x2 for the prefill and decode contexts' own memory
    per_engine = max_batch * max_seq * (t.num_heads * max_seq * 4 + 3 * t.intermediate_size * dtype_bytes
                                        + 6 * t.hidden_size * dtype_bytes) + max_batch * t.vocab_size * 4
    text_engines = sum(1 for n in kvs if n in ("trunk", "und_branch", "gen_branch"))
    return MemoryEstimate(weight_bytes, kv, scratch, 2 * per_engine * text_engines, workspace_bytes)


def bundle_weight_bytes(bundle, fp16: bool) -> int:
    """The graphs' weights on disk; an fp32 bundle built with --fp16 stores them at half size."""
    total = 0
    for name, spec in bundle.graphs.items():
        total += os.path.getsize(spec.path)
        data = bundle.manifest["graphs"].get(name, {}).get("data_file")
        if data:
            total += os.path.getsize(bundle.root / data)
    return total // 2 if fp16 and bundle.precision == "fp32" else total


@dataclass(frozen=True)
class Limits:
    max_batch: int
    workspace_gb: float
    budget: int  # bytes the engines may use on this device
    reason: str


def suggest_limits(device_bytes: int, integrated: bool) -> Limits:
    """Defaults by device class. A Jetson (integrated, memory shared with the OS) of <= 8 GB:
    max_batch 2 (one guided draw) and a 1 GB workspace; mid-size GPUs 4 / 2 GB; large 8 / 4 GB."""
    reserve = 2 * GiB if integrated else GiB // 2  # OS and desktop on a Jetson; CUDA context elsewhere
    budget = max(device_bytes - reserve, 0)
    if integrated or device_bytes <= 8.5 * GiB:
        return Limits(2, 1.0, budget, f"{device_bytes / GiB:.0f} GiB {'shared' if integrated else 'GPU'} memory")
    if device_bytes <= 16.5 * GiB:
        return Limits(4, 2.0, budget, f"{device_bytes / GiB:.0f} GiB GPU memory")
    return Limits(8, 4.0, budget, f"{device_bytes / GiB:.0f} GiB GPU memory")


def check_fits(estimate: MemoryEstimate, limits: Limits) -> None:
    """Refuse settings whose estimate exceeds the device budget, saying what to lower."""
    if estimate.total > limits.budget:
        raise UniforkError(f"the engines need about {estimate.describe()} but this device has about "
                           f"{limits.budget / GiB:.2f} GiB to spare ({limits.reason}): lower --max-batch, "
                           "--max-seq or --workspace-gb, or build with --fp16")
