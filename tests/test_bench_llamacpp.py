"""The llama.cpp peer without llama.cpp: its command lines, llama-bench's JSON, the build cache,
the tokenizer pre-type fallback, the launcher that reads a child's peak RSS, what it says when
something is missing, and how the report shows it. The real build takes ~20 minutes: nothing
here needs it (a fake converter and a fake llama-quantize stand in)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import json
import shutil
import sys
import tarfile
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from unifork_rt.benchmarks import cli, llamacpp, report

# llama-bench -o json as version 0.3.36's tree prints it (fields trimmed to those read, plus a few)
DECODE_JSON = """[
  {
    "build_commit": "abc1234",
    "build_number": 1,
    "cpu_info": "AMD EPYC",
    "model_type": "qwen2 1B Q4_0",
    "model_size": 350000000,
    "n_threads": 2,
    "type_k": "f16",
    "type_v": "f16",
    "flash_attn": -1,
    "n_prompt": 0,
    "n_gen": 64,
    "n_depth": 300,
    "avg_ns": 2240000000,
    "samples_ns": [ 2176000000, 2240000000, 2304000000 ],
    "samples_ts": [ 29.4, 28.6, 27.8 ]
  }
]
"""
PREFILL_JSON = DECODE_JSON.replace('"n_prompt": 0', '"n_prompt": 300').replace('"n_gen": 64', '"n_gen": 0') \
    .replace('"n_depth": 300', '"n_depth": 0')


def _tools(tmp_path: Path) -> llamacpp.Tools:
    return llamacpp.tool_paths(tmp_path / "work")


# --- types and command lines -------------------------------------------------------------------
def test_types_and_pure_twins():
    assert llamacpp.parse_type("q4_0") == ("q4_0", False)
    assert llamacpp.parse_type("q8_0-pure") == ("q8_0", True)
    with pytest.raises(ValueError, match="valid: f32, q8_0, q4_0, q8_0-pure, q4_0-pure"):
        llamacpp.parse_type("q5_k")
    with pytest.raises(ValueError, match="f32-pure"):
        llamacpp.parse_type("f32-pure")  # nothing to quantize
    assert llamacpp.plan_types(["f32", "q8_0", "q4_0"], pure=False) == ["f32", "q8_0", "q4_0"]
    assert llamacpp.plan_types(["f32", "q8_0", "q4_0"], pure=True) == ["f32", "q8_0", "q8_0-pure", "q4_0",
                                                                      "q4_0-pure"]
    assert llamacpp.plan_types(["q4_0-pure", "q4_0"], pure=True) == ["q4_0-pure", "q4_0"]


def test_bench_command_lines(tmp_path):
    t = _tools(tmp_path)
    m = Path("/m/peer-qwen2-q4_0.gguf")
    dec = llamacpp.decode_cmd(t, m, threads=2, repeats=3, depth=300)
    assert dec[0] == str(t.bench) and dec[0].endswith("llamacpp/0.3.36/build/bin/llama-bench")
    assert " ".join(dec[1:]) == f"-m {m} -p 0 -n 64 -d 300 -t 2 -r 3 -o json"
    pre = llamacpp.prefill_cmd(t, m, threads=2, repeats=3, depth=300)
    assert " ".join(pre[1:]) == f"-m {m} -p 300 -n 0 -t 2 -r 3 -o json"
    q = llamacpp.quantize_cmd(t, Path("f32.gguf"), Path("out.gguf"), "q4_0", threads=2)
    assert q == [str(t.quantize), "f32.gguf", "out.gguf", "Q4_0", "2"]
    q = llamacpp.quantize_cmd(t, Path("f32.gguf"), Path("out.gguf"), "q8_0-pure", threads=4)
    assert q == [str(t.quantize), "--pure", "f32.gguf", "out.gguf", "Q8_0", "4"]


def test_build_and_download_command_lines(tmp_path):
    conf = llamacpp.configure_cmd(Path("/s"), Path("/b"))
    assert conf[:5] == ["cmake", "-S", "/s", "-B", "/b"]
    for flag in ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF"):
        assert flag in conf
    # AMX compiled out on x86 (llama.cpp#20824: its AMX kernels crash), nothing added elsewhere
    assert "-DCMAKE_CXX_FLAGS=-mno-amx-tile -mno-amx-int8 -mno-amx-bf16" in llamacpp.cmake_flags("x86_64")
    assert llamacpp.cmake_flags("aarch64") == list(llamacpp.CMAKE_FLAGS)
    assert llamacpp.build_cmd(Path("/b"), jobs=2) == ["cmake", "--build", "/b", "--config", "Release", "--target",
                                                       "llama-bench", "llama-quantize", "-j", "2"]
    dl = llamacpp.download_cmd(tmp_path)
    assert dl[1:4] == ["-m", "pip", "download"] and "llama-cpp-python==0.3.36" in dl
    assert dl[dl.index("--no-binary") + 1] == ":all:" and "--no-deps" in dl
    assert llamacpp.sdist_path(tmp_path).name == "llama_cpp_python-0.3.36.tar.gz"


# --- llama-bench's JSON --------------------------------------------------------------------------
def test_parse_decode_and_prefill():
    (dec,) = llamacpp.parse_bench_json("load info on stdout first\n" + DECODE_JSON)
    assert dec["kind"] == "decode" and (dec["n_gen"], dec["n_depth"]) == (64, 300)
    assert dec["seconds"] == pytest.approx([0.034, 0.035, 0.036])  # per token: 2.24 s / 64
    assert dec["build"] == "abc1234 (1)" and dec["type_k"] == "f16" and dec["n_threads"] == 2
    (pre,) = llamacpp.parse_bench_json(PREFILL_JSON)
    assert pre["kind"] == "prefill" and pre["n_prompt"] == 300
    assert pre["seconds"] == pytest.approx([2.176, 2.24, 2.304])  # the whole prompt


def test_parse_refuses_what_it_cannot_read():
    with pytest.raises(ValueError, match="no JSON list"):
        llamacpp.parse_bench_json("error: failed to load model")
    with pytest.raises(ValueError, match="pp300\\+tg64"):
        llamacpp.parse_bench_json(DECODE_JSON.replace('"n_prompt": 0', '"n_prompt": 300'))
    with pytest.raises(ValueError, match="without samples_ns"):
        llamacpp.parse_bench_json(DECODE_JSON.replace("2176000000, 2240000000, 2304000000", ""))


# --- the build cache ---------------------------------------------------------------------------
def _fake_build(work: Path, key: dict) -> llamacpp.Tools:
    t = llamacpp.tool_paths(work)
    t.bench.parent.mkdir(parents=True)
    t.bench.write_text("")
    t.quantize.write_text("")
    (llamacpp.home(work) / "build.json").write_text(json.dumps(key))
    return t


def test_build_is_cached_by_version_flags_and_cpu(tmp_path):
    work = tmp_path / "work"
    key = llamacpp.build_key()
    assert key["version"] == "0.3.36" and "-DGGML_NATIVE=ON" in key["cmake_flags"] and key["cpu"]
    assert llamacpp.cached_build(work) is None  # nothing built
    t = _fake_build(work, key)
    assert llamacpp.cached_build(work) == t
    assert llamacpp.cached_build(work, version="0.3.37") is None  # another version builds beside it
    assert llamacpp.home(work, "0.3.37") != llamacpp.home(work)
    assert llamacpp.cached_build(work, key={**key, "cpu": "another CPU"}) is None  # GGML_NATIVE: this CPU only
    assert llamacpp.cached_build(work, key={**key, "cmake_flags": key["cmake_flags"][:-1]}) is None
    # the same CPU name over another instruction set (a guest's generic name, or a CPUID mask): rebuilt
    masked = [f for f in key["native"] if f != "-mavx512f"] + ["-mno-avx512f"]
    assert llamacpp.cached_build(work, key={**key, "native": masked}) is None
    t.quantize.unlink()
    assert llamacpp.cached_build(work) is None


GCC_DRIVER = """Using built-in specs.
COLLECT_GCC=c++
 /usr/libexec/gcc/x86_64-linux-gnu/12/cc1plus -E -quiet -v -imultiarch x86_64-linux-gnu -D_GNU_SOURCE /dev/null \
