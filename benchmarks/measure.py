"""Timing and machine facts: warm up, repeat, median and spread; peak memory; what ran where.

No torch and no onnxruntime here: the parent `bench` process imports only this, numpy and
click; every model runs in a worker process (benchmarks/worker.py).
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable


@dataclass(frozen=True)
class Stats:
    """Seconds over `n` timed repeats (after `warmup` untimed calls)."""

    median: float
    min: float
    max: float
    p10: float
    p90: float
    n: int
    warmup: int

    @property
    def spread(self) -> float:
        """(p90 - p10) / median: the relative spread of the repeats."""
        return (self.p90 - self.p10) / self.median if self.median > 0 else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "spread": self.spread}

    @classmethod
    def of(cls, samples: list[float], warmup: int) -> "Stats":
        if not samples:
            raise ValueError("no samples: repeats must be >= 1")
        s = sorted(samples)
        return cls(median=statistics.median(s), min=s[0], max=s[-1], p10=_quantile(s, 0.1),
                   p90=_quantile(s, 0.9), n=len(s), warmup=warmup)


def _quantile(sorted_samples: list[float], q: float) -> float:
    """Linear interpolation between the closest ranks (numpy's default)."""
    x = q * (len(sorted_samples) - 1)
    lo = int(x)
    hi = min(lo + 1, len(sorted_samples) - 1)
    return sorted_samples[lo] + (sorted_samples[hi] - sorted_samples[lo]) * (x - lo)


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Stats:
    """Call fn `warmup` times untimed, then `repeats` times timed with perf_counter."""
    return measure_alternating([fn], repeats, warmup)[0]


def measure_alternating(fns: list[Callable[[], object]], repeats: int, warmup: int = 1) -> list[Stats]:
    """measure() of several functions in turn: each round calls every one of FNS once (in order in even rounds,
    in reverse in odd ones, so that none always follows another), so that their medians come from the same
    minutes of a host whose memory speed moves from one minute to the next."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    samples = [[] for _ in fns]
    order = list(zip(fns, samples))
    for r in range(repeats):
        for fn, out in order if r % 2 == 0 else order[::-1]:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return [Stats.of(s, warmup) for s in samples]


def peak_rss_mb() -> float:
    """This process's peak resident memory: VmHWM of its own address space.

    Not ru_maxrss: Linux carries that across fork + exec, so a worker would report its
    parent's peak when the parent was larger."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        import resource  # POSIX only: Windows has neither /proc nor this module
    except ImportError:
        return float("nan")
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def rss_mb() -> float:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cpu_flags() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    have = set(line.split(":", 1)[1].split())
                    return [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile")
                            if f in have]
    except OSError:
        pass
    return []


def machine_info() -> dict:
    """What the figures were measured on: CPU, cores, memory, load, and the package versions."""
    import importlib.metadata as md

    info = {
        "hostname": platform.node(), "platform": platform.platform(), "python": platform.python_version(),
        "cpu": _cpu_model(), "cpu_flags": _cpu_flags(), "cores": os.cpu_count(),
        "load_average_1m": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    try:
        with open("/proc/meminfo") as f:
            mem = {line.split(":")[0]: int(line.split()[1]) for line in f if line.split(":")[0] in
                   ("MemTotal", "MemAvailable")}
        info["mem_total_gb"] = round(mem["MemTotal"] / 2**20, 1)
        info["mem_available_gb"] = round(mem["MemAvailable"] / 2**20, 1)
    except (OSError, KeyError, ValueError):
        pass
    versions = {}
    for pkg in ("unifork-rt", "numpy", "onnxruntime", "onnxruntime-gpu", "onnxruntime-genai", "torch",
                "transformers", "optimum", "optimum-onnx"):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            continue
    info["versions"] = versions
    info["matmulnbits_kernel"] = _matmulnbits_kernel()
    return info


def _matmulnbits_kernel() -> str:
    """Which kernel ort-cpu sessions run MatMulNBits (int4 / int8) and the weight TransposeMatMuls of fp32
    `--graphs ort` bundles on: unifork-rt's own (runtime/qmatmul.py, with the ISA it takes here) or ONNX
    Runtime's."""
    import ctypes

    from unifork_rt.runtime.qmatmul import library_for_sessions

    try:
        lib = library_for_sessions()
    except Exception as e:  # noqa: BLE001 - UNIFORK_RT_QMATMUL=1 without a library: say so in the report
        return f"none ({e})"
    if lib is None:
        return "onnxruntime (MLAS)"
    from unifork_rt.runtime.qmatmul import float_kernel

    isa = {1: "avx2", 2: "avx512-vnni"}.get(ctypes.CDLL(str(lib)).uk_isa(), "none: onnxruntime (MLAS)")
    fp32 = "unifork-rt" if float_kernel(lib) else "onnxruntime (MLAS)"
    return f"unifork-rt qmatmul ({isa}); fp32 ort bundles: {fp32}"


def cpu_busy_percent(seconds: float = 1.0) -> float | None:
    """The share of all CPUs busy over the next `seconds` (psutil; None without it). Unlike the load
    average, which trails by minutes, it says whether the machine is idle now."""
    try:
        import psutil
    except ImportError:
        return None
    return float(psutil.cpu_percent(interval=seconds))


def busy_processes(min_cpu_percent: float = 20.0) -> list[dict]:
    """Other processes using the CPU right now (the machine is shared): name, pid, cpu %.

    Needs psutil (the `bench` extra); without it the list is empty and says so in the JSON."""
    try:
        import psutil
    except ImportError:
        return [{"note": "psutil not installed: other load not recorded"}]
    procs = list(psutil.process_iter(["pid", "name", "cmdline"]))
    for p in procs:
        try:
            p.cpu_percent(None)
        except psutil.Error:
            continue
    time.sleep(0.5)
    out = []
    me = os.getpid()
    for p in procs:
        try:
            cpu = p.cpu_percent(None)
        except psutil.Error:
            continue
        if cpu >= min_cpu_percent and p.pid != me:
            cmd = " ".join(p.info.get("cmdline") or [])[:120] or p.info.get("name")
            out.append({"pid": p.pid, "cpu_percent": round(cpu), "cmd": cmd})
    return out


# A peer's timing in a child process (llama-bench, onnxruntime-genai) that takes longer than this is taken as hung:
# a healthy one takes seconds to a few minutes, even at fp32 on a slow 2-core machine.
CHILD_TIMEOUT_S = 1800.0


def run_child(cmd: list[str], timeout: float = CHILD_TIMEOUT_S):
    """subprocess.run(CMD) with stdout and stderr captured as text, in a process group of its own: past TIMEOUT
    seconds the whole group (the command and anything it started) is killed and RuntimeError says so; so is it when
    this process is interrupted (KeyboardInterrupt, or the SystemExit of worker.stop_on_sigterm). A group of its
    own also keeps the terminal's signals from the child: a worker killed outright (SIGKILL, the OOM killer) leaves
    it running. Where there are no process groups (Windows) only the command itself is killed."""
    import signal
    import subprocess

    group = hasattr(os, "killpg")  # POSIX: the child and what it starts in a group of their own
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=group)

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL) if group else proc.kill()
        except ProcessLookupError:
            pass

    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill()
        proc.communicate()
        raise RuntimeError(f"{' '.join(cmd)} did not finish in {timeout:g} s: killed (is the machine loaded, or the "
                           "command hung?)") from None
    except BaseException:  # Ctrl-C or the worker's SIGTERM / SIGHUP: no peer left spinning on the cores
        kill()
        proc.wait()
        raise
    kill()  # the command is done; anything it left running in its group goes with it
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
