"""ONNX Runtime GPU provider lists: plain dicts in the form onnxruntime.InferenceSession takes."""

from __future__ import annotations

import pytest

from unifork_rt.engines.ort_providers import VARIANTS, provider_list
from unifork_rt.engines.profiles import GiB, Profile, ShapeRange
from unifork_rt.errors import InputError


def test_cpu():
    assert provider_list("ort-cpu", "/c") == ["CPUExecutionProvider"]


def test_cuda():
    (name, opts), cpu = provider_list("ort-cuda", "/c", device=1)
    assert (name, cpu) == ("CUDAExecutionProvider", "CPUExecutionProvider")
    assert opts["device_id"] == 1 and opts["arena_extend_strategy"] == "kSameAsRequested"


def test_tensorrt(tmp_path):
    (trt, opts), (cuda, _), cpu = provider_list("ort-tensorrt", tmp_path, fp16=True, workspace_gb=2)
    assert (trt, cuda, cpu) == ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    assert opts["trt_fp16_enable"] is True and opts["trt_max_workspace_size"] == 2 * GiB
    assert opts["trt_engine_cache_enable"] is True and opts["trt_engine_cache_path"] == str(tmp_path / "trt_engines")
    assert opts["trt_timing_cache_enable"] is True and opts["trt_timing_cache_path"] == str(tmp_path / "trt_timing")
    assert not any(k.startswith("trt_profile") for k in opts)
    assert provider_list("ort-tensorrt", tmp_path)[0][1]["trt_fp16_enable"] is False


def test_tensorrt_with_a_profile(tmp_path):
    p = Profile("prefill", (("x", ShapeRange((1, 1, 8), (2, 4, 8), (2, 16, 8))),
                            ("start", ShapeRange((1,), (2,), (2,)))))
    opts = provider_list("ort-tensorrt", tmp_path, profile=p)[0][1]
    assert opts["trt_profile_min_shapes"] == "x:1x1x8,start:1"
    assert opts["trt_profile_opt_shapes"] == "x:2x4x8,start:2"
    assert opts["trt_profile_max_shapes"] == "x:2x16x8,start:2"


def test_unknown_variant():
    with pytest.raises(InputError, match="valid: ort-cpu, ort-cuda, ort-tensorrt"):
        provider_list("ort-rocm", "/c")
    assert VARIANTS == ("ort-cpu", "ort-cuda", "ort-tensorrt")


def test_onnxruntime_accepts_the_option_dicts(tmp_path):
    """ORT normalises every option to a string; the lists must survive that on any build."""
    ort = pytest.importorskip("onnxruntime")
    collection = pytest.importorskip("onnxruntime.capi.onnxruntime_inference_collection")
    check_and_normalize_provider_args = getattr(collection, "check_and_normalize_provider_args", None)
    if check_and_normalize_provider_args is None:
        pytest.skip("this onnxruntime normalises provider options elsewhere")

    for variant in VARIANTS:
        wanted = provider_list(variant, tmp_path, fp16=True)
        available = [p if isinstance(p, str) else p[0] for p in wanted]
        names, options = check_and_normalize_provider_args(wanted, None, available)
        assert names == available and all(isinstance(v, str) for o in options for v in o.values())
    assert "CPUExecutionProvider" in ort.get_available_providers()
