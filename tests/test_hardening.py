"""Hardening: property-based prompts and images, thread safety, atomic outputs."""

from __future__ import annotations

import collections
import io
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from unifork_rt.errors import UniforkError
from unifork_rt.runtime.images import load_image, save_png
from unifork_rt.runtime.pipeline import DrawSettings, UniForkRuntime

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def rt(micro_bundle):
    with UniForkRuntime(micro_bundle) as r:
        yield r


@FAST
@given(prompt=st.one_of(
    st.text(max_size=40),
    st.text(alphabet=st.characters(categories=["Cc", "Zs"]), max_size=10),  # control characters, spaces
    st.just("\u202e\u0000abc"), st.just("🟥 circle " * 30), st.just(" \t\n "),
))
def test_any_prompt_draws_or_fails_clearly(rt, prompt):
    try:
        codes = rt.draw_codes(prompt, n=1, settings=DrawSettings(cfg_scale=1.0, temperature=0.0))
    except UniforkError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert prompt.strip() and codes.shape == (1, 16, 2)


MODES = ["1", "L", "LA", "P", "RGB", "RGBA", "CMYK", "YCbCr", "I", "I;16", "F", "HSV", "LAB"]


def _image(mode: str, w: int, h: int, seed: int) -> Image.Image:
    rgb = np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)
    im = Image.fromarray(rgb)
    if mode == "I;16":
        return Image.fromarray(np.asarray(im.convert("L")).astype(np.uint16) * 257)
    return im.convert(mode)


@FAST
@given(mode=st.sampled_from(MODES), w=st.integers(1, 300), h=st.integers(1, 300), seed=st.integers(0, 9),
       fmt=st.sampled_from(["PNG", "TIFF", "JPEG", "BMP", "GIF", "WEBP"]), cut=st.sampled_from([None, 0.5, 0.05]),
       ext=st.sampled_from([".png", ".jpg", ".txt"]))
def test_any_image_file_loads_or_fails_clearly(tmp_path_factory, mode, w, h, seed, fmt, cut, ext):
    path = tmp_path_factory.mktemp("img") / f"x{ext}"
    buf = io.BytesIO()
    try:
        _image(mode, w, h, seed).save(buf, format=fmt)
    except (OSError, ValueError, KeyError):
        return  # Pillow cannot write this mode in this format: nothing to test
    data = buf.getvalue()
    path.write_bytes(data[: int(len(data) * cut)] if cut else data)
    try:
        px = load_image(path, 64)
    except UniforkError as e:
        assert str(e) and "\n" not in str(e)
        return
    assert px.shape == (3, 64, 64) and px.dtype == np.float32
    assert np.isfinite(px).all() and px.min() >= -1 and px.max() <= 1
    assert min(w, h) >= 8


def test_threads_share_one_runtime(micro_bundle):
    """The documented contract: one UniForkRuntime may be called from several threads at once, from
    cold: the threads race to create the sessions made on first use, each graph's exactly once."""
    pixels = list(np.random.default_rng(0).uniform(-1, 1, (4, 3, 64, 64)).astype(np.float32))
    s = DrawSettings(cfg_scale=2.0)
    with UniForkRuntime(micro_bundle) as ref:  # the answers, from another runtime: `rt` stays cold
        want_cap = [ref.caption_ids([p], max_new_tokens=6, temperature=1.0, seed=i) for i, p in enumerate(pixels)]
        want_draw = [ref.draw_codes("a red circle", 1, s, seed=i) for i in range(4)]
    got_cap, got_draw, errors = [None] * 4, [None] * 4, []
    with UniForkRuntime(micro_bundle) as rt:
        assert not rt.backend.sessions, "ort-cpu creates its sessions on first use"
        real, created = rt.backend._ort, collections.Counter()

        def slow_session(path, *args, **kwargs):  # a wider window for a second thread to create one too
            created[Path(path).stem] += 1
            time.sleep(0.05)
            return real.InferenceSession(path, *args, **kwargs)

        class Ort:  # onnxruntime with a slow InferenceSession (the backend makes SessionOptions per session)
            InferenceSession = staticmethod(slow_session)

            def __getattr__(self, name):
                return getattr(real, name)

        rt.backend._ort = Ort()
        start = threading.Barrier(4)

        def work(i):
            try:
                start.wait(timeout=30)
                for _ in range(2):
                    got_cap[i] = rt.caption_ids([pixels[i]], max_new_tokens=6, temperature=1.0, seed=i)
                    got_draw[i] = rt.draw_codes("a red circle", 1, s, seed=i)
            except Exception as e:  # noqa: BLE001 - reported below with the thread's index
                errors.append((i, e))

        threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
    assert not errors, errors
    assert created and max(created.values()) == 1, f"sessions created more than once: {dict(created)}"
    assert got_cap == want_cap
    assert all(np.array_equal(a, b) for a, b in zip(got_draw, want_draw))


def test_failed_png_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tmp_path / "x.png"
    save_png(np.zeros((8, 8, 3), np.uint8), path)
    before = path.read_bytes()

    def boom(*a, **k):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", boom)
    with pytest.raises(UniforkError, match="disk is full"):
        save_png(np.full((8, 8, 3), 255, np.uint8), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["x.png"]  # no temporary file left


def test_written_files_get_the_mode_open_would_give(tmp_path):
    import os

    from unifork_rt.io import atomic_write_text

    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.json", "{}")
        assert (tmp_path / "new.json").stat().st_mode & 0o777 == 0o640  # not mkstemp's 0600
        (tmp_path / "kept.txt").write_text("a")
        os.chmod(tmp_path / "kept.txt", 0o604)
        atomic_write_text(tmp_path / "kept.txt", "b")
        assert (tmp_path / "kept.txt").stat().st_mode & 0o777 == 0o604  # a replaced file keeps its mode
    finally:
        os.umask(old)


def test_sigterm_during_an_export_leaves_no_temporary_folder(micro_model_dir, tmp_path):
    """`timeout` and `kill` send SIGTERM: the export ends as after a Ctrl-C (exit 143, 128 + SIGTERM), its temporary folder removed."""
    import os
    import signal
    import subprocess
    import sys

    pytest.importorskip("torch")
    root = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, (root, os.environ.get("PYTHONPATH"))))}
    p = subprocess.Popen([sys.executable, "-m", "unifork_rt", "export", str(micro_model_dir), "--out",
                          str(tmp_path / "x"), "--quiet"], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while p.poll() is None and time.monotonic() < deadline and not list(tmp_path.glob(".x.*")):
        time.sleep(0.02)
    assert p.poll() is None, "the export ended before its temporary folder was seen"
    time.sleep(0.3)  # well inside the export of the graphs
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=120)
    assert "Traceback" not in err, err
    assert p.returncode == 143 and err.strip().splitlines()[-1] == "interrupted", (p.returncode, err)
    assert list(tmp_path.iterdir()) == []
