"""Where a whole guided draw's time goes, --n 1 against --n 4, inside the draw (not a graph in a loop): each graph's
run time (wall), and inside them our ops' own time (rdtsc around each op's compute in the timing build of our
library, on the thread ONNX Runtime calls it on, so wall time: matmuls, GroupQueryAttention), plus the sampler, CFG
mixing and the rest.
python draw_split.py BUNDLE TIMING_LIB ROUNDS"""
import sys, time, ctypes, collections
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.runtime import pipeline as pl
bundle, lib, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
tl = ctypes.CDLL(lib); tl.uk_rdtsc.restype = ctypes.c_ulonglong
t0, c0 = time.perf_counter(), tl.uk_rdtsc(); time.sleep(0.5); hz = (tl.uk_rdtsc() - c0) / (time.perf_counter() - t0)
buf = (ctypes.c_ulonglong * 8)()
rt = UniForkRuntime(bundle, pool="shared", verify=False)
rt.backend.qmatmul = lib
acc = collections.defaultdict(float)
orig = rt.backend.run
def run(g, feeds, cache=None):
    tl.uk_timing(buf)  # what ran before this graph (nothing of ours) is dropped
    t = time.perf_counter(); o = orig(g, feeds, cache); acc[g] += time.perf_counter() - t
    tl.uk_timing(buf)
    acc[f"({g}: matmuls)"] += (buf[0] + buf[1] + buf[2]) / hz; acc[f"({g}: attention)"] += buf[3] / hz
    return o
rt.backend.run = run
so, co = pl.sample, pl.cfg_mix
def sample(*a):
    t = time.perf_counter(); o = so(*a); acc["sample"] += time.perf_counter() - t; return o
def cfg(*a):
    t = time.perf_counter(); o = co(*a); acc["cfg_mix"] += time.perf_counter() - t; return o
pl.sample, pl.cfg_mix = sample, cfg
p = "a red circle on a blue square"
rt.draw([p], n=1)
res = collections.defaultdict(list)
for r in range(rounds):
    for n in ((1, 4) if r % 2 == 0 else (4, 1)):
        acc.clear()
        t = time.perf_counter(); rt.draw([p], n=n, seed=r); tot = time.perf_counter() - t
        row = dict(acc); row["total"] = tot; row["other"] = tot - sum(v for k, v in acc.items() if k[0] != "(")
        for g in ("trunk", "gen_branch", "rq_head"):
            row[f"({g}: rest)"] = row[g] - row[f"({g}: matmuls)"] - row[f"({g}: attention)"]
        for k, v in row.items(): res[n, k].append(v)
        print(f"round {r} n={n}: " + "  ".join(f"{k} {v:.2f}" for k, v in row.items()), flush=True)
keys = sorted({k for (_, k) in res}, key=lambda k: -np.median(res[4, k]))
print(f"medians of {rounds} rounds, s a draw (in parentheses: the part of the graphs' time inside our ops):")
for k in keys:
    a, b = np.median(res[1, k]), np.median(res[4, k])
    print(f"  {k:22s} --n 1 {a:6.2f}  --n 4 {b:6.2f}  +{b - a:5.2f}")
