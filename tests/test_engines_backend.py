"""The TensorRT backend's plumbing on the fakes: strided KV writes, profile choice, bindings,
CUDA-graph replay, stale engines, memory release. The numbers must equal ONNX Runtime with a
host KV cache (OrtReference) exactly: the fake engine runs the same graph on the same bytes."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

from test_engines_fakes import FakeCudart, fake_gpu  # noqa: F401  (fixture)
from test_engines_toy import OrtReference, make_toy_bundle, toy_feeds
from unifork_rt.engines import trt_backend as TB
from unifork_rt.engines.build import build_engines
from unifork_rt.engines.fingerprint import StaleEngineError, sidecar_path
from unifork_rt.errors import InputError, MissingDependencyError, UniforkError
from unifork_rt.runtime.backend import BACKENDS, KVCache, get_backend
from unifork_rt.runtime.bundle import GRAPHS, KVSpec, load_bundle

SPEC = KVSpec(layers=2, kv_heads=2, max_seq=8, head_dim=4)


def apply_plan(buf: np.ndarray, new: np.ndarray, pos: int) -> np.ndarray:
    """Do what cudaMemcpy2DAsync does with kv_write_plan's numbers, on flat bytes."""
    c = TB.kv_write_plan(SPEC, new.shape[2], new.itemsize, pos, new.shape[4])
    dst, src = buf.reshape(-1).view(np.uint8), np.ascontiguousarray(new).reshape(-1).view(np.uint8)
    for r in range(c.height):
        at = c.dst_offset + r * c.dpitch
        dst[at:at + c.width] = src[r * c.spitch:r * c.spitch + c.width]
    return buf


@pytest.mark.parametrize("batch, pos, tokens", [(1, 0, 8), (2, 0, 3), (2, 3, 1), (3, 7, 1), (2, 5, 3)])
def test_kv_write_plan_matches_the_host_cache(batch, pos, tokens):
    rng = np.random.default_rng(0)
    host = KVCache(SPEC, batch, "float32")
    host.buf[:] = rng.standard_normal(host.buf.shape)
    dev = host.buf.copy()
    new = rng.standard_normal((2, 2, batch, 2, tokens, 4)).astype(np.float32)
    host.write(pos, new)
    np.testing.assert_array_equal(apply_plan(dev, new, pos), host.buf)


def test_kv_write_plan_numbers_and_bounds():
    c = TB.kv_write_plan(SPEC, batch=2, itemsize=2, pos=3, new_tokens=1)
    assert c == TB.Copy2D(dst_offset=3 * 4 * 2, dpitch=8 * 4 * 2, spitch=4 * 2, width=4 * 2, height=2 * 2 * 2 * 2)
    with pytest.raises(ValueError, match=r"positions \[7, 9\)"):
        TB.kv_write_plan(SPEC, 1, 4, 7, 2)
    with pytest.raises(ValueError):
        TB.kv_write_plan(SPEC, 1, 4, -1, 1)


def test_device_kv_cache_on_fake_memory():
    rt = FakeCudart()
    cache = TB.DeviceKVCache(rt, SPEC, 2, "float32")
    assert not cache.to_host().any()  # zeroed, although fresh memory is garbage
    new = np.arange(2 * 2 * 2 * 2 * 3 * 4, dtype=np.float32).reshape(2, 2, 2, 2, 3, 4)
    src = rt.cudaMalloc(new.nbytes)[1]
    rt.cudaMemcpy(src, new.ctypes.data, new.nbytes, rt.cudaMemcpyKind.cudaMemcpyHostToDevice)
    cache.write(4, src, 3, stream=None)
    want = KVCache(SPEC, 2, "float32")
    want.write(4, new)
    np.testing.assert_array_equal(cache.to_host(), want.buf)
    cache.free()
    rt.cudaFree(src)
    assert rt.allocs == {}


def test_registered_backend():
    assert BACKENDS["tensorrt"][:2] == ("unifork_rt.engines.trt_backend", "TensorRTBackend")


def test_backend_without_tensorrt(tmp_path, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)
    bundle = load_bundle(make_toy_bundle(tmp_path / "toy"))
    with pytest.raises(MissingDependencyError, match="the tensorrt backend needs NVIDIA TensorRT"):
        get_backend("tensorrt", bundle)


# --- the whole backend on the fakes ----------------------------------------------------------------
@pytest.fixture
def built(tmp_path, fake_gpu):
    root = make_toy_bundle(tmp_path / "toy")
    build_engines(root, max_batch=4, log=lambda m: None)
    return load_bundle(root)


