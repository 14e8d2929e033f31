"""Guided draws --n 1 and --n 4 with two kernel libraries in one process, interleaved:
python draw_ab.py BUNDLE OLD_LIB NEW_LIB ROUNDS [N,N...] [swap]  (the --n values, default 1,4; swap: the new library
first in every other round, against drift in the host's speed, since session 42)"""
import sys, time, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, old, new, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
NS = tuple(int(x) for x in (sys.argv[5] if len(sys.argv) > 5 else "1,4").split(","))
SWAP = len(sys.argv) > 6 and sys.argv[6] == "swap"
rts = {}
for k, lib in (("old", old), ("new", new)):
    rt = UniForkRuntime(bundle, pool="shared", verify=False)
    assert rt.backend.qmatmul is not None
    rt.backend.qmatmul = lib
    rts[k] = rt
p = "a red circle on a blue square"
for rt in rts.values():
    rt.draw([p], n=1)
res = {}
for r in range(rounds):
    for n in NS:
        for k in (("new", "old") if SWAP and r % 2 else ("old", "new")):
            rt = rts[k]
            t = time.perf_counter(); rt.draw([p], n=n, seed=r); res.setdefault((n, k), []).append(time.perf_counter() - t)
    print(f"round {r}: " + ", ".join(f"n{n} {k} {v[-1]:.2f}" for (n, k), v in res.items()), flush=True)
for n in NS:
    o, w = res[n, "old"], res[n, "new"]
    print(f"--n {n}: old {np.median(o):.2f} s, new {np.median(w):.2f} s ({np.median(w)/np.median(o)-1:+.1%}; new faster in {sum(b < a for a, b in zip(o, w))}/{len(o)})")
if {1, 4} <= set(NS):
    print(f"--n 4 / --n 1: old {np.median(res[4,'old'])/np.median(res[1,'old']):.2f}, new {np.median(res[4,'new'])/np.median(res[1,'new']):.2f}")
