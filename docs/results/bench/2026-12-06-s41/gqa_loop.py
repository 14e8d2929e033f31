import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, "tests")
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session
lib = sys.argv[1]; case = sys.argv[2]; secs = float(sys.argv[3]) if len(sys.argv) > 3 else 5
cases = {"trunk": (14, 2, 64, 512, True, True, 8, 1, 256), "rq": (32, 32, 112, 4, False, False, 8, 1, 2),
         "trunk2": (14, 2, 64, 512, True, True, 2, 1, 256), "rq2": (32, 32, 112, 4, False, False, 2, 1, 2)}
hq, hkv, dh, S, rot, bias, B, T, pos = cases[case]
model = gqa_model(hq, hkv, dh, S, rot, bias)
feeds = gqa_feeds(np.random.default_rng(0), hq, hkv, dh, S, rot, bias, B, T, pos)
sess = gqa_session(model, lib)
io = bind_shared(sess, feeds)
for _ in range(50): sess.run_with_iobinding(io)
best = 1e9
t_end = time.perf_counter() + secs
while time.perf_counter() < t_end:
    t0 = time.perf_counter()
    for _ in range(100): sess.run_with_iobinding(io)
    best = min(best, (time.perf_counter() - t0) / 100 * 1e6)
print(f"{case}: best {best:.1f} us")
