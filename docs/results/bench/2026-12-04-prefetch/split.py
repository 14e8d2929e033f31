"""Whole guided draws (draw_codes + decode), --n 1 and --n 4 in turn, split per part: python ratio.py BUNDLE ROUNDS"""
import sys, time, collections, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
import unifork_rt.runtime.pipeline as P
bundle, rounds = sys.argv[1], int(sys.argv[2])
rt = UniForkRuntime(bundle, pool="shared", verify=False)
be = rt.backend
acc = collections.defaultdict(float)
orig = be.run
def run(g, *a, **k):
    t = time.perf_counter(); r = orig(g, *a, **k); acc[g] += time.perf_counter() - t; return r
be.run = run
os_ = P.sample
def samp(*a, **k):
    t = time.perf_counter(); r = os_(*a, **k); acc["sample"] += time.perf_counter() - t; return r
P.sample = samp
rt.draw_codes("a red circle", n=1, seed=0)
tot = collections.defaultdict(list); parts = collections.defaultdict(lambda: collections.defaultdict(list))
for r in range(rounds):
    for n in (1, 4):
        acc.clear()
        t = time.perf_counter(); rt.decode(rt.draw_codes("a red circle", n=n, seed=r)); dt = time.perf_counter() - t
        tot[n].append(dt)
        for g, v in acc.items(): parts[n][g].append(v)
        parts[n]["other"].append(dt - sum(acc.values()))
for n in (1, 4):
    print(f"n={n}: whole {np.median(tot[n]):.2f} s (" + " ".join(f"{x:.2f}" for x in tot[n]) + "); " + ", ".join(f"{g} {np.median(v):.2f}" for g, v in parts[n].items()))
print(f"ratio per round: " + " ".join(f"{b/a:.2f}" for a, b in zip(tot[1], tot[4])) + f"; of medians {np.median(tot[4])/np.median(tot[1]):.2f}")
