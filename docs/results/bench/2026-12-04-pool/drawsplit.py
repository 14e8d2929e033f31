"""Time of one guided `draw_codes` (paper int4 ort bundle, after a warm-up draw) inside and outside the backend's run()
calls, with a pool per session or one pool: python drawsplit.py runs/bench3/paper/bundle-int4-ort shared|session 1
"""
import sys, time
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, pool, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
rt = UniForkRuntime(bundle, pool=pool, verify=False)
be = rt.backend
acc = {"run": 0.0, "calls": 0}
orig = be.run
def run(*a, **k):
    t = time.perf_counter(); r = orig(*a, **k); acc["run"] += time.perf_counter() - t; acc["calls"] += 1; return r
be.run = run
rt.draw_codes("a red circle", n=n, seed=1)
acc.update(run=0.0, calls=0)
t = time.perf_counter(); rt.draw_codes("a red circle", n=n, seed=1); tot = time.perf_counter() - t
print(f"{pool:7s} n={n} total {tot:.2f} s  in backend.run {acc['run']:.2f} s ({acc['calls']} calls)  outside {tot-acc['run']:.2f} s")
