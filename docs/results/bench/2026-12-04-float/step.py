"""Caption decode step (trunk + und_branch, batch 1, T = 1, position 300) of BUNDLE through OrtBackend,
2 threads: median and min ms over ROUNDS steps after 3 warm-up steps.

    python step.py runs/bench3/paper/bundle-fp32-ort 30
"""
import statistics
import sys
import time

import numpy as np

from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend

bundle_dir, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
be = OrtBackend(load_bundle(bundle_dir, verify=False), threads=2).load()
kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
x = (np.random.default_rng(0).standard_normal((1, 1, be.bundle.config.text.hidden_size)) * 0.02).astype(np.float32)
pos, start = np.array(300, np.int64), np.zeros(1, np.int64)
times = []
for r in range(rounds + 3):
    t0 = time.perf_counter()
    h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
    be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)
    if r >= 3:
        times.append(time.perf_counter() - t0)
print(f"median {statistics.median(times) * 1e3:.1f} ms  min {min(times) * 1e3:.1f}  n={len(times)}")
