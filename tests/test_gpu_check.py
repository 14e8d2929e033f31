"""The prepared GPU run (benchmarks/gpu_check.py): its dry run passes on a CPU-only machine, and
every step is time-boxed."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load_script():
    """benchmarks/gpu_check.py by path: putting benchmarks/ on sys.path would let its profile.py
    shadow the standard library's `profile` for the rest of the test session."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gpu_check_script", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _load_script()


@pytest.mark.slow
def test_dry_run_checks_everything_up_to_the_first_gpu_call(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry-run", "--out",
                        str(tmp_path)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "stopped before `install`, the first step that needs the GPU" in r.stdout
    steps = json.loads((tmp_path / "steps.json").read_text())
    assert steps["dry_run"] and [s["status"] for s in steps["steps"]] == ["ok"] * len(steps["steps"])
    assert {s["name"] for s in steps["steps"]} >= {"env", "check-build-cli", "check-build-options", "check-gpu-tests",
                                                   "check-parity", "check-bench-cli"}
    report = json.loads((tmp_path / "parity.json").read_text())
    second = report["ort-cpu#1"]
    assert second["captions_equal"] and second["codes_equal"] and second["trunk_h_max_diff"] == 0.0
    assert (tmp_path / "summary.md").read_text().startswith("# GPU check (dry run)")


def test_every_gpu_step_is_time_boxed_and_the_budget_holds(tmp_path):
    steps = [{"name": "slow", "cap": 2, "cmd": ["sleep", "30"]},
             {"name": "fast", "cap": 30, "cmd": ["true"]},
             {"name": "late", "cap": 30, "cmd": ["sleep", "30"]}]
    t = time.monotonic()
    results = gpu_check.run_steps(steps, tmp_path, budget=14, log=lambda m: None)
    assert time.monotonic() - t < 25
    assert [r["status"] for r in results] == ["timed out", "ok", "timed out"]
    assert results[2]["cap"] <= 12  # what was left of the budget, not its own 30 s


def test_plan_covers_the_issue_within_ten_minutes():
    names = [s["name"] for s in gpu_check.plan(Path("out"))]
    assert names == ["env", "install", "export-shapes", "export-paper", "build-shapes", "build-paper", "gpu-tests",
                     "parity", "bench"]
    parity = next(s for s in gpu_check.plan(Path("out")) if s["name"] == "parity")
    assert "ort-cuda,ort-tensorrt,tensorrt" in " ".join(parity["cmd"])
    assert '"--budget", type=float, default=600.0' in Path(gpu_check.__file__).read_text()  # 10 minutes in all
