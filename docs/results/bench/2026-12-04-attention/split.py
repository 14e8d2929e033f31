"""Where one guided draw_codes's time goes (after a warm-up draw): seconds / calls per graph in backend.run, in sample(),
and the image decode: python split.py BUNDLE N (UNIFORK_RT_ATTENTION as set)"""
import sys, time, collections
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
import unifork_rt.runtime.pipeline as P
bundle, n = sys.argv[1], int(sys.argv[2])
rt = UniForkRuntime(bundle, pool="shared", verify=False)
be = rt.backend
acc = collections.defaultdict(float); cnt = collections.Counter()
orig = be.run
def run(g, *a, **k):
    t = time.perf_counter(); r = orig(g, *a, **k); acc[g] += time.perf_counter() - t; cnt[g] += 1; return r
be.run = run
os_ = P.sample
def samp(*a, **k):
    t = time.perf_counter(); r = os_(*a, **k); acc["sample"] += time.perf_counter() - t; cnt["sample"] += 1; return r
P.sample = samp
rt.draw_codes("a red circle", n=n, seed=1)
acc.clear(); cnt.clear()
t = time.perf_counter(); codes = rt.draw_codes("a red circle", n=n, seed=1); tot = time.perf_counter() - t
t = time.perf_counter(); ims = rt.decode(codes); dec = time.perf_counter() - t
print(f"n={n} total {tot:.2f} s decode {dec:.2f}", " ".join(f"{g} {v:.2f}/{cnt[g]}" for g, v in acc.items()), f"other {tot - sum(v for g,v in acc.items() if g!='vision_decoder'):.2f}")
