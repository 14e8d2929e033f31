"""ONNX Runtime GPU provider lists: what the ORT backend really hands to InferenceSession.

Checked against sources other than the dicts themselves: ONNX Runtime's own argument check
(names and option values it accepts), the optimization profile each graph's engine must be
built for (engines/profiles.py, parsed back from the option strings), and the backend's own
settings (cache folder, precision, device).
"""

from __future__ import annotations

import pytest

from test_engines_toy import make_toy_bundle
from unifork_rt.engines.ort_providers import VARIANTS, provider_list
from unifork_rt.engines.profiles import graph_profiles
from unifork_rt.errors import InputError
from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import DEFAULT_TRT_MAX_BATCH, OrtBackend

GPU_VARIANTS = ("ort-cuda", "ort-tensorrt")


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    return load_bundle(make_toy_bundle(tmp_path_factory.mktemp("toy")))


def names(providers: list) -> list[str]:
    return [p if isinstance(p, str) else p[0] for p in providers]


def parse_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """'x:1x1x8,start:1' -> {'x': (1, 1, 8), 'start': (1,)}: the TensorRT EP's documented syntax."""
    out = {}
    for item in text.split(","):
        name, dims = item.split(":")
        out[name] = tuple(int(d) for d in dims.split("x"))
    return out


@pytest.mark.parametrize("variant", GPU_VARIANTS)
def test_the_cpu_stays_last_as_the_fallback(variant, tmp_path):
    got = names(provider_list(variant, tmp_path))
    assert got[-1] == "CPUExecutionProvider" and got.count("CPUExecutionProvider") == 1


@pytest.mark.parametrize("variant", ["ort-cpu", *GPU_VARIANTS])
def test_onnxruntime_accepts_the_lists(variant, tmp_path, toy):
    """ORT's own check of provider arguments: known argument shapes, every option value a string
    after normalisation (what a GPU session would receive), for the backend's real lists."""
    pytest.importorskip("onnxruntime")
    collection = pytest.importorskip("onnxruntime.capi.onnxruntime_inference_collection")
    check = getattr(collection, "check_and_normalize_provider_args", None)
    if check is None:
        pytest.skip("this onnxruntime normalises provider options elsewhere")
    wanted = OrtBackend(toy, variant=variant, cache_dir=str(tmp_path))._provider_list("trunk")
    got_names, options = check(wanted, None, names(wanted))
    assert got_names == names(wanted) and all(isinstance(v, str) for o in options for v in o.values())


def test_tensorrt_engines_are_built_for_each_graphs_own_profile(toy, tmp_path):
    """The TensorRT EP gets, per graph, the prefill profile the native engines use (T from 1, so
    decode steps fit), in the bundle's cache folder and precision, on the backend's device."""
    be = OrtBackend(toy, variant="ort-tensorrt", cache_dir=str(tmp_path), device=1)
    for graph in ("trunk", "und_branch", "rq_head", "vision_encoder"):
        (trt, opts), (cuda, cuda_opts), _ = be._provider_list(graph)
        assert (trt, cuda) == ("TensorrtExecutionProvider", "CUDAExecutionProvider")
        want = graph_profiles(toy.graphs[graph], max_batch=DEFAULT_TRT_MAX_BATCH, max_seq=toy.max_seq,
                              cells=toy.config.image.num_cells)[0]
        for which in ("min", "opt", "max"):
            assert parse_shapes(opts[f"trt_profile_{which}_shapes"]) == {n: getattr(r, which) for n, r in want.shapes}
        assert opts["device_id"] == cuda_opts["device_id"] == 1
        assert opts["trt_fp16_enable"] == (toy.precision == "fp16")
        for key in ("trt_engine_cache_path", "trt_timing_cache_path"):  # inside the backend's cache folder
            assert opts[key].startswith(str(tmp_path))
        assert opts["trt_engine_cache_path"] != opts["trt_timing_cache_path"]


def test_the_tensorrt_cache_defaults_to_a_per_bundle_user_folder(toy, tmp_path, monkeypatch):
    monkeypatch.delenv("UNIFORK_RT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    a = OrtBackend(toy, variant="ort-tensorrt")._provider_list("trunk")[0][1]["trt_engine_cache_path"]
    assert a.startswith(str(tmp_path)) and not a.startswith(str(toy.root))


def test_fp16_follows_the_argument(tmp_path):
    on = provider_list("ort-tensorrt", tmp_path, fp16=True)[0][1]["trt_fp16_enable"]
    off = provider_list("ort-tensorrt", tmp_path)[0][1]["trt_fp16_enable"]
    assert on is True and off is False


def test_unknown_variant():
    with pytest.raises(InputError, match="valid: " + ", ".join(VARIANTS)):
        provider_list("ort-rocm", "/c")
