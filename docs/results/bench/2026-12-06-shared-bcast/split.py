"""Where a guided draw's time goes: graph runs by graph, vs the rest (python, cfg_mix, sample), n=1 vs n=4."""
import sys, time, collections
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.runtime import pipeline as pl
prec = sys.argv[1] if len(sys.argv) > 1 else "int4"
rt = UniForkRuntime(f"runs/bench3/paper/bundle-{prec}-ort", backend="ort-cpu")
acc = collections.defaultdict(float); cnt = collections.Counter()
orig = rt.backend.run
def run(g, feeds, cache=None):
    t = time.perf_counter(); o = orig(g, feeds, cache); acc[g] += time.perf_counter() - t; cnt[g] += 1; return o
rt.backend.run = run
so, co = pl.sample, pl.cfg_mix
def sample(*a):
    t = time.perf_counter(); o = so(*a); acc["sample"] += time.perf_counter() - t; return o
def cfg(*a):
    t = time.perf_counter(); o = co(*a); acc["cfg_mix"] += time.perf_counter() - t; return o
pl.sample, pl.cfg_mix = sample, cfg
rt.draw(["a red circle"], n=1)  # warm
for rnd in range(int(sys.argv[2]) if len(sys.argv) > 2 else 2):
    for n in (1, 4):
        acc.clear(); cnt.clear()
        t = time.perf_counter(); rt.draw(["a red circle"], n=n); tot = time.perf_counter() - t
        rest = tot - sum(acc.values())
        print(f"n={n} total {tot:.2f}s  " + "  ".join(f"{k} {v*1e3:.0f}ms/{cnt[k] or ''}" for k, v in sorted(acc.items())) + f"  other {rest*1e3:.0f}ms", flush=True)