"-march=rocketlake" -mavx2 -mno-avx512f -mno-amx-tile --param "l1-cache-size=48" "-mtune=rocketlake" -dumpbase null
COLLECT_GCC_OPTIONS='-march=native' '-E' '-shared-libgcc'
"""
CLANG_DRIVER = """clang version 16.0.6
 "/usr/lib/llvm-16/bin/clang" "-cc1" "-triple" "x86_64-pc-linux-gnu" "-E" "-target-cpu" "znver4" \
"-target-feature" "+avx512f" "-target-feature" "-amx-tile" "-x" "c++" "/dev/null"
"""


def test_native_target_reads_the_compilers_own_flags():
    """The build key's `native`: what GCC or Clang makes of -march=native, read off its driver's -### line."""
    assert llamacpp.parse_native_target(GCC_DRIVER) == [
        "-march=rocketlake", "-mavx2", "-mno-avx512f", "-mno-amx-tile", "-mtune=rocketlake"]
    assert llamacpp.parse_native_target(CLANG_DRIVER) == [
        "-target-cpu", "znver4", "-target-feature", "+avx512f", "-target-feature", "-amx-tile"]
    assert llamacpp.parse_native_target("c++: error: unrecognized command-line option '-###'") == []
    assert llamacpp.native_target(cc=str(Path("/nonexistent/c++"))) == []
    if llamacpp.compiler():  # this machine's: names an -march (GCC) or a -target-cpu (Clang)
        native = llamacpp.native_target()
        assert any(f.startswith("-march=") for f in native) or "-target-cpu" in native, native


