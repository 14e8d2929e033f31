"""Guided draws --n 1 and --n 4 from two bundles in one process (one shared pool), interleaved, the second bundle
first in every other round: python draw_ab_bundles.py OLD_BUNDLE NEW_BUNDLE ROUNDS [N,N...]
Also checks that both draw the same codes for the same seed (the image decoder alone differs here)."""
import sys, time, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
old, new, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
NS = tuple(int(x) for x in (sys.argv[4] if len(sys.argv) > 4 else "1,4").split(","))
rts = {k: UniForkRuntime(b, pool="shared", verify=False) for k, b in (("old", old), ("new", new))}
p = "a red circle on a blue square"
first = {k: rt.draw([p], n=1, seed=0) for k, rt in rts.items()}  # warm
a, b = (first[k][0].astype(np.int16) for k in ("old", "new"))
print(f"same seed: largest pixel difference {int(np.abs(a - b).max())} of 255, mean {np.abs(a - b).mean():.4f}")
res = {}
for r in range(rounds):
    for n in NS:
        for k in (("new", "old") if r % 2 else ("old", "new")):
            t = time.perf_counter(); rts[k].draw([p], n=n, seed=r); res.setdefault((n, k), []).append(time.perf_counter() - t)
    print(f"round {r}: " + ", ".join(f"n{n} {k} {v[-1]:.2f}" for (n, k), v in res.items()), flush=True)
for n in NS:
    o, w = res[n, "old"], res[n, "new"]
    print(f"--n {n}: old {np.median(o):.2f} s, new {np.median(w):.2f} s ({np.median(w)/np.median(o)-1:+.1%}; "
          f"new faster in {sum(y < x for x, y in zip(o, w))}/{len(o)})")
if {1, 4} <= set(NS):
    print(f"--n 4 / --n 1: old {np.median(res[4,'old'])/np.median(res[1,'old']):.2f}, "
          f"new {np.median(res[4,'new'])/np.median(res[1,'new']):.2f}")
