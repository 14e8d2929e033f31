"""Caption decode step (trunk + und_branch, batch 1, T = 1, position 300) and a 297-row prefill (trunk +
und_branch, positions 0-296) of BUNDLE through OrtBackend, 2 threads: medians over ROUNDS after warm-up.
Run it under PYTHONPATH of two checkouts, one process after the other, to compare kernel libraries.

    python step_prefill.py runs/bench-avx2/paper/bundle-int4-ort 20
"""
import statistics
import sys
import time

import numpy as np

from unifork_rt.runtime import qmatmul
from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend

bundle_dir, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 20
be = OrtBackend(load_bundle(bundle_dir, verify=False), threads=2).load()
H = be.bundle.config.text.hidden_size
rng = np.random.default_rng(0)
start = np.zeros(1, np.int64)


def prefill():
    kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
    x = (rng.standard_normal((1, 297, H)) * 0.02).astype(np.float32)
    t0 = time.perf_counter()
    h = be.run("trunk", {"x": x, "pos": np.array(0, np.int64), "start": start}, kt)["h"]
    be.run("und_branch", {"h": h, "pos": np.array(0, np.int64), "start": start}, ku)
    return time.perf_counter() - t0, kt, ku


def step(kt, ku):
    x = (rng.standard_normal((1, 1, H)) * 0.02).astype(np.float32)
    t0 = time.perf_counter()
    h = be.run("trunk", {"x": x, "pos": np.array(300, np.int64), "start": start}, kt)["h"]
    be.run("und_branch", {"h": h, "pos": np.array(300, np.int64), "start": start}, ku)
    return time.perf_counter() - t0


pre, steps = [], []
for r in range(rounds + 2):
    t, kt, ku = prefill()
    s = [step(kt, ku) for _ in range(5)]
    if r >= 2:
        pre.append(t)
        steps += s
print(f"{qmatmul.source_digest()[:10]} prefill(297) median {statistics.median(pre) * 1e3:.1f} ms min {min(pre) * 1e3:.1f}; "
      f"decode step median {statistics.median(steps) * 1e3:.2f} ms min {min(steps) * 1e3:.2f} (n={len(steps)})")
