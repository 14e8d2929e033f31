"""Where a whole guided draw's time goes outside the graphs: python drawprof.py BUNDLE N..."""
import sys, time, collections, numpy as np
from unifork_rt.runtime import pipeline as pl
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.runtime.pipeline import DrawSettings
rt = UniForkRuntime(sys.argv[1], backend="ort-cpu", verify=False)
acc = collections.defaultdict(float); cnt = collections.Counter()
orig_run = rt.backend.run
def run(graph, feeds, cache=None):
    t = time.perf_counter(); o = orig_run(graph, feeds, cache); acc[graph] += time.perf_counter() - t; cnt[graph] += 1; return o
rt.backend.run = run
for name in ("sample", "cfg_mix"):
    f = getattr(pl, name)
    def w(*a, _f=f, _n=name, **k):
        t = time.perf_counter(); o = _f(*a, **k); acc[_n] += time.perf_counter() - t; cnt[_n] += 1; return o
    setattr(pl, name, w)
s = DrawSettings.for_bundle(rt.bundle)
for n in [int(v) for v in sys.argv[2:]]:
    acc.clear(); cnt.clear()
    t = time.perf_counter(); rt.draw_codes("a red circle left of a blue square", n=n, settings=s); tot = time.perf_counter() - t
    other = tot - sum(acc.values())
    print(f"n={n}: codes {tot:.2f} s; " + ", ".join(f"{k} {v:.2f} ({cnt[k]})" for k, v in sorted(acc.items(), key=lambda kv: -kv[1])) + f"; rest {other:.2f}", flush=True)
