"""Interleaved A/B of two kernel libraries in one process: python ab_lib.py BUNDLE OLD_LIB ROUNDS B,... NEW_LIB
trunk and rq_head steps at each batch (pos 150), and a 300-token trunk prompt at batch 1."""
import sys, time, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.runtime import qmatmul
bundle, old, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
Bs = [int(b) for b in sys.argv[4].split(",")]
libs = {"old": old, "new": sys.argv[5]}
rts = {}
for k, lib in libs.items():
    rt = UniForkRuntime(bundle, pool="shared", verify=False)
    assert rt.backend.qmatmul is not None
    rt.backend.qmatmul = lib
    rts[k] = rt
cfg = rts["old"].cfg; H = cfg.text.hidden_size; D = cfg.image.depth
def feeds(g, B, d):
    if g == "rq_head":
        return {"hidden": np.random.randn(B, H).astype(np.float32), "codes": np.zeros((B, D), np.int64), "pos": np.array(d % D, np.int64)}
    return {"x": np.random.randn(B, 1, H).astype(np.float32) * .02, "pos": np.array(150 + d % 8, np.int64), "start": np.zeros(B, np.int64)}
cases = [(g, B) for g in ("trunk", "rq_head") for B in Bs]
caches = {(k, g, B): rts[k].backend.new_cache(g, B) for k in rts for g, B in cases}
pc = {k: rts[k].backend.new_cache("trunk", 1) for k in rts}
res = {}
for rnd in range(rounds):
    for k, rt in rts.items():
        be = rt.backend
        for g, B in cases:
            f = [feeds(g, B, d) for d in range(24)]
            for x in f[:4]: be.run(g, x, caches[k, g, B])
            t = time.perf_counter()
            for x in f[4:]: be.run(g, x, caches[k, g, B])
            res.setdefault((g, B, k), []).append((time.perf_counter() - t) / 20 * 1e3)
        x = {"x": np.random.randn(1, 300, H).astype(np.float32) * .02, "pos": np.array(0, np.int64), "start": np.zeros(1, np.int64)}
        be.run("trunk", x, pc[k])
        t = time.perf_counter(); be.run("trunk", x, pc[k]); res.setdefault(("trunk prompt 300", 1, k), []).append((time.perf_counter() - t) * 1e3)
for g, B in cases + [("trunk prompt 300", 1)]:
    o, n = res[g, B, "old"], res[g, B, "new"]
    wins = sum(b < a for a, b in zip(o, n))
    print(f"{g} B={B}: old {np.median(o):.2f} ms, new {np.median(n):.2f} ms ({np.median(n)/np.median(o)-1:+.1%}; new faster in {wins}/{len(o)} rounds)")
