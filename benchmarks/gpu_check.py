"""One prepared GPU run: everything the GPU code paths need checked, in at most ~10 minutes.

    python3 benchmarks/gpu_check.py --out gpu_check          # on a fresh CUDA machine (A100/H100/H200)
    python3 benchmarks/gpu_check.py --dry-run --out DIR      # anywhere: every step up to the first GPU call

Steps, each in its own process under `timeout` (a slow step cannot eat the rest: each gets
min(its cap, what is left of --budget)), each writing OUT/NN-NAME.log; OUT/steps.json records
status, seconds and the command of every step, OUT/summary.md the same as a table:

    env        nvidia-smi, python, pip freeze                                    (no GPU needed)
    install    pip install -e '.[gpu,tensorrt,train,dev]' (onnxruntime CPU removed first)
    export     shapes fp16 (the shipped checkpoint) and paper fp16 (random weights, the bench's model)
    build      TensorRT engines: shapes fp32 strict (--no-tf32, for parity), paper fp16
    gpu-tests  pytest -m gpu (tests/test_engines_gpu.py: per-graph parity, KV writes, CUDA graphs)
    parity     ort-cuda, ort-tensorrt, tensorrt vs ort-cpu on the shapes bundle: greedy captions,
               a seeded guided draw, logits max |diff|; timings of both tasks      (parity.json)
    bench      unifork-rt bench --quick --preset shapes --preset paper --backends ort-cuda:fp16,ort-tensorrt:fp16
               (the native tensorrt backend is timed by the parity step)

--dry-run runs env, checks every later command line (the CLI options exist, the gpu tests are
collected, the op checker passes the shipped bundle), runs the parity worker with the CPU
backend against itself, and stops before the first call that needs a GPU. CI runs it
(tests/test_gpu_check.py). Exit status: 0 when every step passed (or, dry, was checked).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHAPES_CKPT = ROOT / "unifork_rt" / "assets" / "shapes" / "checkpoint"
SHAPES = ROOT / "unifork_rt" / "assets" / "shapes"
GPU_BACKENDS = ("ort-cuda", "ort-tensorrt", "tensorrt")


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "unifork_rt.cli", *args]


def plan(out: Path) -> list[dict]:
    """The steps: name, cap in seconds, command, and whether it needs the GPU."""
    work, bundles, engines = out / "work", out / "bundles", out / "engines"
    paper = work / "paper" / "bundle-fp16"
    export_paper = ("from pathlib import Path; from unifork_rt.benchmarks.models import bundle_folder; "
                    f"print(bundle_folder('paper', 'fp16', Path({str(work)!r})))")
    return [
        {"name": "env", "cap": 30, "gpu": False, "cmd": ["bash", "-c", "nvidia-smi || true; " + sys.executable
                                                         + " -V; " + sys.executable + " -m pip freeze"]},
        {"name": "install", "cap": 300, "gpu": True, "cmd": ["bash", "-c",
                                                             f"{sys.executable} -m pip uninstall -y -q onnxruntime; "
                                                             f"{sys.executable} -m pip install -q -e "
                                                             f"'{ROOT}[gpu,tensorrt,train,dev]'"]},
        {"name": "export-shapes", "cap": 120, "gpu": False,
         "cmd": cli("export", str(SHAPES_CKPT), "--out", str(bundles / "shapes-fp16"), "--precision", "fp16",
                    "--quiet")},
        {"name": "export-paper", "cap": 240, "gpu": True, "cmd": [sys.executable, "-c", export_paper]},
        {"name": "build-shapes", "cap": 180, "gpu": True,
         "cmd": cli("build", str(SHAPES), "--out", str(engines / "shapes-fp32"), "--no-tf32", "--max-batch", "8")},
        {"name": "build-paper", "cap": 300, "gpu": True,
         "cmd": cli("build", str(paper), "--fp16", "--out", str(engines / "paper-fp16"), "--max-batch", "2")},
        {"name": "gpu-tests", "cap": 300, "gpu": True,
         "cmd": [sys.executable, "-m", "pytest", "-q", "-ra", "-m", "gpu", str(ROOT / "tests" / "test_engines_gpu.py"),
                 f"--junitxml={out / 'gpu-tests.xml'}"]},
        {"name": "parity", "cap": 240, "gpu": True,
         "cmd": [sys.executable, __file__, "--parity", "--out", str(out), "--engines", str(engines / "shapes-fp32"),
                 "--backends", ",".join(("ort-cpu",) + GPU_BACKENDS)]},
        {"name": "bench", "cap": 300, "gpu": True,
         "cmd": cli("bench", "--preset", "shapes", "--preset", "paper", "--task", "all", "--backends",
                    "ort-cuda:fp16,ort-tensorrt:fp16", "--peers", "none", "--quick", "--no-profile",
                    "--work", str(work), "--out", str(out / "bench"), "--timeout", "240")},
    ]


def dry_checks(out: Path) -> list[dict]:
    """What --dry-run runs instead of the GPU steps: each later command line is valid here."""
    steps = plan(out)
    checks = [
        {"name": "check-build-cli", "cap": 60, "cmd": cli("build", str(SHAPES), "--check-only")},
        {"name": "check-build-options", "cap": 60, "cmd": [sys.executable, __file__, "--check-options"]},
        {"name": "check-gpu-tests", "cap": 120,
         "cmd": [sys.executable, "-m", "pytest", "-q", "--collect-only", "-m", "gpu",
                 str(ROOT / "tests" / "test_engines_gpu.py")]},
        {"name": "check-parity", "cap": 240,
         "cmd": [sys.executable, __file__, "--parity", "--out", str(out), "--backends", "ort-cpu,ort-cpu",
                 "--images", "2"]},
        {"name": "check-bench-cli", "cap": 60, "cmd": cli("bench", "--help")},
    ]
    return [s for s in steps if not s["gpu"] and s["name"] != "export-shapes"] + [
        {**c, "gpu": False} for c in checks]


def run_steps(steps: list[dict], out: Path, budget: float, log=print) -> list[dict]:
    deadline = time.monotonic() + budget
    results = []
    for i, step in enumerate(steps):
        left = deadline - time.monotonic()
        logfile = out / f"{i:02d}-{step['name']}.log"
        if left < 10:
            results.append({"name": step["name"], "status": "skipped (budget spent)", "seconds": 0.0})
            log(f"{step['name']}: skipped, the budget is spent")
            continue
        cap = min(step["cap"], left)
        t = time.monotonic()
        with open(logfile, "w") as f:
            f.write("$ " + " ".join(step["cmd"]) + "\n")
            f.flush()
            try:
                rc = subprocess.run(["timeout", "--kill-after=10", str(int(cap)), *step["cmd"]], stdout=f,
                                    stderr=subprocess.STDOUT, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}
                                    ).returncode
            except OSError as e:
                f.write(f"could not start: {e}\n")
                rc = 127
        secs = time.monotonic() - t
        status = "ok" if rc == 0 else ("timed out" if rc in (124, 137) else f"failed (exit {rc})")
        results.append({"name": step["name"], "status": status, "seconds": round(secs, 1), "cap": int(cap),
                        "log": logfile.name, "cmd": step["cmd"]})
        log(f"{step['name']}: {status} in {secs:.0f} s (cap {cap:.0f} s, log {logfile.name})")
    return results


def write_summary(results: list[dict], out: Path, dry: bool) -> None:
    (out / "steps.json").write_text(json.dumps({"dry_run": dry, "steps": results}, indent=1) + "\n")
    lines = [f"# GPU check{' (dry run)' if dry else ''}", "", "| step | status | seconds | log |", "|---|---|---|---|"]
    lines += [f"| {r['name']} | {r['status']} | {r['seconds']} | {r.get('log', '')} |" for r in results]
    (out / "summary.md").write_text("\n".join(lines) + "\n")


# --- workers, each run in its own time-boxed process ------------------------------------------------
def check_options() -> None:
    """Every option the GPU steps pass exists in the CLI (a typo would only show on the GPU)."""
    from unifork_rt.cli import main

    for step in plan(Path("/nonexistent")):
        cmd = step["cmd"]
        if cmd[1:3] != ["-m", "unifork_rt.cli"]:
            continue
        command = main.get_command(None, cmd[3])
        known = {o for p in command.params for o in getattr(p, "opts", []) + getattr(p, "secondary_opts", [])}
        used = {a for a in cmd[4:] if a.startswith("--")}
        unknown = used - known
        if unknown:
            raise SystemExit(f"{step['name']}: unknown option(s) {sorted(unknown)} for `unifork-rt {cmd[3]}`")
        print(f"{step['name']}: options ok ({' '.join(sorted(used))})")


def parity(out: Path, backends: list[str], engines: str | None, images: int) -> int:
    """Captions, a guided draw and timings per backend against the first one (the CPU reference)."""
    import numpy as np

    from unifork_rt.runtime.pipeline import UniForkRuntime

    rng = np.random.default_rng(0)
    pix = [rng.uniform(-1, 1, (3, 64, 64)).astype(np.float32) for _ in range(images)]
    ref, report, rc = None, {}, 0
    for i, name in enumerate(backends):
        opts = {"engines_dir": engines} if name == "tensorrt" and engines else {}
        entry = report.setdefault(name if name not in report else f"{name}#{i}", {})
        try:
            with UniForkRuntime(SHAPES, backend=name, **opts) as rt:
                entry["providers"] = rt.providers
                rt.caption(pix[:1], max_new_tokens=4)  # warm-up (ORT TensorRT builds its engines here)
                t = time.perf_counter()
                caps = rt.caption(pix, max_new_tokens=16)
                entry["caption_s"] = round(time.perf_counter() - t, 4)
                t = time.perf_counter()
                codes = rt.draw_codes("a red circle left of a blue square", n=2, seed=0)
                entry["draw_s"] = round(time.perf_counter() - t, 4)
                emb = rt.backend.run("connector", {"codes": codes[:1, :4]})["embeds"]
                h = rt.backend.run("trunk", {"x": emb, "pos": np.array(0), "start": np.zeros(1, np.int64)},
                                   rt.backend.new_cache("trunk", 1))["h"]
        except Exception as e:  # noqa: BLE001  (recorded, the other backends still run)
            entry["error"] = f"{type(e).__name__}: {e}"
            rc = 1
            print(f"{name}: {entry['error']}")
            continue
        entry.update(captions=caps, codes=codes.tolist())
        if ref is None:
            ref = (caps, codes, h)
        else:
            entry["captions_equal"] = caps == ref[0]
            entry["codes_equal"] = bool(np.array_equal(codes, ref[1]))
            entry["trunk_h_max_diff"] = float(np.abs(h.astype(np.float64) - ref[2]).max())
        print(f"{name}: {json.dumps({k: v for k, v in entry.items() if k not in ('captions', 'codes')})}")
    (out / "parity.json").write_text(json.dumps(report, indent=1) + "\n")
    return rc


def _fix_path() -> None:
    """Run as a script, benchmarks/ is sys.path[0], where profile.py would shadow the standard
    library's `profile` module: take the package root instead."""
    here = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != here]
    sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    if __name__ == "__main__":
        _fix_path()
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("gpu_check"), help="Folder for every result (default gpu_check).")
    ap.add_argument("--dry-run", action="store_true", help="Check everything up to the first GPU call (runs on CPU).")
    ap.add_argument("--no-install", action="store_true", help="Skip the pip install step (a prepared environment).")
    ap.add_argument("--budget", type=float, default=600.0, help="Seconds for all steps together (default 600).")
    ap.add_argument("--parity", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--check-options", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--backends", default="ort-cpu", help=argparse.SUPPRESS)
    ap.add_argument("--engines", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--images", type=int, default=8, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.check_options:
        check_options()
        return 0
    a.out.mkdir(parents=True, exist_ok=True)
    if a.parity:
        return parity(a.out, a.backends.split(","), a.engines, a.images)
    if shutil.which("timeout") is None:
        print("error: the `timeout` command (coreutils) is needed to time-box the steps", file=sys.stderr)
        return 2
    steps = dry_checks(a.out) if a.dry_run else [s for s in plan(a.out)
                                                  if not (a.no_install and s["name"] == "install")]
    print(f"GPU check{' (dry run)' if a.dry_run else ''}: {len(steps)} steps, budget {a.budget:.0f} s, "
          f"results in {a.out}")
    results = run_steps(steps, a.out, a.budget)
    if a.dry_run:
        first = next(s for s in plan(a.out) if s["gpu"])
        print(f"dry run: stopped before `{first['name']}`, the first step that needs the GPU")
    write_summary(results, a.out, a.dry_run)
    return 0 if all(r["status"] == "ok" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