def test_the_tree_is_taken_from_the_sdist(tmp_path):
    src = tmp_path / "pkg"
    tree = src / "llama_cpp_python-0.3.36" / "vendor" / "llama.cpp"
    (tree / "tools").mkdir(parents=True)
    (tree / "CMakeLists.txt").write_text("project(llama)\n")
    (tree / "tools" / "x.cpp").write_text("int main() {}\n")
    (tree / ".git").write_text("gitdir: ../../.git/modules/vendor/llama.cpp\n")
    (src / "llama_cpp_python-0.3.36" / "setup.py").write_text("")
    sdist = tmp_path / "s.tar.gz"
    with tarfile.open(sdist, "w:gz") as tar:
        tar.add(src / "llama_cpp_python-0.3.36", arcname="llama_cpp_python-0.3.36")
    out = llamacpp.extract_tree(sdist, tmp_path / "v" / "src")
    assert (out / "CMakeLists.txt").read_text() == "project(llama)\n" and (out / "tools" / "x.cpp").is_file()
    assert not (out / ".git").exists() and not (out / "setup.py").exists()
    assert not list(out.parent.glob("*.partial"))
    bad = tmp_path / "bad.tar.gz"
    with tarfile.open(bad, "w:gz") as tar:
        tar.add(src / "llama_cpp_python-0.3.36" / "setup.py", arcname="x/setup.py")
    with pytest.raises(RuntimeError, match="no vendor/llama.cpp"):
        llamacpp.extract_tree(bad, tmp_path / "v2" / "src")


# --- the tokenizer pre-type --------------------------------------------------------------------
def _converter_module():
    class TextModel:
        def get_vocab_base_pre(self, tokenizer):
            if tokenizer == "qwen-hash":
                return "qwen2"
            if tokenizer == "llama3-hash":
                return "llama-bpe"
            raise NotImplementedError("BPE pre-tokenizer was not recognized - update get_vocab_base_pre()")

    class Qwen2Model(TextModel):  # inherits the method: wrapped once, through the base
        pass

    return types.SimpleNamespace(TextModel=TextModel, Qwen2Model=Qwen2Model, gguf=types)


def test_unknown_pretype_maps_to_qwen2_known_ones_stay():
    mod = _converter_module()
    with pytest.raises(NotImplementedError):
        mod.Qwen2Model().get_vocab_base_pre("random-320-bpe-hash")
    assert llamacpp.patch_pretype([mod]) == 1
    assert mod.Qwen2Model().get_vocab_base_pre("random-320-bpe-hash") == "qwen2"
    assert mod.Qwen2Model().get_vocab_base_pre("llama3-hash") == "llama-bpe"  # a known hash keeps its name
    assert llamacpp.patch_pretype([types.SimpleNamespace(x=int)]) == 0  # nothing to wrap: the caller says so


FAKE_CONVERTER = '''
import sys
from pathlib import Path


class TextModel:
    def get_vocab_base_pre(self, tokenizer):
        raise NotImplementedError("BPE pre-tokenizer was not recognized")


def main():
    args = sys.argv[1:]
    out = Path(args[args.index("--outfile") + 1])
    pre = TextModel().get_vocab_base_pre(None)
    out.write_text(f"GGUF {args[args.index('--outtype') + 1]} pre={pre} from={args[0]}")
'''


