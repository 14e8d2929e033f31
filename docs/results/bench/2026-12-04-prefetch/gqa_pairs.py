"""GroupQueryAttention alone at the depth head's shape (32/32 heads of 112, 4 slots) and an early draw step of the
decoders, best of 5 x 300 runs: python gqa_pairs.py LIB [LIB ...] (e.g. the parent commit's library, then the tree's)."""
import sys, time
import numpy as np
sys.path.insert(0, "/work/main/tests")
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session
for lib in sys.argv[1:]:
    for hq, hkv, dh, S, rot, bias, B, T, pos in [(32, 32, 112, 4, False, False, 8, 1, 2), (32, 32, 112, 4, False, False, 2, 1, 2), (14, 2, 64, 512, True, True, 8, 1, 20)]:
        model = gqa_model(hq, hkv, dh, S, rot, bias)
        feeds = gqa_feeds(np.random.default_rng(0), hq, hkv, dh, S, rot, bias, B, T, pos)
        sess = gqa_session(model, lib); io = bind_shared(sess, feeds)
        for _ in range(50): sess.run_with_iobinding(io)
        best = 1e9
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(300): sess.run_with_iobinding(io)
            best = min(best, (time.perf_counter() - t0) / 300 * 1e6)
        print(f"{lib.split('/')[-2]}: {hq}/{hkv} heads of {dh}, B {B}, pos {pos}: {best:.1f} us")
