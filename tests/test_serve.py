"""`unifork-rt serve` end to end on the bundled model: Triton over HTTP and gRPC on 127.0.0.1.

Every server here is started by the test and stopped by it (SIGTERM, as Ctrl-C would); every
loop is bounded in count and time. CI installs the serve extra (.ci/run), so there a missing
Triton fails instead of skipping.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

try:
    import pytriton  # noqa: F401
    import tritonclient.grpc  # noqa: F401
    import tritonclient.http  # noqa: F401
except ImportError as e:
    if os.environ.get("CI"):
        raise RuntimeError(f"CI installs the serve extra, yet {e}: check .ci/run") from None
    pytest.skip(f"the serve extra is not installed ({e}): pip install -e '.[serve]'", allow_module_level=True)

from unifork_rt.data.shapes_world import held_out_scenes, render_pil  # noqa: E402
from unifork_rt.serve.client import ServeClient  # noqa: E402

pytestmark = pytest.mark.slow
CLI = [sys.executable, "-m", "unifork_rt.cli"]
PROMPTS = ["a red circle", "three blue squares", "a triangle left of a circle", "a orange triangle below a square"]
SEED = 11


def _free_ports(k: int) -> list[int]:
    socks = [socket.socket() for _ in range(k)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _children(pid: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    out.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue
    return out


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Served:
    """`unifork-rt serve` as a subprocess: started, waited for (bounded), stopped with SIGTERM."""

    def __init__(self, log: Path, *args: str):
        self.http_port, self.grpc_port, metrics = _free_ports(3)
        self.log = log
        with open(log, "wb") as f:
            self.proc = subprocess.Popen([*CLI, "serve", "--http-port", str(self.http_port), "--grpc-port",
                                          str(self.grpc_port), "--metrics-port", str(metrics), *args],
                                         stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 240
        while "ready:" not in self.text():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"unifork-rt serve did not become ready:\n{self.text()}")
            time.sleep(0.5)
        (self.triton,) = [p for p in _children(self.proc.pid) if "tritonserver" in _cmdline(p)]

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def instances(self, model: str) -> list[int]:
        return [p for p in _children(self.triton) if f"/{model}/1/model.py" in _cmdline(p)]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()  # only the serve process we started; the assertion below reports it
                self.proc.wait(timeout=10)
        return self.proc.returncode


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """16 caption images (4 drawn by the CLI, 12 held-out scenes) and what the CLI says about them."""
    folder = tmp_path_factory.mktemp("serve_inputs")
    r = subprocess.run([*CLI, "draw", *PROMPTS, "--seed", str(SEED), "--quiet", "-o", str(folder / "drawn.png")],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    drawn = [Path(p) for p in r.stdout.split()]
    assert len(drawn) == 4
    scenes = []
    for i, scene in enumerate(held_out_scenes(12, seed=5)):
        render_pil(scene).save(folder / f"scene_{i}.png")
        scenes.append(folder / f"scene_{i}.png")
    images = drawn + scenes
    r = subprocess.run([*CLI, "caption", "--json", *map(str, images)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    captions = [json.loads(line)["caption"] for line in r.stdout.splitlines()]
    return {"drawn": [p.read_bytes() for p in drawn], "images": [p.read_bytes() for p in images],
            "captions": captions}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    s = Served(tmp_path_factory.mktemp("serve") / "serve.log", "--max-batch", "8")
    yield s
    pids = [s.triton, *_children(s.triton)]
    status = s.stop()
    assert status == 0, s.text()
    assert "stopped (tritonserver exit status 0)" in s.text()
    left = [p for p in pids if Path(f"/proc/{p}").exists() and "zombie" not in _state(p)]
    assert not left, f"processes left after stop: {[_cmdline(p) for p in left]}"


def _state(pid: int) -> str:
    try:
        return "zombie" if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z" else "alive"
    except OSError:
        return "gone"


def test_concurrent_requests_over_http_and_grpc_match_the_cli(server, inputs):
    """16 captions and 4 draws at once, half over HTTP and half over gRPC, plus two bad requests."""
    urls = {"http": f"127.0.0.1:{server.http_port}", "grpc": f"127.0.0.1:{server.grpc_port}"}

    def caption(i):
        with ServeClient(urls["http" if i % 2 else "grpc"], "http" if i % 2 else "grpc") as c:
            return c.caption([inputs["images"][i]])[0]

    def draw(i):
        with ServeClient(urls["grpc" if i % 2 else "http"], "grpc" if i % 2 else "http") as c:
            return c.draw([PROMPTS[i]], seed=SEED + i)[1][0, 0]  # the PNG's bytes

    def bad(kind):
        with ServeClient(urls["http"], "http") as c:
            try:
                c.caption([b"\x89PNG broken"]) if kind == "caption" else c.draw([""])
            except Exception as e:  # noqa: BLE001 - tritonclient's InferenceServerException, checked below
                return str(e)
        return None

    with ThreadPoolExecutor(22) as ex:
        caps = [ex.submit(caption, i) for i in range(16)]
        draws = [ex.submit(draw, i) for i in range(4)]
        bads = [ex.submit(bad, "caption"), ex.submit(bad, "draw")]
        caps, draws, bads = ([f.result(timeout=300) for f in fs] for fs in (caps, draws, bads))
    assert caps == inputs["captions"]
    assert draws == inputs["drawn"]  # the same PNG bytes as `unifork-rt draw ... --seed`
    assert bads[0] is not None and "not an image" in bads[0] and "[400]" in bads[0]
    assert bads[1] is not None and "prompt is empty" in bads[1]


def test_caption_stream_sends_the_caption_token_by_token(server, inputs):
    with ServeClient(f"127.0.0.1:{server.grpc_port}", "grpc") as c:
        pieces = list(c.caption_stream(inputs["images"][0]))
        assert len(pieces) >= 2 and "".join(pieces) == inputs["captions"][0]
        with pytest.raises(Exception, match="not an image"):
            list(c.caption_stream(b"nope"))


def test_draw_returns_n_images_per_prompt(server):
    with ServeClient(f"127.0.0.1:{server.http_port}", "http") as c:
        images, pngs = c.draw(["a red circle", "two circles"], seed=[0, 1], n=2)
    assert images.shape == (2, 2, 64, 64, 3) and images.dtype == np.uint8 and pngs.shape == (2, 2)
    assert not np.array_equal(images[0, 0], images[0, 1])  # two samples, not one copied


def test_a_dead_instance_is_reported_and_replaced(tmp_path, inputs):
    s = Served(tmp_path / "serve.log", "--instances", "2")
    try:
        victims = s.instances("caption")
        assert len(victims) == 2
        os.kill(victims[0], signal.SIGKILL)  # a stub process of this test's own server
        url = f"127.0.0.1:{s.http_port}"
        deadline, results = time.monotonic() + 120, []
        for _ in range(60):  # until 4 requests in a row succeed, bounded in count and time
            with ThreadPoolExecutor(4) as ex:
                results = list(ex.map(lambda i: _try_caption(url, inputs["images"][i]), range(4)))
            if results == inputs["captions"][:4] or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert results == inputs["captions"][:4], results
        # the survivor may answer before the watcher's next look (once a second): wait for its report
        deadline = time.monotonic() + 120
        while "model caption: reloaded" not in s.text() and time.monotonic() < deadline:
            time.sleep(0.5)
        assert "model caption: 1 of its 2 instances died; reloading it" in s.text()
        assert "model caption: reloaded" in s.text()
        assert len(s.instances("caption")) >= 2
    finally:
        pids = [s.triton, *_children(s.triton)]
        s.stop()
    assert "stopped (tritonserver exit status" in s.text()
    time.sleep(0.5)
    assert not [p for p in pids if _state(p) == "alive"]


def _try_caption(url: str, image: bytes) -> str:
    with ServeClient(url, "http") as c:
        try:
            return c.caption([image])[0]
        except Exception as e:  # noqa: BLE001 - the message is what the caller compares
            return f"error: {e}"
