"""GroupQueryAttention alone (tests/test_attention_kernel.py's graph, present bound to past, 2 threads), best of
3 x 300 runs: python gqa_group.py [LIB] (default: the tree's library)."""
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, "/work/main/tests")
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session
from unifork_rt.runtime.qmatmul import build
lib = str(build()[0]) if len(sys.argv) < 2 else sys.argv[1]
for hq, hkv, dh, S, rot, bias, B, T, pos in [(2, 2, 64, 512, True, True, 8, 1, 150), (14, 2, 64, 512, True, True, 8, 1, 150),
                                             (14, 2, 64, 512, True, True, 2, 1, 150), (14, 2, 64, 512, True, True, 1, 300, 0)]:
    model = gqa_model(hq, hkv, dh, S, rot, bias)
    feeds = gqa_feeds(np.random.default_rng(0), hq, hkv, dh, S, rot, bias, B, T, pos)
    sess = gqa_session(model, lib); io = bind_shared(sess, feeds)
    for _ in range(20): sess.run_with_iobinding(io)
    n = 300 if T == 1 else 10; best = 1e9
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n): sess.run_with_iobinding(io)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    print(f"{hq}/{hkv} heads of {dh}, B {B}, T {T}, pos {pos}: ours {best:.1f} us")
