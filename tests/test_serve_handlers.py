"""The served models' logic without Triton: per-request errors, batching, and parity with the CLI's
runtime calls; the model repository's contract; the CLI without Triton installed."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from unifork_rt.data.shapes_world import held_out_scenes, render_pil
from unifork_rt.errors import InputError, MissingDependencyError
from unifork_rt.runtime.images import png_bytes
from unifork_rt.runtime.pipeline import DrawSettings, UniForkRuntime
from unifork_rt.serve import handlers
from unifork_rt.serve.repo import MODELS, RepoSettings, config_text, write_repository


@pytest.fixture(scope="module")
def rt():
    with UniForkRuntime() as r:  # the bundled shapes model: captions are meaningful
        yield r


def _png(scene) -> bytes:
    return png_bytes(np.asarray(render_pil(scene)))


def _col(values, dtype=object):
    return np.array([[v] for v in values], dtype=dtype)


def test_caption_batch_matches_runtime_and_isolates_bad_requests(rt):
    scenes = held_out_scenes(5, seed=3)
    images = [_png(s) for s in scenes]
    requests = [
        {"image": _col(images[:2])},                                     # two rows, default prompt
        {"image": _col([b"not an image"])},                              # bad: fails alone
        {"image": _col(images[2:3]), "max_new_tokens": _col([2], np.int32)},  # stops early
        {"image": _col(images[3:4]), "max_new_tokens": _col([0], np.int32)},  # bad setting
        {"image": _col(images[4:5]), "prompt": _col([b"a red circle"])},  # another prompt: its own batch
        {},                                                              # no image at all
    ]
    got = handlers.caption_batch(rt, requests)
    want = [rt.caption([render_pil(s)])[0] for s in scenes]
    assert [t.decode() for t in got[0]["caption"].reshape(-1)] == want[:2]
    assert isinstance(got[1], InputError) and "not an image" in str(got[1])
    assert got[2]["caption"].reshape(-1)[0].decode() == rt.caption([render_pil(scenes[2])], max_new_tokens=2)[0]
    assert len(got[2]["caption"].reshape(-1)[0].decode().split()) < len(want[2].split())
    assert isinstance(got[3], InputError) and "max_new_tokens 0" in str(got[3])
    assert got[4]["caption"][0, 0].decode() == rt.caption([render_pil(scenes[4])], prompt="a red circle")[0]
    assert isinstance(got[5], InputError) and "image is missing" in str(got[5])
    assert all("\n" not in str(r) for r in got if isinstance(r, Exception))


def test_caption_pieces_join_to_the_caption(rt):
    scene = held_out_scenes(1, seed=4)[0]
    pieces = [o["text"][0].decode() for o in handlers.caption_pieces(rt, {"image": np.array([_png(scene)], object)})]
    assert len(pieces) > 1 and "".join(pieces) == rt.caption([render_pil(scene)])[0]


def test_draw_batch_matches_cli_settings_and_isolates_bad_requests(rt):
    requests = [
        {"prompt": _col([b"a red circle", b"three blue squares"]), "seed": _col([0, 1], np.int64),
         "n": _col([2, 2], np.int32)},
        {"prompt": _col([b"  "])},                                                   # empty prompt
        {"prompt": _col([b"two circles"]), "seed": _col([5], np.int64), "cfg_scale": _col([2.0], np.float32),
         "temperature": _col([1.0], np.float32), "top_p": _col([0.96], np.float32), "top_k": _col([50], np.int32)},
        {"prompt": _col([b"a red circle", b"two circles"]), "n": _col([1, 2], np.int32)},  # n differs per row
        {"prompt": _col([b"a red circle"]), "temperature": _col([-1.0], np.float32)},       # bad setting
    ]
    got = handlers.draw_batch(rt, requests)
    first = got[0]
    assert first["image"].shape == (2, 2, 64, 64, 3) and first["image"].dtype == np.uint8
    assert first["png"].shape == (2, 2)
    for row, (prompt, seed) in enumerate((("a red circle", 0), ("three blue squares", 1))):
        want = rt.draw([prompt], n=2, seed=seed)  # what `unifork-rt draw PROMPT --n 2 --seed S` draws
        for j in range(2):
            assert np.array_equal(first["image"][row, j], want[j])
            assert first["png"][row, j] == png_bytes(want[j])
    # FP32 settings on the wire give the CLI's float64 values (0.96, not 0.9599999785)
    want = rt.draw(["two circles"], seed=5, cfg_scale=2.0, temperature=1.0, top_p=0.96, top_k=50)
    assert np.array_equal(got[2]["image"][0, 0], want[0])
    assert isinstance(got[1], InputError) and "prompt is empty" in str(got[1])
    assert isinstance(got[3], InputError) and "n differs" in str(got[3])
    assert isinstance(got[4], InputError) and "temperature" in str(got[4])


def test_float32_settings_read_as_the_decimal_sent():
    req = {"top_p": np.array([[0.96]], np.float32), "cfg_scale": np.array([[1.5]], np.float32)}
    assert handlers._numbers(req, "top_p", 1, float, None) == [0.96]
    assert handlers._numbers(req, "cfg_scale", 1, float, None) == [1.5]
    assert DrawSettings(top_p=handlers._numbers(req, "top_p", 1, float, None)[0]).top_p == 0.96


def test_repository_contract(tmp_path):
    repo = write_repository(tmp_path / "repo", RepoSettings(bundle="/models/shapes", instances=2, max_batch=4))
    for model, cls in MODELS.items():
        config = (repo / model / "config.pbtxt").read_text()
        assert f'name: "{model}"' in config and 'backend: "python"' in config
        assert 'string_value: "/models/shapes"' in config and "count: 2 kind: KIND_CPU" in config
        assert f"import {cls} as TritonPythonModel" in (repo / model / "1" / "model.py").read_text()
    caption, draw = (repo / "caption" / "config.pbtxt").read_text(), (repo / "draw" / "config.pbtxt").read_text()
    stream = (repo / "caption_stream" / "config.pbtxt").read_text()
    for name in ("image", "prompt", "max_new_tokens", "caption", "dynamic_batching", "max_batch_size: 4"):
        assert name in caption
    for name in ("prompt", "seed", "n", "cfg_scale", "temperature", "top_k", "top_p", '"png"',
                 "dims: [ -1, 64, 64, 3 ]", "dynamic_batching"):
        assert name in draw
    assert "decoupled: true" in stream and '"text"' in stream and '"token_id"' in stream
    gpu = config_text("draw", RepoSettings(backend="ort-cuda", kind="gpu", gpus=(0, 1)), 64)
    assert "count: 1 kind: KIND_GPU gpus: [ 0, 1 ]" in gpu


@pytest.mark.parametrize("kw, message", [
    (dict(instances=0), "--instances"), (dict(max_batch=0), "--max-batch"), (dict(backend="nope"), "unknown backend"),
    (dict(backend="ort-cuda"), "runs on a GPU"),
])
def test_repository_settings_are_checked(kw, message):
    with pytest.raises(InputError, match=message):
        RepoSettings(**kw)


def test_cli_repo_writes_the_repository(tmp_path):
    out = tmp_path / "repo"
    r = subprocess.run([sys.executable, "-m", "unifork_rt.cli", "repo", "--out", str(out), "--instances", "2"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(MODELS)
    r = subprocess.run([sys.executable, "-m", "unifork_rt.cli", "repo", "--out", str(out), "--gpus", "a"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "error: --gpus 'a'" in r.stderr and "Traceback" not in r.stderr


def test_cli_imports_no_triton():
    code = ("import sys, unifork_rt.cli; bad = [m for m in sys.modules if m.split('.')[0] in "
            "('tritonclient', 'pytriton', 'torch', 'onnxruntime')]; print(bad); assert not bad")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_serve_without_triton_says_what_to_install(monkeypatch):
    import importlib.util

    from unifork_rt.serve import triton

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "pytriton" else real(name, *a))
    with pytest.raises(MissingDependencyError, match=r"pip install 'unifork-rt\[serve\]'"):
        triton.find_triton()


def test_deploy_files_agree_with_the_repository():
    """The container, compose and Kubernetes files cannot run here (no Docker, cluster or GPU):
    check what can be checked, that they parse and use the repository and ports we write."""
    import shlex
    from pathlib import Path

    yaml = pytest.importorskip("yaml")
    deploy = Path(__file__).parent.parent / "deploy"
    docker = (deploy / "Dockerfile").read_text()
    repo_cmd = next(line for line in docker.splitlines() if "unifork-rt repo" in line).split("&&")[-1]
    args = shlex.split(repo_cmd)
    assert args[:2] == ["unifork-rt", "repo"] and args[args.index("--out") + 1] == "/models"
    assert RepoSettings(backend=args[args.index("--backend") + 1], kind="gpu", gpus=(0,))  # a valid combination
    assert 'CMD ["tritonserver", "--model-repository=/models"' in docker
    docs = list(yaml.safe_load_all((deploy / "kubernetes.yaml").read_text()))
    pod = docs[0]["spec"]["template"]["spec"]["containers"][0]
    assert "--model-repository=/models" in pod["args"]
    assert {p["containerPort"] for p in pod["ports"]} == {8000, 8001, 8002}
    assert pod["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
    assert pod["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert docs[1]["kind"] == "Service" and docs[1]["spec"]["selector"] == docs[0]["spec"]["selector"]["matchLabels"]
    compose = yaml.safe_load((deploy / "compose.yaml").read_text())
    servers = [s for name, s in compose["services"].items() if name.startswith("triton")]
    assert len(servers) == 2 and all("/v2/health/ready" in " ".join(s["healthcheck"]["test"]) for s in servers)
    assert "server triton-gpu0:8000" in compose["configs"]["nginx"]["content"]


def test_serve_with_a_bad_model_fails_in_one_line_and_leaves_nothing(tmp_path):
    import tempfile
    from pathlib import Path

    before = set(Path(tempfile.gettempdir()).glob("unifork-serve-*"))
    r = subprocess.run([sys.executable, "-m", "unifork_rt.cli", "serve", "--model", str(tmp_path / "nope"),
                        "--http-port", "1"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: ") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert set(Path(tempfile.gettempdir()).glob("unifork-serve-*")) == before
