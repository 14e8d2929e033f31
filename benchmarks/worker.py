"""One benchmark unit in its own process: a build, one runtime (backend x precision), or one peer.

A process per unit gives each its own peak memory (ru_maxrss), frees a multi-GB model before
the next one loads, and keeps torch out of the parent `bench` process. The parent writes a
spec JSON, runs `python -m unifork_rt.benchmarks.worker SPEC OUT`, and reads OUT: the worker is
the installed package's own module, the same code as the parent's.

A unit whose package or device is missing writes {"skipped": "<what to install>"}.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from .measure import peak_rss_mb, rss_mb

def command(spec_path: Path, out_path: Path) -> list[str]:
    return [sys.executable, "-m", "unifork_rt.benchmarks.worker", str(spec_path), str(out_path)]


def stop_on_sigterm() -> None:
    """SIGTERM (the parent's --timeout) and SIGHUP (the terminal closed) raise SystemExit here, so that the code
    under way unwinds: a peer's child process (measure.run_child, in a process group of its own, which the
    terminal's signals do not reach) is killed on the way out, not left running."""
    import signal

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    for name in ("SIGTERM", "SIGHUP"):
        sig = getattr(signal, name, None)
        if sig is not None and signal.getsignal(sig) is not signal.SIG_IGN:  # `nohup unifork-rt bench` keeps going
            signal.signal(sig, stop)


def _log(msg: str) -> None:
    print(f"  [worker] {msg}", file=sys.stderr, flush=True)


def build(spec: dict) -> dict:
    from . import models

    work = Path(spec["work"])
    t0 = time.perf_counter()
    model = models.model_folder(spec["preset"], work)
    bundles = {}
    for p in spec["precisions"]:
        _log(f"bundle {spec['preset']} {p}")
        bundles[p] = str(models.bundle_folder(spec["preset"], p, work))
    return {"model": str(model), "bundles": bundles, "seconds": time.perf_counter() - t0}


def ours(spec: dict) -> dict:
    from . import stages

    plan = stages.Plan(**{**spec["plan"], "tasks": tuple(spec["plan"]["tasks"])})
    t0 = time.perf_counter()
    if spec["backend"] == "torch-eager":
        from unifork_rt.export.torch_backend import torch_runtime_for_bundle

        rt = torch_runtime_for_bundle(spec["bundle"], spec["model"])
    else:
        from unifork_rt.runtime.pipeline import UniForkRuntime

        # as the `unifork-rt` command runs it: ort-cpu sessions share one intra-op pool (a process of its own)
        pool = {"pool": "shared"} if spec["backend"] == "ort-cpu" else {}
        rt = UniForkRuntime(spec["bundle"], backend=spec["backend"], verify=False, **pool)
    load_s = time.perf_counter() - t0
    res = {"load_s": load_s, "rss_after_load_mb": rss_mb()}  # ORT sessions are created on first use
    res.update(stages.run(rt, plan))
    res["providers"] = rt.providers  # after the run: the providers the sessions really got
    rt.close()
    if spec.get("profile") and spec["backend"] == "ort-cpu":
        from .profile import chained_step_spinning, profile_bundle

        res["profile"] = profile_bundle(spec["bundle"], runs=max(3, plan.step_repeats // 2))
        res["spinning"] = chained_step_spinning(spec["bundle"], runs=max(3, plan.step_repeats // 2))
    return res


def peer(spec: dict) -> dict:
    from . import models, peers

    work = Path(spec["work"])
    folder = models.peer_qwen_folder(work)
    args = (spec["prompt_len"], spec["new_tokens"], spec["repeats"], spec["warmup"])
    if spec["peer"] == "transformers":
        return peers.run_transformers(folder, *args)
    if spec["peer"] == "genai":
        p = spec["precision"]
        out = peers.build_genai(folder, work / f"peer-genai-{p}", p, work / "peer-genai-cache")
        from unifork_rt.export.quantize import NAMED_BLOCKS

        # genai's builder writes int4 and int8 in its blocks (NAMED_BLOCKS; ours: 128): its bytes per weight
        genai_blocks = {precision: name for name, (precision, _) in NAMED_BLOCKS.items()}
        return {**peers.run_genai(out, *args), "precision": p, "roofline_precision": genai_blocks.get(p, p)}
    if spec["peer"] == "optimum":
        return peers.run_optimum(folder, *args)
    if spec["peer"] == "llamacpp":
        from . import llamacpp

        # depth = our caption prompt; its own decode length (llamacpp.DECODE_TOKENS), repeats as ours
        return llamacpp.run_peer(work, folder, spec["precision"], spec["threads"], spec["repeats"],
                                 spec["prompt_len"], echo=_log)
    raise ValueError(f"unknown peer {spec['peer']!r}; valid: {', '.join(peers.PEERS)}")


def interleaved(spec: dict) -> dict:
    from . import interleave

    return interleave.run_unit(spec, echo=_log)


UNITS = {"build": build, "ours": ours, "peer": peer, "interleave": interleaved}


def main(spec_path: str, out_path: str) -> None:
    from unifork_rt.errors import UniforkError
    from unifork_rt.io import atomic_write_text

    stop_on_sigterm()
    spec = json.loads(Path(spec_path).read_text())
    try:
        res = UNITS[spec["unit"]](spec)
    except ImportError as e:
        res = {"skipped": f"{spec.get('backend') or spec.get('peer') or spec['unit']} skipped: {e}"}
    except UniforkError as e:  # an unavailable backend (no GPU provider, missing package) says so
        res = {"skipped": f"{spec.get('backend') or spec['unit']} skipped: {e}"}
    except Exception as e:  # recorded in the report; the run goes on with the next unit
        traceback.print_exc()
        res = {"error": f"{type(e).__name__}: {e}"}
    # a unit that runs its engine in a child process (llamacpp) reports that process's peak instead
    res["worker_peak_rss_mb" if "peak_rss_mb" in res else "peak_rss_mb"] = peak_rss_mb()
    # which build of our kernels this unit ran (runtime/qmatmul.py compiles the sources as they are on disk when a
    # session first needs them): the report warns when the units of a run did not all run the same one
    from unifork_rt.runtime.qmatmul import loaded_digests

    res["kernel_libraries"] = loaded_digests()
    atomic_write_text(Path(out_path), json.dumps(res, indent=1, default=float) + "\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
