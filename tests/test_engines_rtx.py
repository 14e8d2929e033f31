"""A real TensorRT parser and builder in CI, without a GPU: TensorRT for RTX (`tensorrt-rtx-cu12`,
in the dev extra) parses every fp32/fp16 graph of the micro and shapes bundles and builds an
engine from it with our own build code (engines.build.build_engine) and optimization profiles.

What this proves: TensorRT's ONNX parser takes our graphs (ops, types, INT64 I/O, dynamic dims),
the profiles computed from the manifest match the parsed networks, and the builder finds
kernels for every layer. What it does not: loading or running an engine needs a GPU, and
TensorRT-RTX is not datacenter TensorRT (docs/ENGINES.md lists the differences).
"""

from __future__ import annotations

import time

import pytest


trt = pytest.importorskip("tensorrt_rtx", reason="tensorrt-rtx-cu12 is not installed (it is in the dev extra)")

from unifork_rt import assets  # noqa: E402
from unifork_rt.engines import build as B  # noqa: E402
from unifork_rt.engines import profiles as P  # noqa: E402
from unifork_rt.engines.fingerprint import BuildFlags  # noqa: E402
from unifork_rt.runtime.bundle import GRAPHS, load_bundle  # noqa: E402

MAX_BATCH = 8  # the A100 default: the profiles cover the pipeline's chunks


@pytest.fixture(scope="module")
def bundles(micro_model_dir, micro_bundle, tmp_path_factory):
    """name -> bundle folder: micro fp32/fp16 (random weights), the shipped shapes bundle (fp32)
    and its checkpoint exported to fp16."""
    from unifork_rt.export.onnx_export import export_bundle

    out = tmp_path_factory.mktemp("rtx")
    shapes_ckpt = assets.default_model_dir() / "checkpoint"
    return {
        "micro-fp32": micro_bundle,
        "micro-fp16": export_bundle(micro_model_dir, out / "micro-fp16", precision="fp16", progress=False),
        "shapes-fp32": assets.default_model_dir(),
        "shapes-fp16": export_bundle(shapes_ckpt, out / "shapes-fp16", precision="fp16", progress=False),
    }


@pytest.mark.slow
@pytest.mark.parametrize("which", ["micro-fp32", "micro-fp16", "shapes-fp32", "shapes-fp16"])
def test_every_graph_parses_and_builds(bundles, which):
    bundle = load_bundle(bundles[which])
    assert bundle.precision == which.split("-")[1]
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)  # no GPU: the builder logs that it cannot time kernels
    profiles = P.bundle_profiles(bundle, max_batch=MAX_BATCH)
    flags = BuildFlags(fp16=bundle.precision == "fp16", max_batch=MAX_BATCH, max_seq=bundle.max_seq,
                       workspace_gb=1.0)
    times = {}
    for name in GRAPHS:
        t = time.perf_counter()
        engine, _ = B.build_engine(trt, logger, bundle.graphs[name].path, profiles[name], flags, b"", log=print)
        times[name] = time.perf_counter() - t
        assert len(engine) > 1000, name
    print(f"{which}: built " + ", ".join(f"{n} {s:.1f} s" for n, s in times.items()))


def test_the_rtx_api_differences_we_rely_on():
    """docs/ENGINES.md: TensorRT-RTX has no FP16/INT8 builder flags (networks are strongly typed);
    build_engine copes. The calls build_engine makes exist in both."""
    assert not hasattr(trt.BuilderFlag, "FP16") and not hasattr(trt.BuilderFlag, "INT8")
    assert hasattr(trt.BuilderFlag, "TF32")
    for cls, names in ((trt.Builder, ("create_network", "create_builder_config", "create_optimization_profile",
                                      "build_serialized_network")),
                       (trt.IBuilderConfig, ("set_memory_pool_limit", "add_optimization_profile",
                                             "create_timing_cache", "set_timing_cache", "get_timing_cache")),
                       (trt.OnnxParser, ("parse_from_file", "get_error")),
                       (trt.IExecutionContext, ("set_optimization_profile_async", "set_input_shape",
                                                "set_tensor_address", "execute_async_v3"))):
        missing = [n for n in names if not hasattr(cls, n)]
        assert not missing, (cls.__name__, missing)
