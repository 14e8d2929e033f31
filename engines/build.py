"""Build one TensorRT engine per graph of a bundle, with fingerprints and a timing cache.

    BUNDLE/manifest.json + NAME.onnx ──► opcheck (no GPU needed) ──► per graph:
        trt.Builder ─► network ◄─ trt.OnnxParser(NAME.onnx)
        builder config: workspace pool limit, FP16 / INT8 flags, optimization profiles
                        (profiles.py: prefill + decode), shared timing cache
        builder.build_serialized_network ─► ENGINES/NAME.engine (temp file + os.replace)
                                         ─► ENGINES/NAME.engine.json (fingerprint sidecar)
    ENGINES/timing.cache is loaded before and saved after, so rebuilds on the same GPU skip
    most kernel timing.

An engine whose sidecar matches (same graph hash, TensorRT, GPU, flags, profiles) is kept;
a stale one is rebuilt and the reason printed. `tensorrt` and `cuda-python` are imported
only inside the build: without them, or without a GPU, `build_engines` raises a
MissingDependencyError that says what to install. The CLI (`unifork-rt build`) calls
`build_engines`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import InputError, UniforkError
from ..io import atomic_write_bytes
from ..runtime.bundle import GRAPHS, load_bundle
from . import opcheck, profiles as prof
from .fingerprint import BuildFlags, StaleEngineError, check_engine, make_fingerprint, write_sidecar
from .trt_env import current_device, load_cudart, load_tensorrt

ENGINE_SUFFIX = ".engine"
TIMING_CACHE = "timing.cache"


def engine_path(out_dir: str | Path, graph: str) -> Path:
    return Path(out_dir) / f"{graph}{ENGINE_SUFFIX}"


def default_engines_dir(bundle_root: str | Path) -> Path:
    return Path(bundle_root) / "engines"


def build_engines(bundle_dir: str | Path, out_dir: str | Path | None = None, fp16: bool = False,
                  max_batch: int | None = None, max_seq: int | None = None, workspace_gb: float | None = None,
                  timing_cache: str | Path | None = None, graphs: tuple[str, ...] | None = None,
                  force: bool = False, tf32: bool = True, device: int = 0, verbose: bool = False,
                  log: Callable[[str], None] = print) -> list[Path]:
    """Build (or keep, when up to date) the engines of a bundle; returns the engine paths.

    out_dir: default BUNDLE/engines. max_batch / workspace_gb: default by GPU class
    (profiles.suggest_limits: 2 / 1 GB on an 8 GB Jetson). max_seq: the longest prefill the
    engines take, default the bundle's max_seq (the KV length). timing_cache: default
    OUT/timing.cache. graphs: a subset of the bundle's graphs. force: rebuild even when up to date.
    tf32: let fp32 layers use TF32 tensor cores (TensorRT's default; False for strict fp32 parity).
    """
    bundle = load_bundle(bundle_dir)
    out = Path(out_dir) if out_dir is not None else default_engines_dir(bundle.root)
    names = tuple(graphs) if graphs else GRAPHS
    unknown = sorted(set(names) - set(bundle.graphs))
    if unknown:
        raise InputError(f"unknown graph(s) {', '.join(unknown)}; valid graphs: {', '.join(bundle.graphs)}")
    reports = opcheck.require_supported(bundle)  # fails on a CPU-only machine too, before any GPU work
    for r in reports.values():
        for w in r.problems:
            log(str(w))
    if bundle.precision == "fp16" and not fp16:
        fp16 = True  # fp16 graphs: the FP16 flag lets TensorRT keep them in half precision
        log("the bundle is fp16: building with --fp16")

    trt = load_tensorrt("building TensorRT engines")
    cudart = load_cudart("building TensorRT engines")
    gpu = current_device(cudart, device)
    limits = prof.suggest_limits(gpu.total_bytes, gpu.integrated)
    max_batch = limits.max_batch if max_batch is None else max_batch
    workspace_gb = limits.workspace_gb if workspace_gb is None else workspace_gb
    max_seq = bundle.max_seq if max_seq is None else max_seq
    if workspace_gb <= 0:
        raise InputError(f"--workspace-gb {workspace_gb} must be > 0")
    profiles = prof.bundle_profiles(bundle, max_batch=max_batch, max_seq=max_seq)
    for name in names:
        problems = prof.check_profiles(bundle.graphs[name], profiles[name])
        if problems:
            raise UniforkError(f"optimization profiles for {name} are inconsistent with the manifest: "
                               f"{'; '.join(problems)}; re-export the bundle")
    dtype_bytes = 2 if fp16 else 4
    estimate = prof.estimate_memory(bundle.config, {n: bundle.manifest["graphs"][n].get("kv") for n in bundle.graphs},
                                    prof.bundle_weight_bytes(bundle, fp16), max_batch=max_batch, max_seq=max_seq,
                                    dtype_bytes=dtype_bytes, workspace_bytes=int(workspace_gb * prof.GiB))
    log(f"{gpu.name} (sm {gpu.sm}, {gpu.total_bytes / prof.GiB:.1f} GiB{', shared' if gpu.integrated else ''}), "
        f"TensorRT {trt.__version__}: max_batch {max_batch}, max_seq {max_seq}, workspace {workspace_gb:g} GB, "
        f"{'fp16' if fp16 else 'fp32'}; estimated {estimate.describe()}")
    prof.check_fits(estimate, limits)

    flags = BuildFlags(fp16=fp16, tf32=tf32, max_batch=max_batch, max_seq=max_seq,
                       workspace_gb=float(workspace_gb))
    cache_path = Path(timing_cache) if timing_cache is not None else out / TIMING_CACHE
    cache = cache_path.read_bytes() if cache_path.is_file() else b""
    logger = trt.Logger(trt.Logger.INFO if verbose else trt.Logger.WARNING)
    rebuild = f"unifork-rt build {bundle.root} --out {out}"
    paths = []
    for name in names:
        spec = bundle.graphs[name]
        path = engine_path(out, name)
        expected = make_fingerprint(name, spec.sha256, trt.__version__, gpu.name, gpu.compute_capability, flags,
                                    profiles[name])
        if not force and path.is_file():
            try:
                check_engine(path, expected, path.read_bytes(), rebuild=rebuild)
            except StaleEngineError as e:
                log(f"rebuilding {name}: {e}")
            else:
                log(f"{name}: up to date ({path})")
                paths.append(path)
                continue
        log(f"{name}: building {path} ...")
        data, cache = build_engine(trt, logger, spec.path, profiles[name], flags, cache, log)
        atomic_write_bytes(path, data)
        write_sidecar(path, expected, data)
        atomic_write_bytes(cache_path, cache)  # after every engine: an interrupted build keeps its timings
        log(f"{name}: {len(data) / 1e6:.1f} MB")
        paths.append(path)
    return paths


def build_engine(trt, logger, onnx_path: Path, profiles: tuple[prof.Profile, ...], flags: BuildFlags,
                 timing_cache: bytes, log: Callable[[str], None] = print) -> tuple[bytes, bytes]:
    """Parse one ONNX graph and build its serialized engine; returns (engine, updated timing cache)."""
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10 networks are always explicit-batch (the flag is deprecated)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):  # from a path, so NAME.onnx.data beside it is found
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise UniforkError(f"TensorRT's ONNX parser rejected {onnx_path}: {errors or 'no details'}; check the "
                           "graphs with `unifork_rt.engines.opcheck` and re-export")
    inputs = {}
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        if tensor.is_shape_tensor:
            raise UniforkError(f"{onnx_path.name}: input {tensor.name!r} is used as a shape by the graph; the graph "
                               "contract (docs/GRAPHS.md) keeps pos/start as values: re-export the bundle")
        inputs[tensor.name] = tuple(tensor.shape)
    problems = network_profile_problems(inputs, profiles)
    if problems:
        raise UniforkError(f"{onnx_path.name}: the parsed network does not match its profiles: {'; '.join(problems)}")

    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(flags.workspace_gb * prof.GiB))
    if flags.fp16:
        # TensorRT-RTX has no FP16 flag: its networks are strongly typed, the graph's own types
        # decide (an fp16 bundle builds fp16 kernels; an fp32 one stays fp32)
        fp16_flag = getattr(trt.BuilderFlag, "FP16", None)
        if fp16_flag is not None:
            config.set_flag(fp16_flag)
    if not flags.tf32:
        config.clear_flag(trt.BuilderFlag.TF32)
    for p in profiles:
        profile = builder.create_optimization_profile()
        for name, r in p.shapes:
            profile.set_shape(name, r.min, r.opt, r.max)
        config.add_optimization_profile(profile)
    cache = config.create_timing_cache(timing_cache)
    if not config.set_timing_cache(cache, ignore_mismatch=False):
        log("the timing cache was made on another GPU or TensorRT version: starting a new one")
        cache = config.create_timing_cache(b"")
        config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise UniforkError(f"TensorRT could not build an engine for {onnx_path.name} (see the TensorRT log above; "
                           "rerun with verbose=True): a smaller --max-batch/--max-seq or a larger --workspace-gb "
                           "may help")
    return bytes(serialized), bytes(config.get_timing_cache().serialize())


def network_profile_problems(inputs: dict[str, tuple[int, ...]], profiles: tuple[prof.Profile, ...]) -> list[str]:
    """Compare the parsed network's inputs (-1 = dynamic) with the profiles computed from the manifest."""
    problems = []
    dynamic = {n for n, shape in inputs.items() if any(d < 0 for d in shape)}
    for p in profiles:
        named = dict(p.shapes)
        for n in sorted(set(named) - set(inputs)):
            problems.append(f"profile {p.name} names {n!r}, which is not a network input")
        for n in sorted(dynamic - set(named)):
            problems.append(f"profile {p.name} has no range for dynamic input {n!r} {list(inputs[n])}")
        for n, r in named.items():
            shape = inputs.get(n)
            if shape is None:
                continue
            if len(shape) != len(r.min) or any(d >= 0 and not lo == hi == d for d, lo, hi in zip(shape, r.min, r.max)):
                problems.append(f"profile {p.name}: {n} {list(shape)} vs range {list(r.min)}..{list(r.max)}")
    return problems
