"""Per-graph time: back to back vs alternating as a draw does (trunk, gen_branch, rq_head x4)."""
import sys, time, numpy as np
from unifork_rt.runtime.bundle import load_bundle
from benchmarks.profile import _backend, runner, decode_feeds
b = load_bundle(sys.argv[1], verify=False)
import os; be = _backend(b, threads=2, spin=os.environ.get("SPIN")=="1", pool=os.environ.get("POOL"))
rows = [int(x) for x in sys.argv[2:]] or [2, 8]
for B in rows:
    R = {g: runner(be.session(g), decode_feeds(b, g, B)) for g in ("trunk", "gen_branch", "rq_head")}
    for g in R:
        for _ in range(3): R[g]()
    for rnd in range(3):
        solo = {}
        for g in R:
            ts = []
            for _ in range(20):
                t = time.perf_counter(); R[g](); ts.append(time.perf_counter() - t)
            solo[g] = np.median(ts) * 1e3
        alt = {g: [] for g in R}
        for _ in range(20):
            for g in ("trunk", "gen_branch") + ("rq_head",) * 4:
                t = time.perf_counter(); R[g](); alt[g].append(time.perf_counter() - t)
        print(f"B={B} round {rnd}: " + ", ".join(f"{g} solo {solo[g]:.2f} alt {np.median(alt[g])*1e3:.2f}" for g in R), flush=True)