def steps(be, ref, graph, batch, lengths):
    """Prefill then decode steps on one cache per side; returns both sides' outputs and caches."""
    cache, rcache = be.new_cache(graph, batch), ref.new_cache(graph, batch)
    got, want, pos = [], [], 0
    for i, t in enumerate(lengths):
        feeds = toy_feeds(graph, batch, t, pos, seed=i)
        got.append(be.run(graph, feeds, cache))
        want.append(ref.run(graph, feeds, rcache))
        pos += t
    return got, want, cache, rcache


@pytest.mark.parametrize("cuda_graphs", [False, True])
def test_backend_matches_onnx_runtime(built, fake_gpu, cuda_graphs):
    ref = OrtReference(built)
    with get_backend("tensorrt", built, cuda_graphs=cuda_graphs) as be:
        assert be.providers == ["TensorRT 10.99.0 on Fake Orin (sm 8.7)"]
        for graph, batch, lengths in (("trunk", 2, [5, 1, 1, 1]), ("und_branch", 1, [7, 1, 1]),
                                      ("gen_branch", 4, [3, 1, 1]), ("rq_head", 2, [1, 1])):
            got, want, cache, rcache = steps(be, ref, graph, batch, lengths)
            for g, w in zip(got, want):
                assert g.keys() == w.keys() and "kv_new" not in g
                for k in g:
                    np.testing.assert_array_equal(g[k], w[k])
            np.testing.assert_array_equal(cache.to_host(), rcache.buf)
        for graph, batch, n in (("connector", 2, 1), ("connector", 1, 16), ("vision_encoder", 3, 0),
                                ("vision_decoder", 2, 0)):
            feeds = toy_feeds(graph, batch, n, 0)
            got, want = be.run(graph, feeds), ref.run(graph, feeds)
            for k in want:
                np.testing.assert_array_equal(got[k], want[k])
    if cuda_graphs:  # decode steps were captured once and replayed after that
        assert fake_gpu.cudart.captures >= 4 and fake_gpu.cudart.launches >= 3
    else:
        assert fake_gpu.cudart.captures == 0


def test_profiles_are_chosen_per_step(built, fake_gpu):
    with get_backend("tensorrt", built) as be:
        g = be.graphs["trunk"]
        cache = be.new_cache("trunk", 2)
        be.run("trunk", toy_feeds("trunk", 2, 5, 0), cache)
        assert g.contexts[0].shapes["x"] == (2, 5, 64)   # prefill context
        be.run("trunk", toy_feeds("trunk", 2, 1, 5), cache)
        assert g.contexts[1].shapes["x"] == (2, 1, 64)   # decode context
        assert g.contexts[0].shapes["x"] == (2, 5, 64)   # untouched: no profile switching
        with pytest.raises(InputError, match="outside every optimization profile.*--max-batch"):
            be.run("trunk", toy_feeds("trunk", 5, 1, 0), be.new_cache("trunk", 5))
        with pytest.raises(InputError, match="max_seq 64"):
            be.run("trunk", toy_feeds("trunk", 2, 1, 64), cache)
        with pytest.raises(TypeError, match="its own caches"):
            be.run("trunk", toy_feeds("trunk", 2, 1, 6), KVCache(built.graphs["trunk"].kv, 2, "float32"))
    assert fake_gpu.cudart.copies2d[0] == (64 * 16 * 4, 5 * 16 * 4, 5 * 16 * 4, 2 * 2 * 2 * 2)


def test_capture_is_retired_when_shapes_change(built, fake_gpu):
    with get_backend("tensorrt", built, cuda_graphs=True) as be:
        ref = OrtReference(built)
        steps(be, ref, "rq_head", 2, [1, 1])
        assert len(be._captured) == 1
        got, want, _, _ = steps(be, ref, "rq_head", 1, [1, 1])  # new shapes on the same context
        np.testing.assert_array_equal(got[-1]["logits"], want[-1]["logits"])
        assert len(be._captured) == 1 and next(iter(be._captured))[2][0][1][0] == 1


def test_memory_is_released(built, fake_gpu):
    be = get_backend("tensorrt", built)
    cache = be.new_cache("gen_branch", 2)
    assert len(fake_gpu.cudart.allocs) > 10
    be.close()
    assert len(fake_gpu.cudart.allocs) == 1  # the cache: its owner still holds it
    del cache
    gc.collect()
    assert fake_gpu.cudart.allocs == {}
    with pytest.raises(RuntimeError, match="closed"):
        be.run("connector", toy_feeds("connector", 1, 1, 0))


