import sys, numpy as np, time
sys.path.insert(0, "tests")
from test_sampling import whole_vocab_sample
from unifork_rt.runtime.sampling import sample, Sampling, cfg_mix
s = Sampling(1.0, 900, 0.96)
for B in (2, 8):
    lg = np.random.default_rng(0).standard_normal((B, 16384)).astype(np.float32) * 3
    for f in (whole_vocab_sample, sample):
        rng = np.random.default_rng(0); ts = []
        for i in range(60):
            t = time.perf_counter(); f(cfg_mix(lg, 4.0), s, rng); ts.append(time.perf_counter() - t)
        print(f"B={B} {f.__name__}: {np.median(ts)*1e3:.2f} ms")
