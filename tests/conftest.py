"""Shared fixtures. Tolerances for parity tests live in one table (TOL)."""

from __future__ import annotations

import numpy as np
import pytest

# max abs difference allowed, by comparison
TOL = {
    "qwen_fp32": 1e-4,  # our understanding path vs transformers Qwen2ForCausalLM
    "onnx_fp32": 1e-4,  # each exported graph vs its PyTorch entry point
    "onnx_int8": 0.5,   # dynamic int8 graphs (micro, random weights): logits move, argmax mostly holds
}


def max_diff(a, b) -> float:
    return float(np.max(np.abs(np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64))))


def assert_close(name: str, a, b, tol: float) -> None:
    d = max_diff(a, b)
    print(f"{name}: max abs diff {d:.3e} (tol {tol:.0e})")
    assert d <= tol, f"{name}: max abs diff {d:.3e} > {tol:.0e}"


@pytest.fixture(scope="session")
def torch_mod():
    return pytest.importorskip("torch")
