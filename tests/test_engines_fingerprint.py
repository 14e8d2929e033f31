"""Engine fingerprints and their sidecars: matches, every kind of mismatch, damaged files."""

from __future__ import annotations

import json

import pytest

from unifork_rt.engines import fingerprint as F
from unifork_rt.engines.profiles import Profile, ShapeRange

SHA = "a" * 64
PROFILES = (Profile("decode", (("x", ShapeRange((1, 1, 8), (2, 1, 8), (4, 1, 8))),)),)
FLAGS = F.BuildFlags(fp16=True, max_batch=4, max_seq=64, workspace_gb=2.0)


def build_fp(**changes):
    args = dict(graph="trunk", graph_sha256=SHA, tensorrt_version="10.3.0", gpu_name="NVIDIA A100-SXM4-80GB",
                compute_capability=(8, 0), flags=FLAGS, profiles=PROFILES)
    args.update(changes)
    return F.make_fingerprint(**args)


def runtime_fp(**changes):
    args = dict(graph="trunk", graph_sha256=SHA, tensorrt_version="10.3.0", gpu_name="NVIDIA A100-SXM4-80GB",
                compute_capability="8.0")
    args.update(changes)
    return F.make_fingerprint(**args)


@pytest.fixture
def engine(tmp_path):
    path = tmp_path / "trunk.engine"
    data = b"serialized engine bytes"
    path.write_bytes(data)
    F.write_sidecar(path, build_fp(), data)
    return path, data


def test_fingerprint_fields():
    fp = build_fp()
    assert fp["compute_capability"] == "8.0" and fp["flags"]["max_batch"] == 4
    assert fp["profiles"][0]["shapes"]["x"]["max"] == [4, 1, 8]
    assert set(runtime_fp()) == {"format", *F.ENVIRONMENT_KEYS}


def test_sidecar_sits_beside_the_engine(engine):
    path, data = engine
    side = F.sidecar_path(path)
    assert side.name == "trunk.engine.json" and side.parent == path.parent
    stored = json.loads(side.read_text())
    assert stored["engine_bytes"] == len(data) and len(stored["engine_sha256"]) == 64


def test_match_at_build_and_at_load(engine):
    path, data = engine
    assert F.check_engine(path, build_fp(), data)["gpu"] == "NVIDIA A100-SXM4-80GB"
    assert F.check_engine(path, runtime_fp())["flags"] == FLAGS.to_dict()  # the runtime takes the built flags


@pytest.mark.parametrize("change, words", [
    (dict(tensorrt_version="10.4.0"), "TensorRT version: built for '10.3.0', now '10.4.0'"),
    (dict(gpu_name="Orin", compute_capability=(8, 7)), "GPU: built for 'NVIDIA A100-SXM4-80GB', now 'Orin'"),
    (dict(graph_sha256="b" * 64), "graph hash: built from aaaaaaaaaaaa, the bundle has bbbbbbbbbbbb"),
])
def test_environment_mismatch_is_stale(engine, change, words):
    path, data = engine
    with pytest.raises(F.StaleEngineError) as e:
        F.check_engine(path, runtime_fp(**change), data, rebuild="unifork-rt build B --out E")
    msg = str(e.value)
    assert words in msg and "rebuild it with `unifork-rt build B --out E`" in msg and str(path) in msg


def test_flag_and_profile_changes_are_stale_at_build_time(engine):
    path, _ = engine
    with pytest.raises(F.StaleEngineError, match=r"build flags: fp16 True -> False, max_batch 4 -> 2"):
        F.check_engine(path, build_fp(flags=F.BuildFlags(fp16=False, max_batch=2, max_seq=64, workspace_gb=2.0)))
    other = (Profile("decode", (("x", ShapeRange((1, 1, 8), (1, 1, 8), (2, 1, 8))),)),)
    with pytest.raises(F.StaleEngineError, match="optimization profiles differ"):
        F.check_engine(path, build_fp(profiles=other))


def test_damaged_or_missing_files(engine):
    path, data = engine
    with pytest.raises(F.StaleEngineError, match="truncated or replaced"):
        F.check_engine(path, runtime_fp(), data[:-1])
    F.sidecar_path(path).write_text("{not json")
    with pytest.raises(F.StaleEngineError, match="missing or unreadable"):
        F.check_engine(path, runtime_fp())
    assert F.read_sidecar(path) is None
    F.sidecar_path(path).unlink()
    with pytest.raises(F.StaleEngineError, match="missing or unreadable"):
        F.check_engine(path, runtime_fp())
    with pytest.raises(F.StaleEngineError, match="missing: build the engines"):
        F.check_engine(path.with_name("nope.engine"), runtime_fp())


def test_stale_engine_error_is_a_user_error():
    from unifork_rt.errors import UniforkError

    assert issubclass(F.StaleEngineError, UniforkError)
