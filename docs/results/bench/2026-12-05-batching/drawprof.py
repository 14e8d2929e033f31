"""Where a real draw's time goes, per graph, for --n 1 and --n 4 (interleaved)."""
import sys, time, collections
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
import unifork_rt.runtime.pipeline as P

bundle = sys.argv[1]
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 1
rt = UniForkRuntime(bundle)
acc = collections.defaultdict(float)
cnt = collections.Counter()
orig = rt.backend.run
def run(g, feeds, cache=None):
    t = time.perf_counter()
    out = orig(g, feeds, cache)
    acc[g] += time.perf_counter() - t
    cnt[g] += 1
    return out
rt.backend.run = run
prompt = "a red circle on a blue square"
rt.draw([prompt], n=1)  # warm
rt.draw([prompt], n=4)
for r in range(rounds):
    for n in (1, 4):
        acc.clear(); cnt.clear()
        t = time.perf_counter()
        rt.draw([prompt], n=n, seed=r)
        tot = time.perf_counter() - t
        graphs = sum(acc.values())
        print(f"n={n} total {tot:.2f} s  graphs {graphs:.2f}  other {tot-graphs:.2f}  " +
              "  ".join(f"{g} {acc[g]:.2f}/{cnt[g]}" for g in sorted(acc)), flush=True)