def test_ggufs_are_made_once_per_peer_model(tmp_path):
    """The f32 file through the converter (fake, with the unknown pre-type), the others through
    llama-quantize (a script that records its arguments); a new peer model empties the folder."""
    work = tmp_path / "work"
    t = _fake_build(work, llamacpp.build_key())
    t.src.mkdir(parents=True)
    (t.src / "convert_hf_to_gguf.py").write_text(FAKE_CONVERTER)
    t.quantize.write_text('#!/bin/sh\nif [ "$1" = --pure ]; then shift; p=pure; fi\n'
                          'cp "$1" "$2"; echo " $3 $4 $p" >> "$2"\n')
    t.quantize.chmod(0o755)
    hf = tmp_path / "peer-qwen2"
    hf.mkdir()
    (hf / "built.json").write_text(json.dumps({"config": {"hidden_size": 896}, "seed": 0}))
    q = llamacpp.ensure_gguf(work, t, hf, "q4_0-pure", threads=2)
    f32 = llamacpp.gguf_path(work, "f32")
    assert f32.read_text() == f"GGUF f32 pre=qwen2 from={hf}"
    assert q.name == "peer-qwen2-q4_0-pure.gguf" and q.read_text() == f32.read_text() + " Q4_0 2 pure\n"
    f32.write_text("kept")
    assert llamacpp.ensure_gguf(work, t, hf, "f32", threads=2).read_text() == "kept"  # made once
    (hf / "built.json").write_text(json.dumps({"config": {"hidden_size": 64}, "seed": 0}))
    assert llamacpp.ensure_gguf(work, t, hf, "f32", threads=2).read_text().startswith("GGUF f32")
    assert not q.exists() and not list(f32.parent.glob("*.partial"))


# --- peak RSS of a child ----------------------------------------------------------------------
def test_peak_rss_is_the_commands_own(tmp_path):
    out, mb = llamacpp.run_with_rusage([sys.executable, "-c", "b = bytearray(300 * 2**20); print('ok')"])
    print(f"peak RSS of a 300 MiB child: {mb:.0f} MB")
    assert out.strip() == "ok" and 300 <= mb < 500
    with pytest.raises(RuntimeError, match="status 3"):
        llamacpp.run_with_rusage([sys.executable, "-c", "raise SystemExit(3)"])


# --- what is missing -----------------------------------------------------------------------------
def _pretend(monkeypatch, gone_modules=(), gone_programs=()):
    """GONE_MODULES / GONE_PROGRAMS absent; the converter's other modules present (the bench extra,
    which CI does not install: the test must not depend on it)."""
    real_spec, real_which = importlib.util.find_spec, shutil.which
    present = set(llamacpp.CONVERTER_NEEDS) - set(gone_modules)

    def find_spec(name, *a, **k):
        top = name.split(".")[0]
        if top in gone_modules:
            return None
        if top in present:
            return importlib.machinery.ModuleSpec(name, None)
        return real_spec(name, *a, **k)
    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name in gone_programs else real_which(name))


def test_missing_says_what_to_install(monkeypatch, tmp_path):
    work = tmp_path / "work"
    _pretend(monkeypatch, gone_modules=("yaml",))
    assert "needs pyyaml" in llamacpp.missing(work) and "pip install" in llamacpp.missing(work)
    monkeypatch.undo()
    _pretend(monkeypatch, gone_programs=("cmake",))
    msg = llamacpp.missing(work)
    assert msg.startswith("peer llamacpp skipped") and "cmake" in msg and "compiler" not in msg
    monkeypatch.undo()
    _pretend(monkeypatch, gone_programs=("cmake", "c++", "g++", "clang++"))
    assert "cmake and a C++ compiler" in llamacpp.missing(work)
    _fake_build(work, llamacpp.build_key())
    assert llamacpp.missing(work) is None  # built already: no compiler needed
    plan = cli.peer_plan(["llamacpp"], [], ["f32", "q4_0"], tmp_path / "elsewhere")
    assert [(p["precision"], "cmake" in p["skipped"]) for p in plan] == [("f32", True), ("q4_0", True)]


@pytest.mark.skipif(any(importlib.util.find_spec(m) is None for m in llamacpp.CONVERTER_NEEDS),
                    reason="the GGUF converter's modules (the bench extra) are not installed")
def test_missing_is_none_where_everything_is_here(tmp_path):
    if shutil.which("cmake") is None or llamacpp.compiler() is None:
        pytest.skip("no cmake / C++ compiler here")
    assert llamacpp.missing(tmp_path) is None


