import time, numpy as np
from unifork_rt.runtime.sampling import sample, cfg_mix, Sampling
s = Sampling(temperature=1.0, top_k=900, top_p=0.96)
rng = np.random.default_rng(0)
for B in (1, 4):
    L = np.random.default_rng(1).standard_normal((2 * B, 16384)).astype(np.float32) * 3
    for _ in range(50): m = cfg_mix(L, 4.0); sample(m, s, rng)
    best = {}
    for rep in range(5):
        t0 = time.perf_counter()
        for _ in range(200): m = cfg_mix(L, 4.0)
        t1 = time.perf_counter()
        for _ in range(200): sample(m, s, rng)
        t2 = time.perf_counter()
        best["mix"] = min(best.get("mix", 9), (t1 - t0) / 200); best["sample"] = min(best.get("sample", 9), (t2 - t1) / 200)
    print(B, {k: f"{v*1e6:.0f} us" for k, v in best.items()})
