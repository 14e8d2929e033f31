"""rq_head step, old (portable head in an ort bundle) vs new (ORT head), interleaved, B = 2 and 8."""
import sys, time, statistics, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
rts = {name: UniForkRuntime(path) for name, path in (("old", sys.argv[1]), ("new", sys.argv[2]))}
cfg = rts["old"].cfg; H = cfg.text.hidden_size; D = cfg.image.depth
res = {}
caches = {(n, B): rt.backend.new_cache("rq_head", B) for n, rt in rts.items() for B in (2, 8)}
rng = np.random.default_rng(0)
for r in range(int(sys.argv[3]) if len(sys.argv) > 3 else 30):
    for B in (2, 8):
        hid = rng.standard_normal((B, H)).astype(np.float32); codes = rng.integers(0, 1000, (B, D))
        for n, rt in rts.items():
            t0 = time.perf_counter()
            for d in range(D):
                rt.backend.run("rq_head", {"hidden": hid, "codes": codes, "pos": np.array(d, np.int64)}, caches[(n, B)])
            res.setdefault((n, B), []).append((time.perf_counter() - t0) / D)
for k, v in sorted(res.items()):
    print(f"{k[0]} B={k[1]}: median {statistics.median(v[2:])*1e3:.2f} ms per step (p10 {np.percentile(v[2:],10)*1e3:.2f}, p90 {np.percentile(v[2:],90)*1e3:.2f})")
for B in (2, 8):
    print(f"B={B}: new/old {statistics.median(res[('new',B)][2:])/statistics.median(res[('old',B)][2:]):.3f}")
print("B=8/B=2: old", statistics.median(res[('old',8)][2:])/statistics.median(res[('old',2)][2:]), "new", statistics.median(res[('new',8)][2:])/statistics.median(res[('new',2)][2:]))