def test_stale_or_missing_engines_are_refused(built, fake_gpu):
    engines = built.root / "engines"
    fp = json.loads(sidecar_path(engines / "trunk.engine").read_text())
    fp["tensorrt"] = "10.0.0"
    sidecar_path(engines / "trunk.engine").write_text(json.dumps(fp))
    with pytest.raises(StaleEngineError, match=r"TensorRT version: built for '10.0.0', now '10.99.0'.*unifork-rt bu"):
        get_backend("tensorrt", built)
    assert fake_gpu.cudart.allocs == {}  # what the graphs before trunk allocated is released
    (engines / "trunk.engine").unlink()
    with pytest.raises(StaleEngineError, match="trunk.engine is missing: build the engines with `unifork-rt build"):
        get_backend("tensorrt", built)
    with pytest.raises(StaleEngineError, match="missing"):
        get_backend("tensorrt", built, engines_dir=built.root / "elsewhere")


def test_all_graphs_load(built, fake_gpu):
    with get_backend("tensorrt", built) as be:
        assert set(be.graphs) == set(GRAPHS)
        assert [p.name for p in be.graphs["connector"].profiles] == ["prefill", "decode"]
        assert len(be.graphs["vision_encoder"].contexts) == 1
        assert be.max_batch == 4  # built with --max-batch 4: the pipeline chunks larger work to it


# --- what the real bindings do (issue #14 item 5) -----------------------------------------------------
def _patch_contexts(trt, monkeypatch, patch):
    """Apply patch(context) to every execution context the fake engines create."""
    real = trt.Runtime.deserialize_cuda_engine

    def deserialize(self, data):
        engine = real(self, data)
        make = engine.create_execution_context

        def create():
            ctx = make()
            patch(ctx)
            return ctx
        engine.create_execution_context = create
        return engine
    monkeypatch.setattr(trt.Runtime, "deserialize_cuda_engine", deserialize)


def test_a_profile_that_cannot_be_selected_is_a_stale_engine(built, fake_gpu, monkeypatch):
    def refuse(ctx):
        def select(index, stream):
            raise RuntimeError("Error in set optimization profile async.")  # what TensorRT's bindings do
        ctx.set_optimization_profile_async = select
    _patch_contexts(fake_gpu.trt, monkeypatch, refuse)
    with pytest.raises(StaleEngineError, match=r"cannot select optimization profile 0 \(Error in set optimization "
                                               r"profile async.\): rebuild it with `unifork-rt build"):
        get_backend("tensorrt", built)
    assert fake_gpu.cudart.allocs == {}


def test_a_refused_tensor_address_is_an_error(built, fake_gpu, monkeypatch):
    def refuse_kv(ctx):
        real = ctx.set_tensor_address
        ctx.set_tensor_address = lambda name, ptr: False if name == "kv" else real(name, ptr)
    _patch_contexts(fake_gpu.trt, monkeypatch, refuse_kv)
    with get_backend("tensorrt", built) as be:
        be.run("connector", toy_feeds("connector", 1, 1, 0))  # no KV: binds fine
        with pytest.raises(UniforkError, match="engine trunk refused the device address of kv"):
            be.run("trunk", toy_feeds("trunk", 1, 3, 0), be.new_cache("trunk", 1))


def test_other_threads_run_on_the_backends_gpu(tmp_path, monkeypatch):
    """CUDA's current device is per thread: a call from a new thread must not land on GPU 0."""
    import sys
    import threading

    from test_engines_fakes import make_fake_tensorrt

    pytest.importorskip("onnxruntime")
    cudart = FakeCudart(devices=2)
    monkeypatch.setitem(sys.modules, "tensorrt", make_fake_tensorrt(cudart))
    monkeypatch.setitem(sys.modules, "cuda.bindings.runtime", cudart)
    root = make_toy_bundle(tmp_path / "toy")
    build_engines(root, device=1, log=lambda m: None)
    bundle = load_bundle(root)
    ref = OrtReference(bundle)
    results = {}

    def work(be):
        try:
            results["got"] = steps(be, ref, "trunk", 2, [4, 1])
        except BaseException as e:  # noqa: BLE001  (reported below, in the test's thread)
            results["error"] = e

    with get_backend("tensorrt", bundle, device=1) as be:
        t = threading.Thread(target=work, args=(be,))
        t.start()
        t.join()
        assert "error" not in results, results.get("error")
        got, want, cache, rcache = results["got"]
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g["h"], w["h"])
        assert set(cudart.alloc_device.values()) == {1}