def test_bad_type_option_lists_the_valid_ones(tmp_path):
    res = CliRunner().invoke(cli.bench, ["--preset", "micro", "--peers", "llamacpp", "--llamacpp-types", "q5_k",
                                         "--work", str(tmp_path)])
    assert res.exit_code == 2 and "unknown llama.cpp type 'q5_k'" in res.output and "q4_0-pure" in res.output


# --- the report ----------------------------------------------------------------------------------
def _peer_unit(prec, per_token, size):
    st = lambda s: {"median": s, "min": s, "max": s, "p10": s, "p90": s, "n": 3, "warmup": 1, "spread": 0.0}  # noqa
    base = prec.split("-")[0]
    return {"kind": "peer", "name": "llamacpp", "precision": prec, "roofline_precision": llamacpp.ROOFLINE_PRECISION[base],
            "ttft": st(2.5), "per_token": st(per_token), "prompt_len": 300, "new_tokens": 64, "prefill_tokens": 300,
            "decode_tokens": 64, "decode_depth": 300, "threads": 2, "peak_rss_mb": 600.0,
            "engine": "llama.cpp abc (1)", "gguf": {"bytes": size,
                                                       "tensor_types": {base: 168, "f32": 121} if base != "f32"
                                                       else {"f32": 289}}}


def test_report_shows_llamacpp_its_files_and_the_load():
    results = {"label": "t", "machine": {"cpu": "x", "cores": 2, "cpu_flags": ["avx2"], "load_average_1m": 0.1},
               "busy_at_start": [], "machine_probe": {"bandwidth": 30e9, "threads": 2, "gemm_flops_per_s": 1e11},
               "units": [_peer_unit("f32", 0.106, 2_000_000_000), _peer_unit("q4_0", 0.034, 400_000_000)],
               "peer_prompt_len": 300, "peer_new_tokens": 32,
               "peer_load_average": {"start": [0.12, 0.5, 1.0], "end": [2.0, 1.0, 1.0]},
               "peer_cpu_busy": {"start": 1.4, "end": None}}
    report.analyse(results)
    f32, q4 = results["units"]
    # the bound of the f32 file is fp32 weights: > 3x that of q4_0
    assert f32["roofline"]["decode_step"]["bound_s"] > 3 * q4["roofline"]["decode_step"]["bound_s"]
    md = report.markdown(results)
    print(md)
    assert "| llama.cpp (llama-bench) | q4_0 | 2500.0 | 34.0 ± 0% |" in md
    assert "f32 2000 MB (f32 ×289)" in md and "q4_0 400 MB (f32 ×121, q4_0 ×168)" in md
    assert "-p 0 -n 64 -d 300" in md and "0.12 / 0.50 / 1.00" in md and "idle machine" in md
    assert "CPUs busy in the second before them 1%, after them ?" in md


def test_a_peers_bound_takes_its_files_tensor_bytes_where_llama_bench_gave_them():
    """q4_0's default file keeps the tied head in q8_0 (896 is not a multiple of 256): the bound counts the bytes
    llama-bench reports for the model (model_size), not what the type name alone would give."""
    q4 = _peer_unit("q4_0", 0.034, 349_606_720)
    results = {"label": "t", "machine": {"cpu": "x", "cores": 2, "cpu_flags": ["avx2"]}, "busy_at_start": [],
               "machine_probe": {"bandwidth": 30e9, "threads": 2, "gemm_flops_per_s": 1e11}, "units": [q4]}
    report.analyse(results)
    by_type = q4["roofline"]["decode_step"]["weight_bytes"]
    q4 = _peer_unit("q4_0", 0.034, 349_606_720)
    q4["gguf"]["model_size"] = 349_000_000
    results["units"] = [q4]
    report.analyse(results)
    step = q4["roofline"]["decode_step"]
    print(f"q4_0 weight bytes by type {by_type / 1e6:.1f} MB, by llama-bench's model_size {step['weight_bytes'] / 1e6:.1f} MB")
    assert step["weight_bytes"] == 349_000_000 and by_type < 300e6
    assert step["bound_s"] == pytest.approx((349_000_000 + step["kv_bytes"]) / 30e9)


# --- a peer that hangs ---------------------------------------------------------------------------
def _assert_killed(pid: int, what: str) -> None:
    """PID is gone within 5 s, or a zombie until init reaps it; else it is killed here and the test fails."""
    import os
    import time

    state = "?"
    for _ in range(50):
        if Path("/proc/self/stat").is_file():
            try:
                state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
            except FileNotFoundError:
                return
            if state == "Z":
                return
        else:  # no /proc: a reaped process is gone to kill(0) (a zombie still answers: waits the 5 s, then fails)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return
        time.sleep(0.1)
    os.kill(pid, 9)
    pytest.fail(f"{what}: process {pid} still running (state {state})")


