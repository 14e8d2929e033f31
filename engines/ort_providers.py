"""ONNX Runtime execution providers for the GPU variants: the option dicts, in one place.

The ORT backend (unifork_rt.runtime.ort_backend) passes `provider_list(variant, cache_dir,
fp16)` to onnxruntime.InferenceSession(providers=...). Entries are a provider name or a
(name, options) pair, in priority order; ORT assigns each node to the first provider that
takes it, so CPU stays last as the fallback for anything the GPU providers refuse (and the
backend checks `session.get_providers()` to refuse a silent fallback).

    ort-cuda      CUDA EP: kernels per ONNX op; no build step
    ort-tensorrt  TensorRT EP: ORT builds TensorRT engines for the graph (minutes the first
                  time), caches them in CACHE/trt_engines keyed by graph and GPU, and keeps
                  kernel timings in CACHE/trt_timing; CUDA EP then CPU for leftovers. The ORT
                  backend passes each graph's own profile and CACHE = the user cache folder
                  (~/.cache/unifork-rt/ort-tensorrt/BUNDLE-KEY, see unifork_rt.io.user_cache_dir)

Values follow ORT's Python examples (bools, ints); ORT turns them into strings. No import
of onnxruntime here: these are plain dicts, tested on any machine.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from .profiles import GiB, Profile, ort_profile_options

VARIANTS = ("ort-cpu", "ort-cuda", "ort-tensorrt")
# the TensorRT EP's builder workspace: what an 8 GB Jetson can spare beside the model (native
# engines size theirs by GPU class with `unifork-rt build --workspace-gb`)
TRT_WORKSPACE_GB = 1.0


def cuda_options(device: int = 0) -> dict:
    return {
        "device_id": device,
        # grow the memory arena by what is asked, not to the next power of two: on an 8 GB
        # Jetson the doubling strategy can claim memory the OS needs
        "arena_extend_strategy": "kSameAsRequested",
        "cudnn_conv_algo_search": "HEURISTIC",  # the vision graphs' convs: no minutes-long exhaustive search
        "do_copy_in_default_stream": True,
    }


def tensorrt_options(cache_dir: str | Path, fp16: bool = False, device: int = 0,
                     profile: Profile | None = None) -> dict:
    """TensorRT EP options. profile: one graph's optimization profile (profiles.py); without it
    ORT sizes the engine to the first shapes it sees and rebuilds when a larger one comes."""
    cache = Path(cache_dir)
    opts = {
        "device_id": device,
        "trt_max_workspace_size": int(TRT_WORKSPACE_GB * GiB),
        "trt_fp16_enable": bool(fp16),
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(cache / "trt_engines"),
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": str(cache / "trt_timing"),
    }
    if profile is not None:
        opts.update(ort_profile_options(profile))
    return opts


def provider_list(variant: str, cache_dir: str | Path, fp16: bool = False, *, device: int = 0,
                  profile: Profile | None = None) -> list:
    """The providers argument of onnxruntime.InferenceSession for a backend variant.

    cache_dir: where the TensorRT EP keeps engines and timings (the backend's default: a per-user folder);
    fp16: let TensorRT run in half precision; profile: the graph's optimization profile
    (use its prefill profile, which also covers T = 1).
    """
    if variant == "ort-cpu":
        return ["CPUExecutionProvider"]
    if variant == "ort-cuda":
        return [("CUDAExecutionProvider", cuda_options(device)), "CPUExecutionProvider"]
    if variant == "ort-tensorrt":
        return [("TensorrtExecutionProvider", tensorrt_options(cache_dir, fp16, device, profile)),
                ("CUDAExecutionProvider", cuda_options(device)), "CPUExecutionProvider"]
    raise InputError(f"unknown ONNX Runtime variant {variant!r}; valid: {', '.join(VARIANTS)}")
