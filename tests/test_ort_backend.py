"""The ONNX Runtime backend's GPU-side plumbing, checked on the CPU (issue #14 items 3 and 6):
KV buffers kept on the session's device with IOBinding (ORT's CPU provider binds the same way),
the TensorRT provider's per-graph profiles and engine cache folder, and the pipeline's chunking
to a backend's largest batch. No torch: the shipped bundle."""

from __future__ import annotations

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from unifork_rt import assets  # noqa: E402
from unifork_rt.runtime.backend import KVCache, get_backend  # noqa: E402
from unifork_rt.runtime.bundle import load_bundle  # noqa: E402
from unifork_rt.runtime.ort_backend import DeviceKVCache, OrtBackend, kv_write_model  # noqa: E402
from unifork_rt.runtime.pipeline import UniForkRuntime  # noqa: E402


@pytest.fixture(scope="module")
def bundle():
    return load_bundle(assets.default_model_dir())


def _images(k):
    return [np.random.default_rng(i).uniform(-1, 1, (3, 64, 64)).astype(np.float32) for i in range(k)]


def test_kv_write_graph_writes_at_pos():
    sess = ort.InferenceSession(kv_write_model("float32"), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    kv = rng.standard_normal((2, 2, 3, 2, 10, 4)).astype(np.float32)
    for pos, t in ((0, 10), (0, 4), (4, 1), (9, 1), (3, 5)):
        new = rng.standard_normal((2, 2, 3, 2, t, 4)).astype(np.float32)
        want = kv.copy()
        want[..., pos:pos + t, :] = new
        got, = sess.run(None, {"kv": kv, "new": new, "pos": np.array(pos, np.int64)})
        np.testing.assert_array_equal(got, want)


def test_device_caches_match_host_caches_exactly(bundle):
    """Step by step, the device-side buffers equal the host path's buffers and outputs bit for bit."""
    host = get_backend("ort-cpu", bundle)
    bound = get_backend("ort-cpu", bundle, iobinding=True)
    H = bundle.config.text.hidden_size
    rng = np.random.default_rng(0)
    for graph in ("trunk", "und_branch", "gen_branch"):
        hc, dc = host.new_cache(graph, 2), bound.new_cache(graph, 2)
        assert isinstance(hc, KVCache) and isinstance(dc, DeviceKVCache) and not dc.to_host().any()
        pos, start = 0, np.array([0, 3], np.int64)
        for t in (7, 1, 1, 3):
            x = rng.standard_normal((2, t, H)).astype(np.float32)
            feeds = {"x" if graph == "trunk" else "h": x, "pos": np.array(pos, np.int64), "start": start}
            want, got = host.run(graph, feeds, hc), bound.run(graph, feeds, dc)
            assert want.keys() == got.keys() and "kv_new" not in got
            for k in want:
                np.testing.assert_array_equal(got[k], want[k])
            np.testing.assert_array_equal(dc.to_host(), hc.buf)
            pos += t
    with pytest.raises(TypeError, match="another backend"):
        host.run("trunk", {"x": np.zeros((2, 1, H), np.float32), "pos": np.array(0), "start": start}, dc)


def test_device_caches_never_go_through_session_run(bundle, monkeypatch):
    """The bound path feeds no host KV buffer: plain session.run (which uploads kv) is never used."""
    with UniForkRuntime(bundle.root, iobinding=True) as rt:
        for name in ("trunk", "und_branch", "gen_branch", "rq_head"):
            sess = rt.backend.session(name)
            monkeypatch.setattr(sess, "run", lambda *a, **k: pytest.fail("session.run with a host KV buffer"))
        with UniForkRuntime() as plain:
            assert rt.caption(_images(2), max_new_tokens=5) == plain.caption(_images(2), max_new_tokens=5)


class _RecordingBackend:
    """Wraps a backend's run to record the batch of every call."""

    def __init__(self, rt):
        self.batches = []
        run = rt.backend.run

        def recording(graph, feeds, cache=None):
            rows = next(v.shape[0] for v in feeds.values() if v.ndim)
            self.batches.append((graph, rows))
            return run(graph, feeds, cache)
        rt.backend.run = recording


@pytest.mark.parametrize("max_batch", [1, 2, 3])
def test_pipeline_splits_work_into_the_backends_largest_batch(max_batch):
    """Six captions and a guided draw of three images (six rows) on a backend that takes at most
    max_batch rows: every call fits, and the results equal one unchunked run exactly."""
    images = _images(6)
    with UniForkRuntime() as rt:
        want_caps = rt.caption_ids(images, max_new_tokens=6)
        want_codes = rt.draw_codes("two blue squares", n=3, seed=4)
        want_pixels = rt.decode(want_codes)
    with UniForkRuntime(max_batch=max_batch) as rt:
        assert rt.backend.max_batch == max_batch
        rec = _RecordingBackend(rt)
        assert rt.caption_ids(images, max_new_tokens=6) == want_caps
        codes = rt.draw_codes("two blue squares", n=3, seed=4)
        np.testing.assert_array_equal(codes, want_codes)
        for got, want in zip(rt.decode(codes), want_pixels):
            np.testing.assert_array_equal(got, want)
    assert max(b for _, b in rec.batches) == max_batch
    assert {g for g, _ in rec.batches} >= {"vision_encoder", "connector", "trunk", "und_branch", "gen_branch",
                                           "rq_head", "vision_decoder"}



def test_cpu_decoder_runs_one_image_at_a_time():
    """On the CPU the vision decoder takes one image a run (decode_batch 1, faster there): each image's pixels are
    the bits that one run of all of them gives."""
    from unifork_rt.runtime.images import uint8_from_pixels

    with UniForkRuntime() as rt:
        assert rt.backend.decode_batch == 1 and rt.backend.max_batch is None
        codes = rt.draw_codes("two blue squares", n=3, seed=4)
        whole = rt.backend.run("vision_decoder", {"codes": codes})["pixels"]
        rec = _RecordingBackend(rt)
        got = rt.decode(codes)
    assert [b for g, b in rec.batches if g == "vision_decoder"] == [1, 1, 1]
    assert len(got) == 3
    for g, w in zip(got, whole):
        np.testing.assert_array_equal(g, uint8_from_pixels(w))


@pytest.mark.parametrize("codes, says", [
    (np.zeros((2, 3), np.int64), "must have shape"),
    ([[1, 2]], "must have shape"),
    (np.zeros((1, 16, 2), np.float32), "must be integers"),
    ("codes", "must be integers"),
    (np.full((2, 16, 2), 10**9, np.int64), "must lie in"),
    (np.full((2, 16, 2), -1, np.int64), "must lie in"),
])
def test_decode_refuses_bad_codes_naming_the_problem(codes, says):
    """rt.decode checks its codes before any chunking: the shape a message names is the one given (not one image's),
    out-of-range codes are refused before ONNX Runtime's Gather sees them, and no images decode to none."""
    from unifork_rt.errors import InputError

    with UniForkRuntime() as rt:
        im = rt.cfg.image
        codes = np.asarray(codes)
        if codes.ndim == 3 and codes.shape[1:] == (16, 2):  # the test bundle's grid, whatever it is
            codes = np.broadcast_to(codes[:, :1, :1], (codes.shape[0], im.num_cells, im.depth))
        with pytest.raises(InputError, match=says) as e:
            rt.decode(codes)
        if says == "must have shape":
            assert str(codes.shape) in str(e.value)
        assert rt.decode(np.zeros((0, im.num_cells, im.depth), np.int64)) == []

def test_max_batch_must_be_positive(bundle):
    from unifork_rt.errors import InputError

    with pytest.raises(InputError, match="max_batch 0 must be >= 1"):
        OrtBackend(bundle, max_batch=0)


# --- the TensorRT provider, with a stand-in for onnxruntime's session ------------------------------
class _FakeSession:
    made = []

    def __init__(self, path, sess_options=None, providers=None):
        self.path, self.providers = path, providers
        _FakeSession.made.append(self)

    def get_providers(self):
        return [p if isinstance(p, str) else p[0] for p in self.providers]

    def get_outputs(self):
        return []


@pytest.fixture
def fake_trt_ort(monkeypatch):
    _FakeSession.made = []
    monkeypatch.setattr(ort, "get_available_providers",
                        lambda: ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"])
    monkeypatch.setattr(ort, "InferenceSession", _FakeSession)
    return _FakeSession


def test_tensorrt_provider_gets_each_graphs_own_profile(bundle, fake_trt_ort, tmp_path):
    be = get_backend("ort-tensorrt", bundle, cache_dir=str(tmp_path))
    assert be.max_batch == 8
    by_graph = {s.path.rsplit("/", 1)[-1][:-5]: s for s in fake_trt_ort.made if isinstance(s.path, str)}
    assert set(by_graph) == set(bundle.graphs)
    S = bundle.max_seq
    for name, sess in by_graph.items():
        (trt, opts), (cuda, _), cpu = sess.providers
        assert trt == "TensorrtExecutionProvider" and opts["trt_engine_cache_path"] == str(tmp_path / "trt_engines")
        inputs = {i["name"] for i in bundle.graphs[name].inputs if any(isinstance(d, str) for d in i["shape"])}
        named = {part.split(":")[0] for part in opts["trt_profile_max_shapes"].split(",")}
        assert named == inputs, name  # this graph's own inputs, not the first graph's
    trunk = dict(p.split(":") for p in by_graph["trunk"].providers[0][1]["trt_profile_max_shapes"].split(","))
    assert trunk["x"] == f"8x{S}x{bundle.config.text.hidden_size}" and trunk["start"] == "8"
    kv_write = [s for s in fake_trt_ort.made if not isinstance(s.path, str)]
    assert len(kv_write) == 1 and kv_write[0].get_providers()[0] == "CUDAExecutionProvider"  # no engine for a Concat


def test_engine_cache_goes_to_the_user_cache_folder(bundle, fake_trt_ort, tmp_path, monkeypatch):
    monkeypatch.delenv("UNIFORK_RT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    be = get_backend("ort-tensorrt", bundle)
    cache = be.cache_dir
    assert cache.startswith(str(tmp_path / "xdg" / "unifork-rt" / "ort-tensorrt")), cache
    assert not cache.startswith(str(bundle.root))  # never inside the installed package or bundle
    assert get_backend("ort-tensorrt", bundle).cache_dir == cache  # stable per bundle
    monkeypatch.setenv("UNIFORK_RT_CACHE", str(tmp_path / "mine"))
    assert get_backend("ort-tensorrt", bundle).cache_dir.startswith(str(tmp_path / "mine"))