def test_a_hung_child_is_killed_with_what_it_started(tmp_path):
    """run_child kills the command's whole process group past its timeout (the rusage launcher's llama-bench, a
    spinning grandchild, must not outlive the bench), and says which command and how long."""
    import time

    from unifork_rt.benchmarks.measure import run_child

    pid_file = tmp_path / "grandchild.pid"
    code = ("import subprocess, sys, time; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)']); "
            f"open({str(pid_file)!r}, 'w').write(str(p.pid)); time.sleep(120)")
    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"did not finish in 3 s: killed"):
        run_child([sys.executable, "-c", code], timeout=3)
    assert time.monotonic() - t0 < 60
    _assert_killed(int(pid_file.read_text()), "the grandchild outlived the timeout")
    done = run_child([sys.executable, "-c", "import sys; print('out'); print('err', file=sys.stderr); sys.exit(4)"])
    assert (done.returncode, done.stdout, done.stderr) == (4, "out\n", "err\n")


def test_what_a_peers_command_leaves_running_goes_with_it(tmp_path):
    """A command that exits and leaves a process behind in its group (a daemonised helper): run_child kills it."""
    from unifork_rt.benchmarks.measure import run_child

    pid_file = tmp_path / "left.pid"
    code = ("import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'], "
            f"stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL); open({str(pid_file)!r}, 'w').write(str(p.pid))")
    assert run_child([sys.executable, "-c", code]).returncode == 0
    _assert_killed(int(pid_file.read_text()), "the process the command left behind")


def test_nohup_keeps_the_worker_going_when_the_terminal_closes():
    """stop_on_sigterm turns SIGTERM and SIGHUP into SystemExit, but leaves an ignored SIGHUP (nohup) ignored."""
    import signal

    from unifork_rt.benchmarks.worker import stop_on_sigterm

    saved = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        stop_on_sigterm()
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN and callable(signal.getsignal(signal.SIGTERM))
        signal.signal(signal.SIGHUP, signal.SIG_DFL)
        stop_on_sigterm()
        with pytest.raises(SystemExit) as e:
            signal.getsignal(signal.SIGHUP)(signal.SIGHUP, None)
        assert e.value.code == 128 + signal.SIGHUP
    finally:
        for s, h in saved.items():
            signal.signal(s, h)


def test_a_hung_peer_fails_its_round_and_the_next_runs():
    from unifork_rt.benchmarks import interleave

    slow = interleave._child_timer([sys.executable, "-c", "import time; time.sleep(60)"], float, timeout=1)
    calls = []

    def peer():
        calls.append(1)
        return slow() if len(calls) == 1 else 0.02

    rounds = interleave.interleave(lambda: (0.01, [8]), {"llamacpp": peer}, lambda: 30e9, 2)
    print(rounds[0])
    assert "did not finish in 1 s" in rounds[0]["error"] and rounds[1]["ratio"]["llamacpp"] == pytest.approx(0.5)


def test_a_unit_past_its_timeout_takes_its_peers_child_with_it(tmp_path, monkeypatch):
    """The bench's --timeout stops a worker with SIGTERM: the worker unwinds and kills the peer's process group
    (run_child), so a llama-bench it was waiting on does not keep spinning after the unit is recorded as timed out."""
    import time

    from unifork_rt.benchmarks import cli, worker

    pid_file = tmp_path / "peer.pid"
    script = ("import sys; from unifork_rt.benchmarks.worker import stop_on_sigterm; "
              "from unifork_rt.benchmarks.measure import run_child; stop_on_sigterm(); "
              "run_child([sys.executable, '-c', \"import os, time; open(%r, 'w').write(str(os.getpid())); "
              "time.sleep(120)\"])" % str(pid_file))
    monkeypatch.setattr(worker, "command", lambda spec, out: [sys.executable, "-c", script])
    t0 = time.monotonic()
    res = cli.Runner(tmp_path, timeout=4, echo=lambda *a, **k: None)({"unit": "peer"}, "hung peer")
    assert "timed out after 4 s" in res["error"] and time.monotonic() - t0 < 60
    _assert_killed(int(pid_file.read_text()), "the peer's process outlived its unit")
