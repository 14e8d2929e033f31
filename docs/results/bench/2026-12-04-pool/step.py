"""Caption decode step (trunk + und_branch, batch 1, T = 1, position 300) of BUNDLE through OrtBackend with
POOL ("session": a pool per session, spinning off; "shared": one pool for the process), 2 threads:
median and min ms over ROUNDS steps after 3 warm-up steps, and a checksum of the logits.

    python step.py runs/bench3/paper/bundle-int4-ort shared 30
"""
import statistics
import sys
import time

import numpy as np

from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend

bundle_dir, pool, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 30
be = OrtBackend(load_bundle(bundle_dir, verify=False), threads=2, pool=pool).load()
kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
x = (np.random.default_rng(0).standard_normal((1, 1, be.bundle.config.text.hidden_size)) * 0.02).astype(np.float32)
pos, start = np.array(300, np.int64), np.zeros(1, np.int64)
times = []
for r in range(rounds + 3):
    t0 = time.perf_counter()
    h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
    out = be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)
    if r >= 3:
        times.append(time.perf_counter() - t0)
logits = np.asarray(out["logits"], np.float64)
print(f"{pool:7s} median {statistics.median(times) * 1e3:.1f} ms  min {min(times) * 1e3:.1f}  n={len(times)}  "
      f"logits sum {logits.sum():.6f}")
