"""Caption decode step (trunk + und_branch, batch 1, T = 1, at position 300) through OrtBackend, our
MatMulNBits kernels against ONNX Runtime's, interleaved round by round in one process.

    python docs/results/bench/2026-12-03-qmatmul/ab_decode.py runs/bench3/paper/bundle-int4-ort [ROUNDS]
"""
import os
import statistics
import sys
import time

import numpy as np

from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend

bundle_dir, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 30
backends = {}
for name, mode in (("ours", "1"), ("onnxruntime", "0")):
    os.environ["UNIFORK_RT_QMATMUL"] = mode
    be = OrtBackend(load_bundle(bundle_dir, verify=False), threads=2).load()
    assert (be.qmatmul is not None) == (mode == "1")
    caches = (be.new_cache("trunk", 1), be.new_cache("und_branch", 1))
    backends[name] = (be, caches)
H = backends["ours"][0].bundle.config.text.hidden_size
rng = np.random.default_rng(0)
x = (rng.standard_normal((1, 1, H)) * 0.02).astype(np.float32)
pos, start = np.array(300, np.int64), np.zeros(1, np.int64)
times = {n: [] for n in backends}
for r in range(rounds + 2):
    for name, (be, (kt, ku)) in backends.items():
        t0 = time.perf_counter()
        h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
        be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)
        if r >= 2:
            times[name].append(time.perf_counter() - t0)
for name, t in times.items():
    print(f"{os.path.basename(bundle_dir.rstrip('/'))} {name:12s} median {statistics.median(t) * 1e3:6.2f} ms  "
          f"min {min(t) * 1e3:6.2f}  n={len(t)}")
