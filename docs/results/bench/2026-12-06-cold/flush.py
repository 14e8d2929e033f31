"""Trunk step alone, with and without reading a 512 MB buffer between runs (L3 flush)."""
import sys, os, time, numpy as np
from unifork_rt.runtime.bundle import load_bundle
from benchmarks.profile import _backend, runner, decode_feeds
b = load_bundle(sys.argv[1], verify=False)
be = _backend(b, threads=2, pool=os.environ.get("POOL"), spin=os.environ.get("SPIN")=="1")
junk = np.ones(64 << 20, np.float64)  # 512 MB
for B in [int(x) for x in sys.argv[2:]]:
    R = {g: runner(be.session(g), decode_feeds(b, g, B)) for g in ("trunk", "rq_head")}
    for g in R:
        for _ in range(3): R[g]()
    for rnd in range(3):
        out = []
        for g in R:
            a, f = [], []
            for _ in range(15):
                t = time.perf_counter(); R[g](); a.append(time.perf_counter() - t)
            for _ in range(15):
                junk.sum(); t = time.perf_counter(); R[g](); f.append(time.perf_counter() - t)
            out.append(f"{g} warm {np.median(a)*1e3:.2f} flushed {np.median(f)*1e3:.2f}")
        t = time.perf_counter(); junk.sum(); dt = time.perf_counter() - t
        print(f"B={B} r{rnd}: " + ", ".join(out) + f"; sum of 512MB {512/1024/dt:.1f} GB/s (1 thread)", flush=True)
