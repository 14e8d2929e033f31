"""The hostile battery: every case a user or a damaged bundle can throw at the runtime.

One catalogue serves two readers: tests/test_hostile.py runs each case and checks its exit
status and message, and `python -m unifork_rt.benchmarks.failures` runs the same cases to
write docs/FAILURES.md. A case returns what the user sees: the CLI's exit status and first
line, or for the Python API 0 and a summary / 2 and the UniforkError's message. Anything
else (a traceback, a hang) is a failure of the case.

Classes: bundle (manifest schema, paths, sizes), options (values, seeds, memory, prompts),
output (stdout, signals), files (names, overwrites, all-or-none), threads, photos (EXIF).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Result:
    code: int  # exit status (the API: 0 = worked, 2 = UniforkError)
    message: str  # the first line the user sees


@dataclass(frozen=True)
class Case:
    group: str
    name: str
    run: Callable[["Env"], Result]
    code: int  # the exit status the case must end with
    says: str  # a piece of the message it must show

    @property
    def id(self) -> str:
        return f"{self.group}: {self.name}"


class Env:
    """A bundle to attack and a scratch folder; every case works in its own sub-folder."""

    def __init__(self, bundle: Path, tmp: Path):
        self.bundle, self.tmp = Path(bundle).resolve(), Path(tmp).resolve()
        self._rt = None
        self._n = 0
        self.image = self.tmp / "white.png"
        if not self.image.exists():
            self.tmp.mkdir(parents=True, exist_ok=True)
            Image.new("RGB", (64, 64), "white").save(self.image)

    def dir(self) -> Path:
        self._n += 1
        d = self.tmp / f"case{self._n}"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
        return d

    def clone(self) -> Path:
        """A copy of the bundle (hard links where possible: replace files, never edit them in place)."""
        d = self.dir() / "bundle"
        d.mkdir()
        for f in self.bundle.iterdir():
            if f.is_file():
                try:
                    os.link(f, d / f.name)
                except OSError:
                    shutil.copy2(f, d / f.name)
        return d

    def manifest(self) -> dict:
        return json.loads((self.bundle / "manifest.json").read_text())

    def rt(self):
        from unifork_rt.runtime.pipeline import UniForkRuntime

        if self._rt is None:
            self._rt = UniForkRuntime(self.bundle)
        return self._rt

    def close(self) -> None:
        if self._rt is not None:
            self._rt.close()

    def shown(self, text: str) -> str:
        for path, short in ((str(self.tmp), "…"), (str(self.bundle), "BUNDLE")):
            text = text.replace(path, short)
        return text


def replace_file(path: Path, data: bytes | str) -> None:
    path.unlink(missing_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)


def sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- how a case is run ---------------------------------------------------------------------------
def cli(env: Env, *args, cwd: Path | None = None) -> Result:
    """The CLI in-process (click's runner): exit status and the first line shown."""
    from click.testing import CliRunner

    from unifork_rt.cli import main

    old = os.getcwd()
    try:
        if cwd is not None:
            os.chdir(cwd)
        res = CliRunner().invoke(main, [str(a) for a in args])
    finally:
        os.chdir(old)
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        raise res.exception  # a traceback is a failure of the case
    lines = [ln for ln in res.output.splitlines() if ln.strip() and not ln.startswith(("Usage:", "Try "))]
    return Result(res.exit_code, env.shown(lines[0] if lines else ""))


def api(env: Env, call: Callable[[], object], describe: Callable[[object], str] = lambda v: "worked") -> Result:
    from unifork_rt.errors import UniforkError

    try:
        value = call()
    except UniforkError as e:
        return Result(2, env.shown(str(e)))
    return Result(0, env.shown(describe(value)))


def proc(env: Env, args: list[str], cwd: Path, **popen) -> subprocess.Popen:
    """The real `unifork-rt` process (python -m unifork_rt), for signals and the output channel."""
    pkg_root = str(Path(__file__).resolve().parents[1])  # run this checkout's code, even uninstalled
    environ = {**os.environ, "PYTHONPATH": pkg_root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    then = popen.pop("preexec_fn", None)

    def preexec() -> None:
        """In the child before exec: SIGINT back to its default. A shell starts background jobs
        (`cmd &`, nohup) with SIGINT ignored and children inherit that, so the SIGINT cases could not
        be tested from a suite run in the background."""
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        if then is not None:
            then()

    return subprocess.Popen([sys.executable, "-m", "unifork_rt", *map(str, args)], cwd=cwd, env=environ,
                            stderr=subprocess.PIPE, preexec_fn=preexec, **popen)


def started(p: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the child runs our code (numpy is mapped: cli is importing), not the interpreter's
    own start-up, whose KeyboardInterrupt no program can catch."""
    end = time.monotonic() + timeout
    while time.monotonic() < end and p.poll() is None:
        try:
            if "numpy" in Path(f"/proc/{p.pid}/maps").read_text():
                return
        except OSError:
            return
        time.sleep(0.005)


def finished(env: Env, p: subprocess.Popen, timeout: float = 120) -> Result:
    _, err = p.communicate(timeout=timeout)
    lines = [ln for ln in err.decode(errors="replace").splitlines() if ln.strip()]
    if any("Traceback" in ln for ln in lines):  # the whole stderr: a rare race is seen once, so keep all of it
        raise AssertionError(f"traceback (exit {p.returncode}), whole stderr:\n" + "\n".join(lines))
    return Result(p.returncode, env.shown(lines[0] if lines else ""))


# --- bundle --------------------------------------------------------------------------------------
def _draw(env: Env, bundle: Path) -> Result:
    return cli(env, "draw", "a red circle", "--model", bundle, "-o", bundle.parent / "x.png", "--quiet")


def manifest_case(name: str, change, says: str, code: int = 2) -> Case:
    """change(m) edits the parsed manifest in place (or returns raw text / bytes for the file)."""
    def run(env: Env) -> Result:
        b = env.clone()
        m = env.manifest()
        raw = change(m)
        replace_file(b / "manifest.json", raw if isinstance(raw, (str, bytes)) else json.dumps(m))
        return _draw(env, b)

    return Case("bundle", name, run, code, says)


def files_case(name: str, change, says: str, code: int = 2) -> Case:
    """change(env, bundle_dir) damages files of a cloned bundle."""
    def run(env: Env) -> Result:
        b = env.clone()
        change(env, b)
        return _draw(env, b)

    return Case("bundle", name, run, code, says)


def _set(path: str | tuple, value):
    """A change that sets m[a][b]... = value (path 'a.b.c' or a tuple of keys; ints index lists)."""
    def change(m):
        keys = path.split(".") if isinstance(path, str) else list(path)
        obj = m
        for k in keys[:-1]:
            obj = obj[int(k)] if isinstance(obj, list) else obj[k]
        last = keys[-1]
        if isinstance(obj, list):
            obj[int(last)] = value
        else:
            obj[last] = value
    return change


def _del(path: str | tuple):
    def change(m):
        keys = path.split(".") if isinstance(path, str) else list(path)
        obj = m
        for k in keys[:-1]:
            obj = obj[k]
        del obj[keys[-1]]
    return change


def _swap_graphs(m):
    m["graphs"]["trunk"], m["graphs"]["und_branch"] = m["graphs"]["und_branch"], m["graphs"]["trunk"]


def _point_trunk_at(file: str, sha_of: str | None = None):
    def change(m):
        m["graphs"]["trunk"]["file"] = file
        if sha_of and Path(sha_of).is_file():
            m["graphs"]["trunk"]["sha256"] = sha(Path(sha_of))
    return change


def _outside_copy_with_matching_hash(env: Env, b: Path) -> None:
    outside = b.parent / "elsewhere.onnx"
    shutil.copy(b / "trunk.onnx", outside)
    (b / "trunk.onnx").unlink()
    (b / "trunk.onnx").symlink_to(outside)  # same bytes, same sha256, but outside the bundle


def _symlink(name: str, target: str):
    def change(env: Env, b: Path) -> None:
        (b / name).unlink()
        (b / name).symlink_to(target)
    return change


def _fifo(name: str):
    def change(env: Env, b: Path) -> None:
        (b / name).unlink()
        os.mkfifo(b / name)  # reading it would block forever
    return change


def _directory(name: str):
    def change(env: Env, b: Path) -> None:
        (b / name).unlink()
        (b / name).mkdir()
    return change


def _sparse(name: str, size: int):
    def change(env: Env, b: Path) -> None:
        (b / name).unlink()
        with open(b / name, "wb") as f:
            f.truncate(size)  # sparse: costs no disk, but hashing it would read it all
    return change


def _with_hash(name: str, data: Callable[[Path], bytes]):
    """Replace a file and record its new sha256 in the manifest: the hash passes, the content must not."""
    def change(env: Env, b: Path) -> None:
        blob = data(b)
        replace_file(b / name, blob)
        m = json.loads((b / "manifest.json").read_text())
        m["files"][name] = hashlib.sha256(blob).hexdigest()
        replace_file(b / "manifest.json", json.dumps(m))
    return change


def _graph_with_hash(name: str, data: Callable[[Path], bytes]):
    def change(env: Env, b: Path) -> None:
        blob = data(b)
        replace_file(b / f"{name}.onnx", blob)
        m = json.loads((b / "manifest.json").read_text())
        m["graphs"][name]["sha256"] = hashlib.sha256(blob).hexdigest()
        replace_file(b / "manifest.json", json.dumps(m))
    return change


def _escaping_graph(b: Path) -> bytes:
    """A valid ONNX graph (built by hand, no onnx package) whose weight lives in ../secret.bin."""
    (b.parent / "secret.bin").write_bytes(bytes(16))

    def field(num: int, wire: int, payload: bytes | int) -> bytes:
        key = _varint(num << 3 | wire)
        return key + (_varint(payload) if wire == 0 else _varint(len(payload)) + payload)

    def s(num, text):
        return field(num, 2, text.encode())

    def entry(k, v):
        return field(13, 2, s(1, k) + s(2, v))
    tensor = field(1, 0, 4) + field(2, 0, 1) + s(8, "w") + entry("location", "../secret.bin") + \
        entry("offset", "0") + entry("length", "16") + field(14, 0, 1)
    dims = field(1, 2, field(1, 0, 4))
    vtype = field(1, 2, field(1, 0, 1) + field(2, 2, dims))
    node = s(1, "x") + s(1, "w") + s(2, "y") + s(4, "Add")
    graph = field(1, 2, node) + s(2, "g") + field(5, 2, tensor) + field(11, 2, s(1, "x") + field(2, 2, vtype)) + \
        field(12, 2, s(1, "y") + field(2, 2, vtype))
    return field(1, 0, 8) + field(7, 2, graph) + field(8, 2, field(2, 0, 18))


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _bad_embeddings(b: Path) -> bytes:
    from safetensors.numpy import save

    return save({"embed_tokens.weight": np.zeros((3, 5), np.float32), "boi": np.zeros(5, np.float32),
                 "eoi": np.zeros(5, np.float32)})


def _alter(name: str, offset: int = 100):
    def change(env: Env, b: Path) -> None:
        data = bytearray((b / name).read_bytes())
        data[offset:offset + 3] = b"\x00\x01\x02"
        replace_file(b / name, bytes(data))
    return change


def _truncate(name: str):
    def change(env: Env, b: Path) -> None:
        data = (b / name).read_bytes()
        replace_file(b / name, data[: len(data) // 3])
    return change


def _config_on_disk(env: Env, b: Path) -> None:
    cfg = json.loads((b / "config.json").read_text())
    cfg["text"]["rope_theta"] = 5.0
    replace_file(b / "config.json", json.dumps(cfg))


def _memory_limited(env: Env) -> Result:
    from unifork_rt.runtime.pipeline import UniForkRuntime

    return api(env, lambda: UniForkRuntime(env.bundle, memory_limit=4096).close())


def _deep(n: int) -> str:
    return "[" * n + "]" * n


def bundle_cases() -> list[Case]:
    m, f = manifest_case, files_case
    io_in = "graphs.trunk.inputs"
    cases = [
        m("manifest is a JSON list", lambda _: "[]", "not a manifest object"),
        m("manifest is null", lambda _: "null", "not a manifest object"),
        m("manifest is a string", lambda _: '"bundle"', "not a manifest object"),
        m("manifest is a number", lambda _: "42", "not a manifest object"),
        m("manifest is empty", lambda _: "", "is malformed"),
        m("manifest is cut short", lambda _: '{"format": 1,', "is malformed"),
        m("manifest is not UTF-8", lambda _: b'\xff\xfe{"format": 1}', "is malformed"),
        m("manifest nested 100,000 deep", lambda _: _deep(100_000), "nested too deeply"),
        m("manifest of 17 MiB", lambda _: "{" + " " * (17 << 20) + "}", "above the"),
        m("NaN in the manifest", lambda _: '{"format": 1, "max_seq": NaN}', "not a JSON number"),
        m("1e999 in the manifest", lambda _: '{"format": 1, "max_seq": 1e999}', "overflows a float"),
        m("a 5000-digit integer", lambda _: '{"format": 1, "max_seq": ' + "9" * 5000 + "}", "is malformed"),
    ]
    for key in ("format", "max_seq", "precision", "config", "config_sha256", "files", "graphs"):
        cases.append(m(f"manifest without {key}", _del(key), f"{key} is missing"))
    cases += [
        m("format 2", _set("format", 2), "format 2 is not supported"),
        m('format "1" (a string)', _set("format", "1"), "format must be an integer"),
        m('max_seq "128" (a string)', _set("max_seq", "128"), "max_seq must be an integer"),
        m("max_seq true", _set("max_seq", True), "max_seq must be an integer"),
        m("max_seq -1", _set("max_seq", -1), "max_seq -1 must be in [1, 1048576]"),
        m("max_seq 0", _set("max_seq", 0), "must be in [1, 1048576]"),
        m("max_seq 10^9", _set("max_seq", 10**9), "must be in [1, 1048576]"),
        m("max_seq 1.5", _set("max_seq", 1.5), "max_seq must be an integer"),
        m("max_seq too small for the image", _set("max_seq", 4), "cannot hold an image"),
        m("max_seq changed, KV layouts not", _set("max_seq", 1000), "graphs.trunk.inputs.kv.shape is ["),
        m("unknown precision fp8", _set("precision", "fp8"), "is not one of fp32"),
        m("precision 32 (a number)", _set("precision", 32), "precision must be a string"),
        m("config is a list", _set("config", []), "config must be an object"),
        m("config without its text section", _del("config.text"), "section 'text' is missing"),
        m('config hidden_size "192" (a string)', _set("config.text.hidden_size", "192"), "should be a int"),
        m("config hidden_size -5", _set("config.text.hidden_size", -5), "must be a positive integer"),
        m("config channels 7 (not a list)", _set("config.image.channels", 7), "is ill-typed"),
        m("config with an unknown field", _set("config.text.evil", 1), "unknown field(s) evil"),
        m("config differs from config.json", _set("config.text.rope_theta", 77.0), "manifest mismatch"),
        m("config_sha256 not hex", _set("config_sha256", "zz"), "64 lowercase hex digits"),
        m("files is a list", _set("files", []), "files must be an object"),
        m("files without tokenizer.json", _del(("files", "tokenizer.json")), "files.tokenizer.json is missing"),
        m("files names ../config.json", _set(("files", "../config.json"), "0" * 64), "a plain name in the bundle"),
        m("files names /etc/passwd", _set(("files", "/etc/passwd"), "0" * 64), "a plain name in the bundle"),
        m("files sha256 is a number", _set(("files", "config.json"), 5), "must be a string"),
        m("graphs is a list", _set("graphs", []), "graphs must be an object"),
        m("graphs without trunk", _del("graphs.trunk"), "graphs.trunk is missing"),
        m("graphs with an unknown graph", _set("graphs.evil", {}), "unknown graph(s) evil"),
        m("graph entry null", _set("graphs.trunk", None), "graphs.trunk must be an object"),
        m("graph file ../trunk.onnx", _point_trunk_at("../trunk.onnx"), "it must be trunk.onnx"),
        m("graph file /etc/passwd with its sha256", _point_trunk_at("/etc/passwd", "/etc/passwd"),
          "it must be trunk.onnx"),
        m("graph file /proc/self/status", _point_trunk_at("/proc/self/status"), "it must be trunk.onnx"),
        m("trunk entry points at und_branch.onnx", _point_trunk_at("und_branch.onnx"), "it must be trunk.onnx"),
        m("trunk and und_branch entries swapped", _swap_graphs, "it must be trunk.onnx"),
        m("graph file is a number", _set("graphs.trunk.file", 5), "file must be a string"),
        m("graph sha256 in upper case", lambda mm: mm["graphs"]["trunk"].update(
            sha256=mm["graphs"]["trunk"]["sha256"].upper()), "64 lowercase hex digits"),
        m("data_file ../../etc/passwd", _set("graphs.trunk.data_file", "../../etc/passwd"),
          "it must be trunk.onnx.data"),
        m("data_file without data_sha256", _set("graphs.trunk.data_file", "trunk.onnx.data"),
          "data_sha256 is missing"),
        m("inputs is an object", _set(io_in, {}), "inputs must be a list"),
        m("inputs without pos", lambda mm: mm["graphs"]["trunk"]["inputs"].pop(2), "lists 3 tensors"),
        m("input renamed", _set(f"{io_in}.0.name", "y"), "has no tensor 'x'"),
        m("input dtype float128", _set(f"{io_in}.0.dtype", "float128"), "expected float32"),
        m("input dtype null", _set(f"{io_in}.0.dtype", None), "expected float32"),
        m("input with a negative dim", _set(f"{io_in}.0.shape", ["batch", "seq", -1]), "expected ['b', 't'"),
        m("input with a wrong hidden size", _set(f"{io_in}.0.shape", ["batch", "seq", 7]), "expected ['b', 't'"),
        m("input dim named by 1,000 characters", _set(f"{io_in}.0.shape", ["b" * 1000, "seq", 64]),
          "strings are dynamic dims"),
        m("input shape nested lists", _set(f"{io_in}.0.shape", [[[]], "seq", 64]), "strings are dynamic dims"),
        m("input shape with 3 dims too many", _set(f"{io_in}.0.shape", ["b", "s", 64, 1, 1, 1]), "expected 3 dims"),
        m("input entry is a string", _set(f"{io_in}.0", "x"), "must be an object with a name"),
        m("outputs lists one tensor", lambda mm: mm["graphs"]["trunk"]["outputs"].pop(), "lists 1 tensors"),
        m("KV layers -1", _set("graphs.trunk.kv.layers", -1), "must be in [0, 1048576]"),
        m("KV max_seq 10^9", _set("graphs.trunk.kv.max_seq", 10**9), "must be in [0, 1048576]"),
        m("KV heads 2^20 (a 1.4 TiB buffer)", _set("graphs.trunk.kv.kv_heads", 2**20), "the config and max_seq imply"),
        m("KV layers as a string", _set("graphs.trunk.kv.layers", "2"), "must be an integer"),
        m("KV missing for trunk", _set("graphs.trunk.kv", None), "is None, but the config"),
        m("KV given for connector", _set("graphs.connector.kv", {"layers": 1, "kv_heads": 1, "max_seq": 1,
                                                                    "head_dim": 1}), "imply None"),
        m("sampling cfg_scale a string", _set("sampling", {"cfg_scale": "high"}), "cfg-scale must be a number"),
        m("sampling cfg_scale 1e300", _set("sampling", {"cfg_scale": 1e300}), "must be in [0, 100]"),
        m("sampling top_k 2.5", _set("sampling", {"top_k": 2.5}), "top-k must be an integer"),
        m("sampling with an unknown key", _set("sampling", {"steps": 3}), "is not a draw setting"),
        m("sampling is a list", _set("sampling", [1]), "sampling must be an object"),
        m("exporter of 10,000 characters", _set("exporter", "x" * 10_000), "longer than 200"),
        m("ops is a string", _set("graphs.trunk.ops", "MatMul"), "ops must be a list"),
        m("an unknown top-level key (ignored)", _set("comment", "hello"), "x.png", code=0),
        f("manifest.json links outside the bundle", lambda env, b: _symlink("manifest.json", str(
            _copy_out(b, "manifest.json")))(env, b), "outside the bundle folder"),
        f("manifest.json is a directory", _directory("manifest.json"), "is not a regular file"),
        f("manifest.json is a FIFO", _fifo("manifest.json"), "is not a regular file"),
        f("trunk.onnx links outside (same sha256)", _outside_copy_with_matching_hash, "outside the bundle folder"),
        f("config.json links to /etc/passwd", _symlink("config.json", "/etc/passwd"), "outside the bundle folder"),
        f("tokenizer.json links to /proc/self/status", _symlink("tokenizer.json", "/proc/self/status"),
          "outside the bundle folder"),
        f("embeddings link to /dev/zero", _symlink("embeddings.safetensors", "/dev/zero"), "outside the bundle"),
        f("trunk.onnx links to und_branch.onnx", _symlink("trunk.onnx", "und_branch.onnx"),
          "trunk.onnx does not match the sha256"),
        f("trunk.onnx is a directory", _directory("trunk.onnx"), "is not a regular file"),
        f("trunk.onnx is a FIFO", _fifo("trunk.onnx"), "is not a regular file"),
        f("tokenizer.json of 300 MB (sparse)", _sparse("tokenizer.json", 300 << 20), "above the 0.25 GiB"),
        f("embeddings of 5 GB (sparse)", _sparse("embeddings.safetensors", 5 << 30), "above the"),
        f("trunk.onnx of 3 GB (sparse)", _sparse("trunk.onnx", 3 << 30), "above the 2.00 GiB"),
        f("altered graph", _alter("trunk.onnx"), "trunk.onnx does not match the sha256"),
        f("truncated embeddings", _truncate("embeddings.safetensors"), "does not match the sha256"),
        f("garbage tokenizer with a matching sha256", _with_hash("tokenizer.json", lambda b: b"{not json"),
          "not a tokenizer the runtime can read"),
        f("embeddings of the wrong shape, matching sha256", _with_hash("embeddings.safetensors", _bad_embeddings),
          "tensor embed_tokens.weight is float32[3, 5]"),
        f("embeddings not safetensors, matching sha256", _with_hash("embeddings.safetensors", lambda b: b"\x00" * 64),
          "not a readable safetensors file"),
        f("graph of garbage with a matching sha256", _graph_with_hash("trunk", lambda b: b"\x08\x07garbage" * 10),
          "ONNX Runtime cannot load graph trunk"),
        f("graph whose external data escapes the bundle, matching sha256", _graph_with_hash("trunk", _escaping_graph),
          "ONNX Runtime cannot load graph trunk"),
        f("config.json from another model", _config_on_disk, "manifest mismatch"),
        f("config.json missing", lambda env, b: (b / "config.json").unlink(), "config.json is missing"),
        f("trunk.onnx missing", lambda env, b: (b / "trunk.onnx").unlink(), "trunk.onnx is missing"),
        Case("bundle", "model folder missing", lambda env: _draw(env, env.dir() / "nowhere"), 2, "does not exist"),
        Case("bundle", "checkpoint folder instead of a bundle", lambda env: _draw(env, env.dir()), 2,
             "not an exported graph bundle"),
        Case("bundle", "KV buffers beyond the memory limit (API, memory_limit=4 KiB)", _memory_limited, 2,
             "(the KV buffers of one guided image) needs about"),
    ]
    return cases


def _copy_out(b: Path, name: str) -> Path:
    out = b.parent / f"outside-{name}"
    shutil.copy(b / name, out)
    return out


# --- options and prompts --------------------------------------------------------------------------
def _draw_with(*extra, prompt="a red circle"):
    def run(env: Env) -> Result:
        d = env.dir()
        return cli(env, "draw", prompt, "--model", env.bundle, "-o", d / "x.png", "--quiet", *extra)
    return run


def _caption_with(*extra):
    def run(env: Env) -> Result:
        return cli(env, "caption", env.image, "--model", env.bundle, "--max-new-tokens", "3", *extra)
    return run


def _api_draw(**kw):
    def run(env: Env) -> Result:
        kw2 = dict(kw)
        prompts = kw2.pop("prompts", ["a red circle"])
        return api(env, lambda: env.rt().draw(prompts, **kw2), lambda v: f"{len(v)} image(s)")
    return run


def _api_caption(images, **kw):
    def run(env: Env) -> Result:
        imgs = images(env) if callable(images) else images
        return api(env, lambda: env.rt().caption(imgs, max_new_tokens=3, **kw), lambda v: f"{len(v)} caption(s)")
    return run


def _array(fill) -> Callable[[Env], list]:
    def make(env: Env):
        P = env.rt().cfg.image.image_size
        return [fill(P)]
    return make


def options_cases() -> list[Case]:
    O = "options"
    big = str(2**63 - 1)
    cases = [
        Case(O, "--seed -1", _draw_with("--seed", "-1"), 2, "seed -1 must be in [0, 9223372036854775807]"),
        Case(O, "--seed 2^63", _draw_with("--seed", str(2**63)), 2, "must be in [0, 9223372036854775807]"),
        Case(O, "--seed 2^63-1 (works)", _draw_with("--seed", big), 0, "x.png"),
        Case(O, "--seed 2^63-1 with two prompts (seeds wrap, works)",
             lambda env: cli(env, "draw", "a", "b", "--model", env.bundle, "--seed", big, "--quiet", "-o",
                             env.dir() / "x.png"), 0, "x_0.png"),
        Case(O, "--seed abc", _draw_with("--seed", "abc"), 2, "is not a valid integer"),
        Case(O, "caption --seed -1", _caption_with("--seed", "-1"), 2, "seed -1 must be in"),
        Case(O, "--n 100000", _draw_with("--n", "100000"), 2, "needs about"),
        Case(O, "--n 2^63-1", _draw_with("--n", big), 2, "must be in [1, 4611686018427387904]"),
        Case(O, "--n 2^62", _draw_with("--n", str(2**62)), 2, "needs about"),
        Case(O, "--n -5", _draw_with("--n", "-5"), 2, "must be >= 1"),
        Case(O, "--n 0", _draw_with("--n", "0"), 2, "must be >= 1"),
        Case(O, "--n 2.5", _draw_with("--n", "2.5"), 2, "is not a valid integer"),
        Case(O, "--cfg-scale 1e300", _draw_with("--cfg-scale", "1e300"), 2, "cfg-scale 1e+300 must be in [0, 100]"),
        Case(O, "--cfg-scale -1", _draw_with("--cfg-scale", "-1"), 2, "must be in [0, 100]"),
        Case(O, "--cfg-scale nan", _draw_with("--cfg-scale", "nan"), 2, "must be a finite number"),
        Case(O, "--cfg-scale inf", _draw_with("--cfg-scale", "inf"), 2, "must be a finite number"),
        Case(O, "--cfg-scale 100 (works)", _draw_with("--cfg-scale", "100"), 0, "x.png"),
        Case(O, "--temperature 1e-300", _draw_with("--temperature", "1e-300"), 2, "must be 0 (greedy) or in"),
        Case(O, "--temperature nan", _draw_with("--temperature", "nan"), 2, "must be a finite number"),
        Case(O, "--temperature inf", _draw_with("--temperature", "inf"), 2, "must be a finite number"),
        Case(O, "--temperature -1", _draw_with("--temperature", "-1"), 2, "temperature -1.0 must be >= 0"),
        Case(O, "--temperature 0 (greedy, works)", _draw_with("--temperature", "0"), 0, "x.png"),
        Case(O, "--top-k -1", _draw_with("--top-k", "-1"), 2, "top-k -1 must be >= 0"),
        Case(O, "--top-k 2^40", _draw_with("--top-k", str(2**40)), 2, "top-k 1099511627776 must be in"),
        Case(O, "--top-p 0", _draw_with("--top-p", "0"), 2, "top-p 0.0 must be in (0, 1]"),
        Case(O, "--top-p 1.5", _draw_with("--top-p", "1.5"), 2, "must be in (0, 1]"),
        Case(O, "--top-p nan", _draw_with("--top-p", "nan"), 2, "must be a finite number"),
        Case(O, "caption --max-new-tokens 0", _caption_with("--max-new-tokens", "0"), 2, "max-new-tokens 0 must be"),
        Case(O, "caption --max-new-tokens 10^12", _caption_with("--max-new-tokens", str(10**12)), 2,
             "must be in [1, 1048576]"),
        Case(O, "caption --temperature nan", _caption_with("--temperature", "nan"), 2, "must be a finite number"),
        Case(O, "prompt with invalid UTF-8", _draw_with(prompt="\udcff\udcfe circle"), 2, "is not valid UTF-8"),
        Case(O, "caption --prompt with invalid UTF-8", _caption_with("--prompt", "describe \udcff"), 2,
             "is not valid UTF-8"),
        Case(O, "prompt of one zero-width space", _draw_with(prompt="\u200b"), 2, "has no letters, digits or symbols"),
        Case(O, "prompt of zero-width joiners and marks", _draw_with(prompt="\u200d\u200e\u200f\ufeff"), 2,
             "has no letters"),
        Case(O, "prompt of a right-to-left override", _draw_with(prompt="\u202e"), 2, "has no letters"),
        Case(O, "prompt of combining accents only", _draw_with(prompt="\u0301\u0308"), 2, "has no letters"),
        Case(O, "prompt of control characters", _draw_with(prompt="\x01\x02\x1b"), 2, "has no letters"),
        Case(O, "prompt of punctuation only", _draw_with(prompt="!!! ..."), 2, "has no letters"),
        Case(O, "prompt made of a special token", _draw_with(prompt="<|endoftext|>"), 2,
             "contains the special token '<|endoftext|>'"),
        Case(O, "prompt with a special token inside", _draw_with(prompt="a circle<|endoftext|>"), 2,
             "special token"),
        Case(O, "prompt with a NUL", _draw_with(prompt="a\x00circle"), 2, "NUL character"),
        Case(O, "empty prompt", _draw_with(prompt=""), 2, "prompt is empty"),
        Case(O, "prompt of spaces", _draw_with(prompt="   \t"), 2, "prompt is empty"),
        Case(O, "prompt longer than max_seq", _draw_with(prompt="circle " * 200), 2, "--max-seq"),
        Case(O, "prompt of one emoji (a symbol, works)", _draw_with(prompt="\U0001f7e5"), 0, "x.png"),
        Case(O, "prompt in Cyrillic (works)", _draw_with(prompt="красный круг"), 0, "x.png"),
        # the Python API
        Case(O, "API draw n=2.5", _api_draw(n=2.5), 2, "--n (images per prompt) must be an integer, got float 2.5"),
        Case(O, "API draw n=True", _api_draw(n=True), 2, "must be an integer, got bool"),
        Case(O, 'API draw n="2"', _api_draw(n="2"), 2, "must be an integer, got str"),
        Case(O, "API draw n=-1", _api_draw(n=-1), 2, "must be >= 1"),
        Case(O, "API draw n=2^62", _api_draw(n=2**62), 2, "needs about"),
        Case(O, "API draw n=numpy.int64(1) (works)", _api_draw(n=np.int64(1)), 0, "1 image(s)"),
        Case(O, "API draw top_k=2.5", _api_draw(top_k=2.5), 2, "top-k must be an integer, got float 2.5"),
        Case(O, 'API draw top_k="5"', _api_draw(top_k="5"), 2, "top-k must be an integer, got str"),
        Case(O, 'API draw temperature="hot"', _api_draw(temperature="hot"), 2, "temperature must be a number"),
        Case(O, "API draw cfg_scale=nan", _api_draw(cfg_scale=float("nan")), 2, "must be a finite number"),
        Case(O, "API draw cfg_scale=1e300", _api_draw(cfg_scale=1e300), 2, "must be in [0, 100]"),
        Case(O, "API draw with an unknown setting", _api_draw(steps=3), 2, "unknown draw setting(s) steps"),
        Case(O, "API draw seed=-1", _api_draw(seed=-1), 2, "seed -1 must be in"),
        Case(O, "API draw seed=2.0", _api_draw(seed=2.0), 2, "seed must be an integer"),
        Case(O, "API draw seed=2^63", _api_draw(seed=2**63), 2, "must be in [0, 9223372036854775807]"),
        Case(O, "API draw prompts=None", _api_draw(prompts=None), 2, "prompts must be a non-empty list"),
        Case(O, "API draw prompts=[]", _api_draw(prompts=[]), 2, "prompts must be a non-empty list"),
        Case(O, "API draw prompts=[3]", _api_draw(prompts=[3]), 2, "a prompt must be a string, not int"),
        Case(O, "API draw a bare string (one prompt, works)", _api_draw(prompts="a red circle"), 0, "1 image(s)"),
        Case(O, "API DrawSettings(cfg_scale=1e300)", lambda env: api(env, lambda: _settings(cfg_scale=1e300)), 2,
             "must be in [0, 100]"),
        Case(O, "API caption a bare path string (one image, works)", _api_caption(lambda env: str(env.image)), 0,
             "1 caption(s)"),
        Case(O, "API caption a bare pathlib.Path (works)", _api_caption(lambda env: env.image), 0, "1 caption(s)"),
        Case(O, "API caption a path as bytes", _api_caption(lambda env: bytes(env.image)), 2, "not bytes"),
        Case(O, "API caption 42", _api_caption(42), 2, "images must be a list of paths"),
        Case(O, "API caption None", _api_caption(None), 2, "images must be a list of paths"),
        Case(O, "API caption []", _api_caption([]), 2, "no images given"),
        Case(O, "API caption [None]", _api_caption([None]), 2, "image 0 is a NoneType"),
        Case(O, "API caption a NaN array", _api_caption(_array(lambda P: np.full((3, P, P), np.nan))), 2,
             "holds NaN or infinity"),
        Case(O, "API caption an inf array", _api_caption(_array(lambda P: np.full((3, P, P), np.inf))), 2,
             "holds NaN or infinity"),
        Case(O, "API caption a 0..255 float array", _api_caption(_array(lambda P: np.full((3, P, P), 200.0))), 2,
             "looks like 0..255 pixels"),
        Case(O, "API caption a uint8 array", _api_caption(_array(lambda P: np.full((3, P, P), 255, np.uint8))), 2,
             "looks like 0..255 pixels"),
        Case(O, "API caption an (H, W, 3) array", _api_caption(_array(lambda P: np.zeros((P, P, 3)))), 2,
             "must be (3,"),
        Case(O, "API caption a ragged list", _api_caption([[[0.0], [0.0, 1.0]]]), 2, "an image array must be"),
        Case(O, "API caption an array of strings", _api_caption(_array(lambda P: np.full((3, P, P), "x"))), 2,
             "an image array must be"),
        Case(O, "API caption a single (3, P, P) array (works)",
             _api_caption(lambda env: _array(lambda P: np.zeros((3, P, P), np.float32))(env)[0]), 0, "1 caption(s)"),
        Case(O, "API caption a (2, 3, P, P) batch (works)",
             _api_caption(lambda env: np.zeros((2, 3, 64, 64), np.float32)), 0, "2 caption(s)"),
        Case(O, "API caption max_new_tokens=2.5", lambda env: api(env, lambda: env.rt().caption(
            [env.image], max_new_tokens=2.5)), 2, "max-new-tokens must be an integer"),
        Case(O, "API caption top_k=2.5", _api_caption(lambda env: [env.image], top_k=2.5), 2, "top-k must be an integer"),
        Case(O, "API caption seed=-1", _api_caption(lambda env: [env.image], seed=-1), 2, "seed -1 must be in"),
        Case(O, "API caption prompt=5", _api_caption(lambda env: [env.image], prompt=5), 2, "prompt must be a string"),
        Case(O, "API caption prompt with invalid UTF-8", _api_caption(lambda env: [env.image], prompt="\udcff"), 2,
             "is not valid UTF-8"),
    ]
    return cases


def _settings(**kw):
    from unifork_rt.runtime.pipeline import DrawSettings

    return DrawSettings(**kw)


# --- the output channel and signals ---------------------------------------------------------------
def _caption_to(stdout_kind: str):
    def run(env: Env) -> Result:
        d = env.dir()
        args = ["caption", env.image, "--model", env.bundle, "--max-new-tokens", "3"]
        if stdout_kind == "full":
            with open("/dev/full", "wb") as full:
                return finished(env, proc(env, args, d, stdout=full))
        if stdout_kind == "pipe":
            p = proc(env, args, d, stdout=subprocess.PIPE)
            p.stdout.close()  # the reader is gone before the caption comes
            return finished(env, p)
        p = proc(env, args, d, stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1))
        return finished(env, p)
    return run


def _draw_closed_stdout(env: Env) -> Result:
    d = env.dir()
    r = finished(env, proc(env, ["draw", "a red circle", "--model", env.bundle, "-o", "x.png", "--quiet"], d,
                           stdout=subprocess.DEVNULL, preexec_fn=lambda: os.close(1)))
    return Result(r.code, r.message + _files_note(d))


def _draw_full_stdout(env: Env) -> Result:
    d = env.dir()
    with open("/dev/full", "wb") as full:
        r = finished(env, proc(env, ["draw", "a red circle", "--model", env.bundle, "-o", "x.png", "--quiet"], d,
                               stdout=full))
    return Result(r.code, r.message + _files_note(d))


def _files_note(d: Path) -> str:
    names = sorted(p.name for p in d.iterdir())
    return f" [files: {', '.join(names) or 'none'}]"


def _sigint_after(delay: float):
    def run(env: Env) -> Result:
        d = env.dir()
        p = proc(env, ["draw", "a red circle", "two squares", "--model", env.bundle, "-o", "x.png", "--quiet"], d,
                 stdout=subprocess.PIPE)
        started(p)
        time.sleep(delay)
        p.send_signal(signal.SIGINT)
        r = finished(env, p)
        return Result(r.code, r.message + _files_note(d))
    return run


def _sigint_many(env: Env) -> Result:
    """SIGINT at 10 moments from start-up to exit: every run must be all or nothing."""
    outcomes = set()
    runs = []
    for i in range(10):
        d = env.dir()
        p = proc(env, ["draw", "a red circle", "two squares", "--model", env.bundle, "-o", "x.png", "--quiet"], d,
                 stdout=subprocess.PIPE)
        runs.append((0.3 * i, d, p))
    for delay, d, p in runs:
        started(p)
        t0 = time.monotonic()
        time.sleep(max(0.0, t0 + delay - time.monotonic()))
        p.send_signal(signal.SIGINT)
    for delay, d, p in runs:
        r = finished(env, p)
        files = sorted(x.name for x in d.iterdir())
        if (r.code, r.message, files) == (130, "interrupted", []):
            outcomes.add("130 interrupted, no file")
        elif r.code == 0 and r.message == "" and files == ["x_0.png", "x_1.png"]:
            outcomes.add("0, both files")
        else:
            return Result(1, f"at {delay:.2f} s: exit {r.code} {r.message!r} files {files}")
    return Result(0, "every run ended in one of: " + "; ".join(sorted(outcomes)))


@contextlib.contextmanager
def _patched(owner, name: str, replacement):
    """owner.name = replacement for the block, restored whatever happens in it."""
    real = getattr(owner, name)
    setattr(owner, name, replacement)
    try:
        yield
    finally:
        setattr(owner, name, real)


def _draw_to(env: Env, d: Path, *prompts: str) -> Result:
    r = cli(env, "draw", *prompts, "--model", env.bundle, "-o", d / "x.png", "--quiet")
    return Result(r.code, r.message + _files_note(d))


def _sigint_in_commit(env: Env) -> Result:
    """A real SIGINT while the files are being renamed into place: held off until they are all there."""
    import unifork_rt.io as uio

    d = env.dir()
    real = uio._commit

    def commit(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*a, **k)

    with _patched(uio, "_commit", commit):
        return _draw_to(env, d, "a red circle", "two squares")


def _interrupt_after_delivery(env: Env) -> Result:
    """Ctrl-C after the files are written and printed (while the runtime closes): exit 0, files kept."""
    from unifork_rt.runtime.pipeline import UniForkRuntime

    d = env.dir()
    real = UniForkRuntime.close

    def close(self):
        real(self)
        raise KeyboardInterrupt

    with _patched(UniForkRuntime, "close", close):
        return _draw_to(env, d, "a red circle")


def _interrupt_while_drawing(env: Env) -> Result:
    from unifork_rt.runtime.pipeline import UniForkRuntime

    def decode(self, codes):
        raise KeyboardInterrupt

    with _patched(UniForkRuntime, "decode", decode):
        return _draw_to(env, env.dir(), "a red circle")


def output_cases() -> list[Case]:
    O = "output"
    return [
        Case(O, "caption to a full disk (stdout is /dev/full)", _caption_to("full"), 2,
             "cannot write to standard output: the disk is full"),
        Case(O, "caption into a closed pipe (EPIPE)", _caption_to("pipe"), 2, "the reader closed the pipe"),
        Case(O, "caption with stdout closed", _caption_to("closed"), 2, "standard output is closed"),
        Case(O, "draw with stdout closed: refused before drawing", _draw_closed_stdout, 2, "[files: none]"),
        Case(O, "draw with stdout on a full disk: images kept, exit says so", _draw_full_stdout, 2,
             "the 1 image(s) were written) [files: x.png]"),
        Case(O, "SIGINT during start-up (while importing)", _sigint_after(0.0), 130, "interrupted [files: none]"),
        Case(O, "SIGINT at 10 moments (0 to 2.7 s after start-up)", _sigint_many, 0, "every run ended in one of"),
        Case(O, "KeyboardInterrupt while drawing (in-process)", _interrupt_while_drawing, 130,
             "interrupted [files: none]"),
        Case(O, "SIGINT while the files are renamed into place", _sigint_in_commit, 0,
             "x_0.png [files: x_0.png, x_1.png]"),
        Case(O, "Ctrl-C after the files are written and printed", _interrupt_after_delivery, 0,
             "x.png [files: x.png]"),
    ]


# --- files ---------------------------------------------------------------------------------------
def _draw_in(d: Path, env: Env, *args) -> Result:
    r = cli(env, "draw", *args, "--model", env.bundle, "--quiet", cwd=d)
    return Result(r.code, r.message + _files_note(d))


def _symlinked_output(env: Env) -> Result:
    d = env.dir()
    target = d / "target.png"
    target.write_bytes(b"keep")
    os.chmod(target, 0o1777)  # world-writable and sticky: none of it may reach our file
    (d / "x.png").symlink_to(target)
    old = os.umask(0o022)
    try:
        r = cli(env, "draw", "a red circle", "--model", env.bundle, "-o", d / "x.png", "--quiet")
    finally:
        os.umask(old)
    out = d / "x.png"
    mode = stat.S_IMODE(os.lstat(out).st_mode)
    kept = target.read_bytes() == b"keep"
    kind = "a symlink" if out.is_symlink() else "a regular file"
    return Result(r.code, f"{r.message}: x.png is now {kind}, mode {mode:04o}; the link's target "
                          f"{'is untouched' if kept else 'WAS OVERWRITTEN'}")


def _replace_mode(mode: int):
    def run(env: Env) -> Result:
        d = env.dir()
        (d / "x.png").write_bytes(b"old")
        os.chmod(d / "x.png", mode)
        r = cli(env, "draw", "a red circle", "--model", env.bundle, "-o", d / "x.png", "--quiet")
        return Result(r.code, f"{r.message}: replaced, mode {stat.S_IMODE(os.lstat(d / 'x.png').st_mode):04o}")
    return run


def _long_name(size: int, n: int = 1):
    def run(env: Env) -> Result:
        d = env.dir()
        name = "x" * (size - 4) + ".png"
        r = cli(env, "draw", "a red circle", "--model", env.bundle, "-o", d / name, "--n", str(n), "--quiet")
        files = sorted(p.name for p in d.iterdir())
        return Result(r.code, f"{r.message[:70]} [{len(files)} file(s), {', '.join(str(len(f)) for f in files)} bytes]"
                      if r.code == 0 else r.message[:150])
    return run


def _existing(name: str, *args, expect_kept: bool = True):
    def run(env: Env) -> Result:
        d = env.dir()
        (d / name).write_bytes(b"mine")
        r = _draw_in(d, env, *args)
        kept = (d / name).read_bytes() == b"mine"
        return Result(r.code, f"{r.message}; {name} {'kept' if kept else 'replaced'}")
    return run


def _default_collision(env: Env) -> Result:
    d = env.dir()
    return _draw_in(d, env, "a red circle", "A red circle!")


def _partial_failure(env: Env) -> Result:
    """The second of three renames fails: the first is undone, the file it replaced restored."""
    import unifork_rt.io as uio

    d = env.dir()
    (d / "a.png").write_bytes(b"old a")
    real = os.replace
    calls = []

    def flaky(src, dst, *a, **k):
        calls.append(dst)
        if len(calls) == 2 and str(dst).endswith("b.png"):
            raise OSError(28, "No space left on device", str(dst))
        return real(src, dst, *a, **k)

    uio.os.replace = flaky
    try:
        def write():
            with uio.atomic_paths([d / "a.png", d / "b.png", d / "c.png"]) as tmps:
                for t in tmps:
                    t.write_bytes(b"new")
        r = api(env, write)
    finally:
        uio.os.replace = real
    return Result(r.code, f"{r.message} [a.png: {(d / 'a.png').read_bytes().decode()!r}; files: "
                          f"{', '.join(sorted(p.name for p in d.iterdir()))}]")


def _appeared_meanwhile(env: Env) -> Result:
    """A name draw chose itself appears between the check and the commit: not clobbered."""
    import unifork_rt.io as uio

    d = env.dir()

    def write():
        with uio.atomic_paths([d / "a.png", d / "b.png"], overwrite=[False, False]) as tmps:
            for t in tmps:
                t.write_bytes(b"new")
            (d / "b.png").write_bytes(b"someone else's")
    r = api(env, write)
    return Result(r.code, f"{r.message} [b.png: {(d / 'b.png').read_bytes().decode()!r}; a.png "
                          f"{'exists' if (d / 'a.png').exists() else 'not written'}]")


def _fsync_order(env: Env) -> Result:
    import unifork_rt.io as uio

    d = env.dir()
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    uio.os.fsync = lambda fd: (events.append("fsync"), real_fsync(fd))[1]
    uio.os.replace = lambda a, b: (events.append("rename"), real_replace(a, b))[1]
    try:
        r = api(env, lambda: uio.atomic_write_bytes(d / "x.bin", b"data"))
    finally:
        uio.os.fsync, uio.os.replace = real_fsync, real_replace
    return Result(r.code, f"{r.message}: {' -> '.join(events)}")


def _stale_temporaries(env: Env) -> Result:
    d = env.dir()
    dead = _dead_pid()
    (d / f".unifork-{dead}-abcd1234.tmp").write_bytes(b"half")  # a writer killed mid-write
    (d / f".unifork-{dead}-abcd1234.bak").write_bytes(b"half")
    (d / ".unifork-1-live0000.tmp").write_bytes(b"pid 1 still runs")
    (d / ".notours.tmp").write_bytes(b"x")
    r = _draw_in(d, env, "a red circle", "-o", "x.png")
    hidden = sorted(p.name for p in d.iterdir() if p.name.startswith("."))
    return Result(r.code, f"{r.message}; left: {', '.join(hidden)}")


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _killed_writer(env: Env) -> Result:
    """SIGKILL a process in its write window; the next write into the folder cleans up after it."""
    d = env.dir()
    pkg_root = str(Path(__file__).resolve().parents[1])
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from unifork_rt.io import atomic_path\n"
            "with atomic_path(sys.argv[1]) as t:\n    t.write_bytes(b'half'); print('in', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(d / "x.png"), pkg_root], stdout=subprocess.PIPE)
    p.stdout.readline()
    p.kill()
    p.wait()
    before = sorted(x.name for x in d.iterdir())
    r = _draw_in(d, env, "a red circle", "-o", "y.png")
    after = sorted(x.name for x in d.iterdir())
    return Result(r.code, f"{len(before)} stale temporary file(s) after the kill; after the next draw: "
                          f"{', '.join(after)}")


def files_cases() -> list[Case]:
    F = "files"
    return [
        Case(F, "-o through a symlink to a mode-1777 file", _symlinked_output, 0,
             "x.png is now a regular file, mode 0644; the link's target is untouched"),
        Case(F, "-o replaces the user's own mode-0600 file", _replace_mode(0o600), 0, "replaced, mode 0600"),
        Case(F, "-o replaces a setuid file: set-id bits dropped", _replace_mode(0o4755), 0, "replaced, mode 0755"),
        Case(F, "-o name of 242 bytes", _long_name(242), 0, "[1 file(s), 242 bytes]"),
        Case(F, "-o name of 250 bytes", _long_name(250), 0, "[1 file(s), 250 bytes]"),
        Case(F, "-o name of 255 bytes", _long_name(255), 0, "[1 file(s), 255 bytes]"),
        Case(F, "-o name of 256 bytes: refused before drawing", _long_name(256), 2, "the file name is 256 bytes"),
        Case(F, "-o of 254 bytes with --n 2 (x_0.png grows past 255)", _long_name(254, 2), 2,
             "the file name is 256 bytes"),
        Case(F, "default names collide ('a red circle', 'A red circle!')", _default_collision, 0,
             "[files: a_red_circle-2.png, a_red_circle.png]"),
        Case(F, "default name exists: not replaced", _existing("a_red_circle.png", "a red circle"), 2,
             "a_red_circle.png already exists and draw would replace it"),
        Case(F, "default name exists, --overwrite", _existing("a_red_circle.png", "a red circle", "--overwrite"), 0,
             "a_red_circle.png replaced"),
        Case(F, "draw A B -o x.png with an existing x_1.png", _existing("x_1.png", "a", "b", "-o", "x.png"), 2,
             "x_1.png already exists"),
        Case(F, "draw A B -o x.png --overwrite", _existing("x_1.png", "a", "b", "-o", "x.png", "--overwrite"), 0,
             "x_1.png replaced"),
        Case(F, "-o x.png replaces the x.png the user named", _existing("x.png", "a", "-o", "x.png"), 0,
             "x.png replaced"),
        Case(F, "-o is a folder", lambda env: _draw_in(_mkdir(env.dir(), "d.png"), env, "a", "-o", "d.png"), 2,
             "it is a folder"),
        Case(F, "-o is a FIFO", lambda env: _draw_in(_mkfifo(env.dir(), "f.png"), env, "a", "-o", "f.png"), 2,
             "exists and is not a regular file"),
        Case(F, "-o under a file", lambda env: _draw_in(_mkfile(env.dir(), "afile"), env, "a", "-o", "afile/x.png"),
             2, "is not a folder"),
        Case(F, "-o in a new folder (created)", lambda env: _draw_in(env.dir(), env, "a", "-o", "new/x.png"), 0,
             "new/x.png"),
        Case(F, "a rename fails half-way: all or none", _partial_failure, 2,
             "the disk is full; free some space or write elsewhere with -o/--out [a.png: 'old a'; files: a.png]"),
        Case(F, "a chosen name appears before the commit", _appeared_meanwhile, 2,
             "already exists and was not named to be replaced [b.png: \"someone else's\"; a.png not written]"),
        Case(F, "fsync before rename", _fsync_order, 0, "fsync -> rename -> fsync"),
        Case(F, "stale temporary files of dead writers", _stale_temporaries, 0,
             "left: .notours.tmp, .unifork-1-live0000.tmp"),
        Case(F, "SIGKILL in the write window, then the next draw", _killed_writer, 0,
             "1 stale temporary file(s) after the kill; after the next draw: y.png"),
    ]


def _mkdir(d: Path, name: str) -> Path:
    (d / name).mkdir()
    return d


def _mkfifo(d: Path, name: str) -> Path:
    os.mkfifo(d / name)
    return d


def _mkfile(d: Path, name: str) -> Path:
    (d / name).write_text("x")
    return d


# --- threads and photos ---------------------------------------------------------------------------
def _threads_leave_warnings_alone(env: Env) -> Result:
    from unifork_rt.runtime.images import load_image

    d = env.dir()
    good, bad = d / "good.png", d / "bad.png"
    Image.new("RGB", (64, 64), "red").save(good)
    bad.write_bytes(good.read_bytes()[:100])
    before = list(warnings.filters)
    errors = []

    def work():
        for i in range(30):
            try:
                load_image(good if i % 2 else bad, 64)
            except Exception as e:  # noqa: BLE001 - the bad file must fail, and only with our error
                if type(e).__name__ != "InputError":
                    errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with warnings.catch_warnings(record=True) as seen:  # a later warning must still be a warning
        warnings.simplefilter("default")
        warnings.warn("still a warning", UserWarning)
    same = list(warnings.filters) == before
    return Result(0 if same and not errors and seen else 1,
                  f"8 threads x 30 loads: warnings filters {'unchanged' if same else 'CHANGED'}, "
                  f"{len(errors)} unexpected errors")


def _no_filter_during_load(env: Env) -> Result:
    import unifork_rt.runtime.images as images

    seen = []
    real = images.Image.open

    def spy(*a, **k):
        seen.append(list(warnings.filters))
        return real(*a, **k)

    before = list(warnings.filters)
    images.Image.open = spy
    try:
        images.load_image(env.image, 64)
    finally:
        images.Image.open = real
    same = seen and seen[0] == before
    return Result(0 if same else 1, "warnings filters during a load: " + ("untouched" if same else "CHANGED"))


def _threads_caption_paths(env: Env) -> Result:
    rt = env.rt()
    d = env.dir()
    paths = []
    for i, colour in enumerate(("red", "blue", "green", "white")):
        p = d / f"{colour}.png"
        Image.new("RGB", (64, 64), colour).save(p)
        paths.append(p)
    want = [rt.caption([p], max_new_tokens=4) for p in paths]
    got = [None] * 4

    def work(i):
        got[i] = rt.caption([paths[i]], max_new_tokens=4)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Result(0 if got == want else 1, "4 threads captioning paths: " + ("same as one by one" if got == want
                                                                            else "DIFFERENT"))


def _exif(orientation: int):
    def run(env: Env) -> Result:
        from unifork_rt.runtime.images import load_image

        d = env.dir()
        rgb = np.zeros((40, 64, 3), np.uint8)
        rgb[:10, :20] = (255, 0, 0)  # a red block at the top left, as stored
        stored = Image.fromarray(rgb)
        exif = Image.Exif()
        exif[0x0112] = orientation
        path = d / "photo.jpg"
        stored.save(path, exif=exif, quality=100)
        shown = _displayed(Image.open(path).convert("RGB"), orientation)
        got = load_image(path, 64)
        want = load_image(_save(shown, d / "shown.png"), 64)
        err = float(np.abs(got - want).max())
        return Result(0 if err < 1e-6 else 1, f"orientation {orientation}: read as displayed "
                      f"({shown.size[0]}x{shown.size[1]}), max difference {err:.1g}")
    return run


def _displayed(im: Image.Image, orientation: int) -> Image.Image:
    T = Image.Transpose
    ops = {2: [T.FLIP_LEFT_RIGHT], 3: [T.ROTATE_180], 4: [T.FLIP_TOP_BOTTOM], 5: [T.TRANSPOSE],
           6: [T.ROTATE_270], 7: [T.TRANSVERSE], 8: [T.ROTATE_90]}.get(orientation, [])
    for op in ops:
        im = im.transpose(op)
    return im


def _save(im: Image.Image, path: Path) -> Path:
    im.save(path)
    return path


def _exif_in_memory(env: Env) -> Result:
    from unifork_rt.runtime.images import pil_pixels

    d = env.dir()
    rgb = np.zeros((40, 64, 3), np.uint8)
    rgb[:10, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(rgb).save(d / "p.jpg", exif=exif, quality=100)
    with Image.open(d / "p.jpg") as im:
        got = pil_pixels(im, 64)
        want = pil_pixels(Image.fromarray(np.asarray(_displayed(im.convert("RGB"), 6))), 64)  # no EXIF left
    err = float(np.abs(got - want).max())
    return Result(0 if err < 1e-6 else 1, f"an opened Pillow image with orientation 6: max difference {err:.1g}")


def _bad_orientation(value):
    def run(env: Env) -> Result:
        from unifork_rt.runtime.images import load_image

        d = env.dir()
        exif = Image.Exif()
        exif[0x0112] = value
        Image.new("RGB", (64, 40), "red").save(d / "p.jpg", exif=exif)
        return api(env, lambda: load_image(d / "p.jpg", 64), lambda a: f"read as stored, {a.shape}")
    return run


def thread_and_photo_cases() -> list[Case]:
    cases = [
        Case("threads", "8 threads loading good and truncated images", _threads_leave_warnings_alone, 0,
             "warnings filters unchanged, 0 unexpected errors"),
        Case("threads", "load_image sets no warnings filter", _no_filter_during_load, 0, "untouched"),
        Case("threads", "4 threads captioning paths with one runtime", _threads_caption_paths, 0,
             "same as one by one"),
    ]
    for o in range(1, 9):
        cases.append(Case("photos", f"EXIF orientation {o}", _exif(o), 0, "read as displayed"))
    cases += [
        Case("photos", "EXIF orientation on an opened Pillow image", _exif_in_memory, 0, "max difference 0"),
        Case("photos", "EXIF orientation 9 (invalid)", _bad_orientation(9), 0, "read as stored"),
        Case("photos", "EXIF orientation 0 (invalid)", _bad_orientation(0), 0, "read as stored"),
    ]
    return cases


def all_cases() -> list[Case]:
    return bundle_cases() + options_cases() + output_cases() + files_cases() + thread_and_photo_cases()


def run_case(case: Case, env: Env) -> Result:
    """Run one case; an exception that is not a user error is reported as UNHANDLED (exit 1)."""
    try:
        return case.run(env)
    except Exception as e:  # noqa: BLE001 - the doc must show what broke, not stop
        return Result(1, f"UNHANDLED {type(e).__name__}: {str(e)[:200]}")


def check(case: Case, result: Result) -> str | None:
    """Why a result does not meet its case, or None."""
    if result.code != case.code:
        return f"exit {result.code}, expected {case.code}: {result.message}"
    if case.says not in result.message:
        return f"message {result.message!r} lacks {case.says!r}"
    if "\n" in result.message or "Traceback" in result.message:
        return f"not one line: {result.message!r}"
    return None
