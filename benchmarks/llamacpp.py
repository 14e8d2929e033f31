"""llama.cpp as a peer: llama-bench on GGUF f32 / q8_0 / q4_0 of the peers' random Qwen2 model.

llama.cpp is what most people run a small model with on a CPU. With no internet but the package
registry, its source comes from the llama-cpp-python sdist, which ships it under vendor/llama.cpp.
Everything is built once into the bench work folder and reused, keyed by the sdist's version:

    WORK/llamacpp/sdist/llama_cpp_python-V.tar.gz   pip download --no-binary :all: (once)
    WORK/llamacpp/V/src/                             its vendor/llama.cpp
    WORK/llamacpp/V/build/bin/llama-bench, llama-quantize    CMake, Release, GGML_NATIVE=ON
    WORK/llamacpp/V/build.json, build.log            what it was built with (rebuilt when that
                                                     differs: another CPU, other flags), the log
    WORK/peer-llamacpp/V/peer-qwen2-TYPE.gguf        convert_hf_to_gguf.py (f32), llama-quantize

The model is the other peers' WORK/peer-qwen2 (models.peer_qwen_folder): same shape, same
weights. Its tokenizer is a 320-id BPE trained here, whose pre-tokenizer hash the converter does
not know, and it refuses such a tokenizer; the converter is run through `convert` below, which
wraps the converter's get_vocab_base_pre so that an unknown hash maps to `qwen2` (known hashes
keep their name). That touches one method name, stable since llama.cpp PR 6920 (2024), instead of
editing the converter's text; and the tokenizer does not matter here: llama-bench feeds random
token ids.

The figures (llama-bench -o json, `repeats` timed runs after its own warm-up run):
    decode    -p 0 -n 64 -d DEPTH   ms per token of 64 tokens generated after DEPTH tokens of context
    prefill   -p DEPTH -n 0         ms for a DEPTH-token prompt (DEPTH = our paper caption prefill, 300)
Peak RSS is llama-bench's own (wait4's ru_maxrss, read by a small launcher process so the
worker's memory is not counted). llama.cpp's threads spin while they wait: its figures collapse
when anything else runs, so the load average is recorded before and after, and peers belong on
an idle machine.

This module runs as a program too (`python -m unifork_rt.benchmarks.llamacpp convert|types|rusage`)
for the steps that need a process of their own.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

from .measure import run_child

SDIST_PACKAGE = "llama-cpp-python"
SDIST_VERSION = "0.3.36"  # the llama.cpp measured in docs/BENCHMARKS.md; a new one builds beside it
TYPES = ("f32", "q8_0", "q4_0")
PURE = "-pure"  # TYPE-pure: llama-quantize --pure, every matrix in TYPE (no fallback for the 896-wide rows)
QUANT_FTYPE = {"q8_0": "Q8_0", "q4_0": "Q4_0"}
# the roofline's weight precision nearest to each GGUF type (q8_0 is 8.5 bits, q4_0 4.5 bits a weight)
ROOFLINE_PRECISION = {"f32": "fp32", "q8_0": "q8_0", "q4_0": "q4_0"}  # roofline.WEIGHT_BYTES
DECODE_TOKENS = 64
PRETYPE_FALLBACK = "qwen2"
TARGETS = ("llama-bench", "llama-quantize")
CMAKE_FLAGS = ("-DCMAKE_BUILD_TYPE=Release", "-DGGML_NATIVE=ON", "-DLLAMA_CURL=OFF", "-DLLAMA_OPENSSL=OFF",
               "-DBUILD_SHARED_LIBS=OFF", "-DLLAMA_BUILD_TESTS=OFF", "-DLLAMA_BUILD_EXAMPLES=OFF",
               "-DLLAMA_BUILD_SERVER=OFF", "-DLLAMA_BUILD_APP=OFF")
# llama.cpp's AMX kernels crash (ldtilecfg faults on a tile config the compiler dropped from the
# stack: ggml-org/llama.cpp#20824, fix open in #26954); GGML_NATIVE compiles them in on a CPU that
# has AMX, so on x86 they are compiled out (GCC and Clang let an explicit -mno-* beat -march=native).
# The machine of issue 16 has no AMX: its figures are unchanged.
NO_AMX = "-mno-amx-tile -mno-amx-int8 -mno-amx-bf16"
X86 = ("x86_64", "amd64", "i386", "i686")
COMPILERS = ("c++", "g++", "clang++")
# what the converter imports beyond numpy: torch and transformers, the tree's own gguf-py (which
# needs pyyaml), and sentencepiece (its Qwen2 vocabulary tries a SentencePiece file first)
CONVERTER_NEEDS = {"torch": "torch", "transformers": "transformers", "yaml": "pyyaml",
                   "sentencepiece": "sentencepiece"}

logger = logging.getLogger("unifork_rt.llamacpp")


# --- which types ------------------------------------------------------------------------------
def parse_type(name: str) -> tuple[str, bool]:
    """'q4_0' -> ('q4_0', False); 'q4_0-pure' -> ('q4_0', True); an unknown name lists the valid ones."""
    base, pure = (name[: -len(PURE)], True) if name.endswith(PURE) else (name, False)
    if base not in TYPES or (pure and base not in QUANT_FTYPE):
        valid = [*TYPES, *(t + PURE for t in QUANT_FTYPE)]
        raise ValueError(f"unknown llama.cpp type {name!r}; valid: {', '.join(valid)}")
    return base, pure


def plan_types(types: list[str], pure: bool) -> list[str]:
    """The types to run: those asked for, each quantized one followed by its --pure twin when `pure`."""
    out = []
    for t in types:
        base, is_pure = parse_type(t)
        out.append(t)
        if pure and not is_pure and base in QUANT_FTYPE:
            out.append(base + PURE)
    return list(dict.fromkeys(out))


# --- the build --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Tools:
    version: str
    src: Path
    bench: Path
    quantize: Path


def home(work: Path, version: str = SDIST_VERSION) -> Path:
    return Path(work) / "llamacpp" / version


def build_key(version: str = SDIST_VERSION) -> dict:
    """What a build depends on besides the source: GGML_NATIVE compiles for this CPU. The CPU is named twice: by
    its model name, and by what the compiler makes of `-march=native` here (`native_target`). A model name alone is
    not enough: guests often report a generic one ("Intel(R) Xeon(R) Processor") over different instruction sets,
    and a CPUID mask (tests/avx2only/run.sh) leaves /proc/cpuinfo as it was while the compiler sees AVX2 only."""
    from .measure import _cpu_model

    return {"version": version, "cmake_flags": cmake_flags(), "targets": list(TARGETS),
            "cpu": _cpu_model(), "machine": platform.machine(), "native": native_target()}


def native_target(cc: str | None = None) -> list[str]:
    """The target flags the C++ compiler derives from `-march=native` on this machine, as its driver passes them to
    the compiler proper (`-###`): GCC's -march= / -m[no-]FEATURE, Clang's -target-cpu / -target-feature. Empty
    when there is no compiler or its driver says nothing that reads as such (the key then rests on the CPU's name)."""
    cc = cc or compiler()
    if cc is None:
        return []
    try:
        r = subprocess.run([cc, "-march=native", "-###", "-E", "-x", "c++", os.devnull], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_native_target(r.stderr)


def parse_native_target(driver_output: str) -> list[str]:
    """`native_target`'s reading of a compiler driver's `-###` output: the compiler proper's line (GCC's cc1plus /
    cc1, Clang's -cc1), its tokens that name the target, in order."""
    for line in driver_output.splitlines():
        tokens = [t.strip('"') for t in line.split()]
        if not tokens or not any(t.endswith(("cc1plus", "cc1")) or t == "-cc1" for t in tokens):
            continue
        out, take = [], False
        for t in tokens:
            if take:
                out.append(t)
                take = False
            elif t in ("-target-cpu", "-target-feature"):
                out.append(t)
                take = True
            elif t.startswith("-m"):  # -march=, -mtune=, -mFEATURE, -mno-FEATURE
                out.append(t)
        return out
    return []


def cmake_flags(machine: str | None = None) -> list[str]:
    """CMAKE_FLAGS, and on x86 the AMX kernels compiled out (NO_AMX)."""
    if (machine or platform.machine()).lower() in X86:
        return [*CMAKE_FLAGS, f"-DCMAKE_C_FLAGS={NO_AMX}", f"-DCMAKE_CXX_FLAGS={NO_AMX}"]
    return list(CMAKE_FLAGS)


def tool_paths(work: Path, version: str = SDIST_VERSION) -> Tools:
    h = home(work, version)
    return Tools(version, h / "src", h / "build" / "bin" / "llama-bench", h / "build" / "bin" / "llama-quantize")


def cached_build(work: Path, version: str = SDIST_VERSION, key: dict | None = None) -> Tools | None:
    """The built tools when build.json matches `key` (default: this machine's) and both binaries exist."""
    t = tool_paths(work, version)
    stamp = home(work, version) / "build.json"
    if not (stamp.is_file() and t.bench.is_file() and t.quantize.is_file()):
        return None
    try:
        recorded = json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None
    return t if recorded == (key or build_key(version)) else None


def compiler() -> str | None:
    return next((shutil.which(c) for c in COMPILERS if shutil.which(c)), None)


def configure_cmd(src: Path, build: Path) -> list[str]:
    return ["cmake", "-S", str(src), "-B", str(build), *cmake_flags()]


def build_cmd(build: Path, jobs: int) -> list[str]:
    return ["cmake", "--build", str(build), "--config", "Release", "--target", *TARGETS, "-j", str(jobs)]


def sdist_path(work: Path, version: str = SDIST_VERSION) -> Path:
    return Path(work) / "llamacpp" / "sdist" / f"{SDIST_PACKAGE.replace('-', '_')}-{version}.tar.gz"


def download_cmd(dest: Path, version: str = SDIST_VERSION) -> list[str]:
    return [sys.executable, "-m", "pip", "download", f"{SDIST_PACKAGE}=={version}", "--no-deps",
            "--no-binary", ":all:", "-d", str(dest)]


def missing(work: Path | None = None, version: str = SDIST_VERSION) -> str | None:
    """None when the llama.cpp peer can run here, else one line saying what is missing and how to get it."""
    gone = [pkg for mod, pkg in CONVERTER_NEEDS.items() if importlib.util.find_spec(mod) is None]
    if gone:
        return (f"peer llamacpp skipped: the GGUF converter needs {', '.join(gone)} "
                "(pip install 'unifork-rt[bench]')")
    if work is not None and cached_build(work, version) is not None:
        return None
    lack = [what for what, ok in (("cmake", shutil.which("cmake")), ("a C++ compiler (c++, g++ or clang++)",
                                                                     compiler())) if not ok]
    if lack:
        return (f"peer llamacpp skipped: building llama.cpp needs {' and '.join(lack)} on PATH "
                "(apt-get install cmake g++)")
    if (work is None or not sdist_path(work, version).is_file()) and importlib.util.find_spec("pip") is None:
        return (f"peer llamacpp skipped: no {SDIST_PACKAGE} {version} sdist in WORK/llamacpp/sdist and no pip to "
                "download it: put the .tar.gz there")
    return None


def _run_logged(cmd: list[str], log, cwd: Path | None = None) -> None:
    log.write(f"$ {' '.join(cmd)}\n")
    log.flush()
    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=cwd)
    if proc.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed (status {proc.returncode}): see {log.name}")


def extract_tree(sdist: Path, dest: Path) -> Path:
    """The sdist's vendor/llama.cpp as `dest` (written beside it, then renamed: all or nothing)."""
    prefix = None
    tmp = dest.with_name(dest.name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    with tarfile.open(sdist) as tar:
        members = []
        for m in tar.getmembers():
            parts = m.name.split("/")
            if len(parts) > 3 and parts[1:3] == ["vendor", "llama.cpp"]:
                prefix = "/".join(parts[:3]) + "/"
                if parts[3] == ".git":  # a submodule pointer into the sdist's own .git
                    continue
                m.name = m.name[len(prefix):]
                members.append(m)
        if not members:
            raise RuntimeError(f"{sdist} has no vendor/llama.cpp: not a {SDIST_PACKAGE} sdist")
        tar.extractall(tmp, members=members, filter="data")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    return dest


def ensure_built(work: Path, jobs: int = 2, version: str = SDIST_VERSION, echo=print) -> Tools:
    """llama-bench and llama-quantize for this machine, built on first use (4.5 min on 2 Xeon cores, ~20 on slower)."""
    key = build_key(version)
    done = cached_build(work, version, key)
    if done:
        return done
    if shutil.which("cmake") is None or compiler() is None:
        raise RuntimeError("building llama.cpp needs cmake and a C++ compiler on PATH (apt-get install cmake g++)")
    h = home(work, version)
    h.mkdir(parents=True, exist_ok=True)
    if (h / "build.json").is_file():  # built with other flags: CMake's cache would keep the old ones
        (h / "build.json").unlink()
        shutil.rmtree(h / "build", ignore_errors=True)
    t = tool_paths(work, version)
    log_path = h / "build.log"
    echo(f"building llama.cpp ({SDIST_PACKAGE} {version}) into {h}: 5-20 minutes on 2 cores; log {log_path}")
    with open(log_path, "w") as log:
        sdist = sdist_path(work, version)
        if not sdist.is_file():
            sdist.parent.mkdir(parents=True, exist_ok=True)
            _run_logged(download_cmd(sdist.parent, version), log)
            if not sdist.is_file():
                raise RuntimeError(f"pip download did not write {sdist}: see {log_path}")
        if not (t.src / "CMakeLists.txt").is_file():
            extract_tree(sdist, t.src)
        _run_logged(configure_cmd(t.src, h / "build"), log)
        _run_logged(build_cmd(h / "build", jobs), log)
    if not (t.bench.is_file() and t.quantize.is_file()):
        raise RuntimeError(f"the llama.cpp build wrote no {t.bench.name} / {t.quantize.name}: see {log_path}")
    from unifork_rt.io import atomic_write_text

    atomic_write_text(h / "build.json", json.dumps(key, indent=1) + "\n")
    return t


# --- the GGUF files ---------------------------------------------------------------------------
def with_pretype_fallback(get_pre, fallback: str = PRETYPE_FALLBACK):
    """Wrap a converter's get_vocab_base_pre(self, tokenizer): known hashes as before, unknown -> fallback."""

    @functools.wraps(get_pre)
    def wrapped(self, tokenizer):
        try:
            return get_pre(self, tokenizer)
        except NotImplementedError:
            logger.warning("unknown BPE pre-tokenizer hash: written as %r (unifork-rt bench)", fallback)
            return fallback

    return wrapped


def patch_pretype(modules, fallback: str = PRETYPE_FALLBACK) -> int:
    """Wrap every class in `modules` that defines get_vocab_base_pre; returns how many were wrapped."""
    n = 0
    for mod in modules:
        for obj in list(vars(mod).values()):
            if isinstance(obj, type) and "get_vocab_base_pre" in vars(obj):
                obj.get_vocab_base_pre = with_pretype_fallback(vars(obj)["get_vocab_base_pre"], fallback)
                n += 1
    return n


def _convert_main(src: str, hf_folder: str, out: str) -> None:
    """convert_hf_to_gguf.py from `src` (with its own gguf-py), f32, the pre-type fallback in place."""
    sys.path[:0] = [src, str(Path(src) / "gguf-py")]
    import convert_hf_to_gguf as conv

    modules = [conv]
    if importlib.util.find_spec("conversion") is not None:  # the converter split into a package in 2026
        import conversion.base

        modules.append(conversion.base)
    if patch_pretype(modules) == 0:
        raise SystemExit(f"{src}: no get_vocab_base_pre in the converter: this llama.cpp changed how it "
                         "names tokenizers; update benchmarks/llamacpp.py's patch_pretype")
    sys.argv = ["convert_hf_to_gguf.py", hf_folder, "--outfile", out, "--outtype", "f32"]
    conv.main()


def _types_main(src: str, path: str) -> None:
    """Print {ggml type: tensor count} of a GGUF file as JSON (gguf-py from `src`)."""
    sys.path[:0] = [str(Path(src) / "gguf-py")]
    from gguf import GGUFReader

    counts: dict[str, int] = {}
    for t in GGUFReader(path).tensors:
        counts[t.tensor_type.name.lower()] = counts.get(t.tensor_type.name.lower(), 0) + 1
    print(json.dumps(counts))


def gguf_path(work: Path, name: str, version: str = SDIST_VERSION) -> Path:
    return Path(work) / "peer-llamacpp" / version / f"peer-qwen2-{name}.gguf"


def quantize_cmd(tools: Tools, src: Path, dst: Path, name: str, threads: int) -> list[str]:
    base, pure = parse_type(name)
    return [str(tools.quantize), *(["--pure"] if pure else []), str(src), str(dst), QUANT_FTYPE[base], str(threads)]


def _self(*args: str) -> list[str]:
    return [sys.executable, "-m", "unifork_rt.benchmarks.llamacpp", *args]


def ensure_gguf(work: Path, tools: Tools, hf_folder: Path, name: str, threads: int) -> Path:
    """WORK/peer-llamacpp/V/peer-qwen2-NAME.gguf of the peer model, made on first use.

    A folder's gguf.json names the peer model it was made from (its built.json); another model
    empties the folder first."""
    folder = gguf_path(work, "x", tools.version).parent
    source = json.loads((Path(hf_folder) / "built.json").read_text())
    marker = folder / "gguf.json"
    if not (marker.is_file() and json.loads(marker.read_text()) == source):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        marker.write_text(json.dumps(source) + "\n")
    out = gguf_path(work, name, tools.version)
    if out.is_file():
        return out
    partial = out.with_name(out.name + ".partial")
    if name == "f32":
        cmd = _self("convert", str(tools.src), str(hf_folder), str(partial))
    else:
        cmd = quantize_cmd(tools, ensure_gguf(work, tools, hf_folder, "f32", threads), partial, name, threads)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not partial.is_file():
        raise RuntimeError(f"{' '.join(cmd)} failed (status {proc.returncode}):\n{(proc.stderr or proc.stdout)[-2000:]}")
    partial.rename(out)
    return out


def tensor_types(tools: Tools, path: Path) -> dict[str, int]:
    proc = subprocess.run(_self("types", str(tools.src), str(path)), capture_output=True, text=True)
    return json.loads(proc.stdout) if proc.returncode == 0 else {}


# --- llama-bench ------------------------------------------------------------------------------
def decode_cmd(tools: Tools, model: Path, threads: int, repeats: int, depth: int,
               tokens: int = DECODE_TOKENS) -> list[str]:
    return [str(tools.bench), "-m", str(model), "-p", "0", "-n", str(tokens), "-d", str(depth), "-t", str(threads),
            "-r", str(repeats), "-o", "json"]


def prefill_cmd(tools: Tools, model: Path, threads: int, repeats: int, depth: int) -> list[str]:
    return [str(tools.bench), "-m", str(model), "-p", str(depth), "-n", "0", "-t", str(threads),
            "-r", str(repeats), "-o", "json"]


def parse_bench_json(text: str) -> list[dict]:
    """llama-bench -o json: a list of tests, each with n_prompt, n_gen, n_depth and samples_ns (one per
    repetition). Returns per test: what it measured and seconds per sample (for a decode test, per token)."""
    start = text.find("[")
    if start < 0:
        raise ValueError(f"no JSON list in llama-bench's output: {text[:200]!r}")
    tests = json.loads(text[start:])
    out = []
    for t in tests:
        samples = t.get("samples_ns")
        if not samples:
            raise ValueError(f"a llama-bench test without samples_ns: {json.dumps(t)[:200]}")
        if t["n_prompt"] > 0 and t["n_gen"] == 0:
            kind, per = "prefill", 1
        elif t["n_gen"] > 0 and t["n_prompt"] == 0:
            kind, per = "decode", t["n_gen"]
        else:
            raise ValueError(f"llama-bench test pp{t['n_prompt']}+tg{t['n_gen']}: run prefill and decode apart")
        out.append({"kind": kind, "n_prompt": t["n_prompt"], "n_gen": t["n_gen"], "n_depth": t.get("n_depth", 0),
                    "seconds": [s / 1e9 / per for s in samples], "n_threads": t.get("n_threads"),
                    "type_k": t.get("type_k"), "type_v": t.get("type_v"), "flash_attn": t.get("flash_attn"),
                    "model_size": t.get("model_size"), "model_type": t.get("model_type"),
                    "build": f"{t.get('build_commit', 'unknown')} ({t.get('build_number', 0)})", "repack": t.get("repack"),
                    "cpu_info": t.get("cpu_info")})
    return out


def run_with_rusage(cmd: list[str]) -> tuple[str, float]:
    """Run `cmd` from a small launcher process; returns (stdout, the command's peak RSS in MB).

    Linux carries a parent's peak RSS into a forked child's ru_maxrss across exec, so the worker
    (torch, a multi-GB conversion) must not be the parent: the launcher is a bare Python."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".json") as f:
        proc = run_child(_self("rusage", f.name, "--", *cmd))
        info = json.loads(Path(f.name).read_text() or "{}")
    if proc.returncode != 0 or info.get("returncode") != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (status {info.get('returncode', proc.returncode)}):\n"
                           f"{proc.stderr[-2000:]}")
    return proc.stdout, info["maxrss_kb"] / 1024


def _rusage_main(out: str, cmd: list[str]) -> int:
    proc = subprocess.Popen(cmd)
    _, status, ru = os.wait4(proc.pid, 0)
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    Path(out).write_text(json.dumps({"returncode": code, "maxrss_kb": ru.ru_maxrss}))
    return 0


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


_FLASH = {-1: "auto", 0: "off", 1: "on"}


def run_peer(work: Path, hf_folder: Path, name: str, threads: int, repeats: int, depth: int,
             echo=print) -> dict:
    """Decode and prefill of one GGUF type with llama-bench; the unit's result for the report."""
    from .measure import Stats

    base, pure = parse_type(name)
    tools = ensure_built(work, echo=echo)
    model = ensure_gguf(work, tools, hf_folder, name, threads)
    load_start = load_average()
    cmds = {"decode": decode_cmd(tools, model, threads, repeats, depth),
            "prefill": prefill_cmd(tools, model, threads, repeats, depth)}
    tests, rss = {}, {}
    for kind, cmd in cmds.items():
        stdout, rss[kind] = run_with_rusage(cmd)
        got = [t for t in parse_bench_json(stdout) if t["kind"] == kind]
        if len(got) != 1:
            raise RuntimeError(f"llama-bench gave {len(got)} {kind} tests for {' '.join(cmd)}")
        tests[kind] = got[0]
    load_end = load_average()
    dec, pre = tests["decode"], tests["prefill"]
    per_token = Stats.of(dec["seconds"], 1).to_dict()
    return {
        "precision": name, "roofline_precision": ROOFLINE_PRECISION[base], "pure": pure,
        "ttft": Stats.of(pre["seconds"], 1).to_dict(), "per_token": per_token,
        "tokens_per_s": 1.0 / per_token["median"], "prefill_tokens": pre["n_prompt"],
        "decode_tokens": dec["n_gen"], "decode_depth": dec["n_depth"],
        "prompt_len": depth, "new_tokens": dec["n_gen"],
        "peak_rss_mb": max(rss.values()), "peak_rss_mb_by_test": rss,
        "gguf": {"path": str(model), "bytes": model.stat().st_size, "tensor_types": tensor_types(tools, model),
                 "model_size": dec.get("model_size")},
        "threads": threads, "commands": {k: " ".join(v) for k, v in cmds.items()},
        "load_average_start": load_start, "load_average_end": load_end,
        "engine": (f"llama.cpp from {SDIST_PACKAGE} {tools.version}"
                   + ("" if dec["build"].startswith("unknown") else f" (build {dec['build']})")
                   + f", llama-bench, {threads} threads, KV cache {dec['type_k']}/{dec['type_v']}, "
                   f"flash attention {_FLASH.get(dec['flash_attn'], dec['flash_attn'])}, repack {dec['repack']}"),
    }


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO)
    if argv[:1] == ["convert"] and len(argv) == 4:
        _convert_main(*argv[1:])
        return 0
    if argv[:1] == ["types"] and len(argv) == 3:
        _types_main(*argv[1:])
        return 0
    if argv[:1] == ["rusage"] and len(argv) > 3 and argv[2] == "--":
        return _rusage_main(argv[1], argv[3:])
    print("usage: python -m unifork_rt.benchmarks.llamacpp convert SRC HF_FOLDER OUT.gguf | types SRC FILE.gguf "
          "| rusage OUT.json -- CMD ...", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
