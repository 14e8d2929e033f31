"""Caption decode step (trunk + und_branch, batch 1, T = 1, position 300) of BUNDLE on ONNX Runtime's
GroupQueryAttention kernel and on ours, in one process on one shared pool (2 threads): two backends whose
sessions are made with UNIFORK_RT_ATTENTION=0 and =1, run in alternating blocks of STEPS steps for ROUNDS
rounds (the order flips each round); medians per block, and the largest logits difference.

    python step_ab.py runs/bench3/paper/bundle-int4-ort 6 20
"""
import os
import statistics
import sys
import time

import numpy as np

from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend

bundle_dir, rounds, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
x = (np.random.default_rng(0).standard_normal((1, 1, 896)) * 0.02).astype(np.float32)
pos, start = np.array(300, np.int64), np.zeros(1, np.int64)
runs = {}
for att in ("0", "1"):
    os.environ["UNIFORK_RT_ATTENTION"] = att
    be = OrtBackend(load_bundle(bundle_dir, verify=False), threads=2, pool="shared").load()
    be.session("trunk"), be.session("und_branch")
    kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
    rng = np.random.default_rng(1)  # the same cache contents for both
    for c in (kt, ku):
        c.buf[...] = rng.standard_normal(c.buf.shape).astype(c.buf.dtype)

    def step(be=be, kt=kt, ku=ku):
        h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
        return be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)["logits"]
    for _ in range(3):
        step()
    runs[att] = step
med = {"0": [], "1": []}
for r in range(rounds):
    for att in (("0", "1") if r % 2 == 0 else ("1", "0")):
        ts = []
        for _ in range(steps):
            t0 = time.perf_counter()
            runs[att]()
            ts.append(time.perf_counter() - t0)
        med[att].append(statistics.median(ts) * 1e3)
want, got = np.asarray(runs["0"]()), np.asarray(runs["1"]())
diff = float(np.abs(want - got).max())
name = os.path.basename(bundle_dir.rstrip("/"))
print(f"{name}: ONNX Runtime's GQA " + " ".join(f"{m:.1f}" for m in med["0"]) + f" ms (median {statistics.median(med['0']):.2f})"
      f" | ours " + " ".join(f"{m:.1f}" for m in med["1"]) + f" ms (median {statistics.median(med['1']):.2f})"
      f" | faster in {sum(a > b for a, b in zip(med['0'], med['1']))}/{rounds} rounds | max |logits diff| {diff:.2e}"
      f" (max |logits| {float(np.abs(want).max()):.1f}, same argmax: {bool(want.argmax() == got.argmax())})")
