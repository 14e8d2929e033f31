"""Building engines: clear errors without TensorRT / cuda-python / a GPU, and the whole build
flow (opcheck, profiles, flags, timing cache, atomic files, fingerprints, stale rebuilds) on
the fake TensorRT from test_engines_fakes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from test_engines_fakes import FakeCudart, fake_gpu, make_fake_tensorrt  # noqa: F401  (fixture)
from test_engines_toy import make_toy_bundle
from unifork_rt.engines import build as B
from unifork_rt.engines import trt_env
from unifork_rt.engines.fingerprint import read_sidecar, sidecar_path
from unifork_rt.errors import InputError, MissingDependencyError, UniforkError
from unifork_rt.runtime.bundle import GRAPHS

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def toy(tmp_path):
    return make_toy_bundle(tmp_path / "toy")


def quiet(_msg):
    pass


# --- without TensorRT, cuda-python or a GPU ----------------------------------------------------------
def test_modules_import_without_tensorrt_or_cuda():
    code = ("import sys; sys.modules['tensorrt'] = None; sys.modules['cuda'] = None\n"
            "import unifork_rt.engines.opcheck, unifork_rt.engines.profiles, unifork_rt.engines.fingerprint\n"
            "import unifork_rt.engines.build, unifork_rt.engines.trt_backend, unifork_rt.engines.ort_providers\n"
            "import unifork_rt.engines.trt_env\n"
            "print(sorted(m for m in sys.modules if m.startswith(('tensorrt', 'cuda', 'onnx')) and sys.modules[m]))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"  # nothing GPU-related (nor onnx) is imported just by importing


def test_build_without_tensorrt_says_how_to_install(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    monkeypatch.setattr(trt_env.platform, "machine", lambda: "x86_64")
    with pytest.raises(MissingDependencyError) as e:
        B.build_engines(toy, log=quiet)
    msg = str(e.value)
    assert "building TensorRT engines needs NVIDIA TensorRT" in msg and "pip install 'unifork-rt[tensorrt]'" in msg
    assert isinstance(e.value, UniforkError)


def test_jetson_hint():
    hint = trt_env.install_hint("aarch64")
    assert "JetPack" in hint and "python3-libnvinfer" in hint and "--system-site-packages" in hint
    assert "unifork-rt[tensorrt]" in trt_env.install_hint("x86_64")


def test_build_without_cuda_python(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(FakeCudart()))
    monkeypatch.setitem(sys.modules, "cuda", None)
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", None)
    monkeypatch.setitem(sys.modules, "cuda.cudart", None)
    with pytest.raises(MissingDependencyError, match="needs cuda-python"):
        B.build_engines(toy, log=quiet)


def test_build_without_a_gpu(toy, monkeypatch):
    cudart = FakeCudart(devices=0)
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(cudart))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    with pytest.raises(MissingDependencyError, match="no NVIDIA GPU is visible.*--backend ort-cpu"):
        B.build_engines(toy, log=quiet)


def test_old_tensorrt_is_refused(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(FakeCudart(), version="8.6.1"))
    with pytest.raises(MissingDependencyError, match="needs TensorRT 10 or newer; this is TensorRT 8.6.1"):
        B.build_engines(toy, log=quiet)


def test_unsupported_graph_fails_before_tensorrt_is_needed(tmp_path, monkeypatch):
    from onnx import helper

    monkeypatch.setitem(sys.modules, "tensorrt", None)
    bad = make_toy_bundle(tmp_path / "bad", extra_node=helper.make_node("MatMulInteger", ["x", "x"], ["junk"]))
    with pytest.raises(UniforkError, match="trunk: MatMulInteger: marked unsupported"):
        B.build_engines(bad, log=quiet)


def test_unknown_graph_name(toy):
    with pytest.raises(InputError, match="unknown graph.*valid graphs: vision_encoder"):
        B.build_engines(toy, graphs=("trunk", "decoder"), log=quiet)


# --- the build flow, on the fake TensorRT ------------------------------------------------------------
def test_build_writes_engines_sidecars_and_timing_cache(toy, fake_gpu):
    logs = []
    paths = B.build_engines(toy, fp16=True, log=logs.append)
    out = toy / "engines"
    assert paths == [out / f"{g}.engine" for g in GRAPHS] and all(p.is_file() for p in paths)
    assert fake_gpu.trt.stats.builds == len(GRAPHS)
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temporaries
    fp = read_sidecar(out / "trunk.engine")
    assert fp["gpu"] == "Fake Orin" and fp["compute_capability"] == "8.7" and fp["tensorrt"] == "10.99.0"
    # defaults for an 8 GB shared-memory device (a Jetson): max_batch 2, 1 GB workspace
    assert fp["flags"] == {"fp16": True, "tf32": True, "max_batch": 2, "max_seq": 64,
                           "workspace_gb": 1.0}
    assert [p["name"] for p in fp["profiles"]] == ["prefill", "decode"]
    assert [p["name"] for p in read_sidecar(out / "rq_head.engine")["profiles"]] == ["step"]
    assert (out / "timing.cache").read_bytes() == b"t" * len(GRAPHS)  # loaded and saved after every engine
    assert any("Fake Orin (sm 8.7, 8.0 GiB, shared)" in m and "estimated" in m for m in logs)

    # what TensorRT was asked for
    trunk_cfg = fake_gpu.trt.stats.configs[GRAPHS.index("trunk")]
    assert trunk_cfg.flags == {"FP16", "TF32"} and trunk_cfg.pools == {"WORKSPACE": 1 << 30}
    prefill, decode = (p.shapes for p in trunk_cfg.profiles)
    assert prefill["x"] == ([1, 1, 64], [2, 34, 64], [2, 64, 64])
    assert decode["x"] == ([1, 1, 64], [2, 1, 64], [2, 1, 64])
    assert decode["kv"][2] == [2, 2, 2, 2, 64, 16]
    assert all(n.flags == 0 for n in fake_gpu.trt.stats.networks)  # explicit batch: the TensorRT 10 default


def test_up_to_date_engines_are_kept_and_stale_ones_rebuilt(toy, fake_gpu):
    B.build_engines(toy, log=quiet)
    builds = fake_gpu.trt.stats.builds
    logs = []
    B.build_engines(toy, log=logs.append)
    assert fake_gpu.trt.stats.builds == builds and sum("up to date" in m for m in logs) == len(GRAPHS)

    logs.clear()
    B.build_engines(toy, max_batch=4, graphs=("trunk", "rq_head"), log=logs.append)  # a flag changed
    assert fake_gpu.trt.stats.builds == builds + 2
    assert any("rebuilding trunk" in m and "max_batch 2 -> 4" in m for m in logs)
    assert read_sidecar(toy / "engines" / "trunk.engine")["flags"]["max_batch"] == 4

    (toy / "engines" / "connector.engine").write_bytes(b"truncated")  # sidecar hash no longer matches
    logs.clear()
    B.build_engines(toy, graphs=("connector",), log=logs.append)
    assert any("rebuilding connector" in m and "truncated or replaced" in m for m in logs)

    B.build_engines(toy, graphs=("connector",), force=True, log=quiet)
    assert fake_gpu.trt.stats.builds == builds + 4
    B.build_engines(toy, graphs=("connector",), tf32=False, log=quiet)  # strict fp32: a different engine
    assert fake_gpu.trt.stats.builds == builds + 5 and fake_gpu.trt.stats.configs[-1].flags == set()


def test_fp16_bundle_builds_with_fp16(toy, fake_gpu):
    m = json.loads((toy / "manifest.json").read_text())
    m["precision"] = "fp16"
    for g in m["graphs"].values():  # an fp16 bundle's float tensors are float16 (the manifest schema checks)
        for t in g["inputs"] + g["outputs"]:
            t["dtype"] = "float16" if t["dtype"] == "float32" else t["dtype"]
    (toy / "manifest.json").write_text(json.dumps(m))
    logs = []
    B.build_engines(toy, graphs=("connector",), log=logs.append)
    assert "the bundle is fp16: building with --fp16" in logs and read_sidecar(toy / "engines" / "connector.engine")[
        "flags"]["fp16"]


def test_timing_cache_from_another_gpu_is_replaced(toy, fake_gpu, tmp_path):
    cache = tmp_path / "shared.cache"
    cache.write_bytes(b"other-gpu")
    logs = []
    B.build_engines(toy, graphs=("connector",), timing_cache=cache, out_dir=tmp_path / "e", log=logs.append)
    assert any("starting a new one" in m for m in logs) and cache.read_bytes() == b"t"
    assert sidecar_path(tmp_path / "e" / "connector.engine").is_file()


def test_limits_are_checked(toy, fake_gpu):
    with pytest.raises(InputError, match="--max-seq 65 is longer than the KV buffers"):
        B.build_engines(toy, max_seq=65, log=quiet)
    with pytest.raises(InputError, match="--workspace-gb -1"):
        B.build_engines(toy, workspace_gb=-1, log=quiet)
    fake_gpu.cudart.total = 2 << 30  # a 2 GB shared-memory device has nothing left after the OS
    with pytest.raises(UniforkError, match="lower --max-batch"):
        B.build_engines(toy, log=quiet)


def test_parser_errors_and_profile_mismatch_are_reported(toy, fake_gpu):
    from unifork_rt.engines.profiles import Profile, ShapeRange

    logger = fake_gpu.trt.Logger()
    flags = B.BuildFlags()
    only_x = (Profile("p", (("x", ShapeRange((1, 1, 64), (1, 1, 64), (1, 1, 64))),)),)
    with pytest.raises(UniforkError, match="no range for dynamic input 'kv'"):
        B.build_engine(fake_gpu.trt, logger, toy / "trunk.onnx", only_x, flags, b"", quiet)
    bad = make_toy_bundle(toy.parent / "bad", extra_node=__import__("onnx").helper.make_node("STFT", ["x", "x"], ["j"]))
    with pytest.raises(UniforkError, match="TensorRT's ONNX parser rejected .*trunk.onnx: error: g: STFT"):
        B.build_engine(fake_gpu.trt, logger, bad / "trunk.onnx", only_x, flags, b"", quiet)
    assert B.network_profile_problems({"x": (-1, 4)}, (Profile("p", (("y", ShapeRange((1,), (1,), (1,))),)),)) == [
        "profile p names 'y', which is not a network input", "profile p has no range for dynamic input 'x' [-1, 4]"]


# --- what the CLI and the extras promise (issue #14 items 1, 2, 5) -----------------------------------
def test_cli_takes_the_documented_workspace_gb(toy, fake_gpu):
    from click.testing import CliRunner

    from unifork_rt.cli import main

    r = CliRunner().invoke(main, ["build", str(toy), "--workspace-gb", "0.5", "--graph", "connector"])
    assert r.exit_code == 0, r.output
    assert read_sidecar(toy / "engines" / "connector.engine")["flags"]["workspace_gb"] == 0.5
    r = CliRunner().invoke(main, ["build", str(toy), "--workspace-gb", "0"])
    assert r.exit_code == 2 and "error: --workspace-gb 0.0 must be > 0" in r.output


def _extra(name: str) -> dict:
    tomllib = pytest.importorskip("tomllib")
    from packaging.requirements import Requirement

    reqs = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"][name]
    return {Requirement(r).name: Requirement(r) for r in reqs}


def test_tensorrt_extra_installs_what_build_needs():
    reqs = _extra("tensorrt")
    assert "onnx" in reqs  # every build runs the op checker first
    cuda = reqs["cuda-python"].specifier
    assert cuda.contains("12.9.0") and not cuda.contains("13.0.0")  # cuda-python 13 needs a CUDA 13 driver
    trt = next(r for n, r in reqs.items() if n.startswith("tensorrt"))
    assert trt.specifier.contains("10.16.1.11") and not trt.specifier.contains("11.0.0")  # written for TensorRT 10


def test_missing_onnx_points_to_the_tensorrt_extra(toy, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'unifork-rt\[tensorrt\]'"):
        B.build_engines(toy, log=quiet)


def test_driver_too_old_for_cuda_python_says_so(toy, monkeypatch):
    cudart = FakeCudart(driver_too_old=True)
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(cudart))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    with pytest.raises(MissingDependencyError, match=r"driver is older than the CUDA runtime.*cuda-python>=12,<13"):
        B.build_engines(toy, log=quiet)
