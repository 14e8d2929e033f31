"""Old vs new attention library: bits on many shapes, then op time with the caches cold (a ring of copies
larger than the L3) and warm, interleaved."""
import sys, time
from pathlib import Path
import numpy as np
sys.path.insert(0, "tests")
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session, run_session

old, new = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)
worst = 0
for hq, hkv, dh, S, rot, bias, B, pos in [(14, 2, 64, 512, True, True, 1, 256), (14, 2, 64, 512, True, True, 8, 255),
                                          (32, 32, 112, 4, False, False, 8, 2), (32, 32, 112, 4, False, False, 2, 0),
                                          (6, 2, 40, 48, True, True, 3, 30), (4, 2, 16, 64, True, True, 5, 17),
                                          (14, 2, 64, 512, True, True, 2, 0), (8, 4, 24, 40, False, True, 3, 33),
                                          (14, 2, 64, 512, True, False, 3, 510)]:
    model = gqa_model(hq, hkv, dh, S, rot, bias)
    feeds = gqa_feeds(np.random.default_rng(pos), hq, hkv, dh, S, rot, bias, B, 1, pos)
    a = run_session(model, feeds, old, True)
    b = run_session(model, feeds, new, True)
    same = all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b))
    print(f"{hq}/{hkv}x{dh} B{B} pos{pos}: same bits {same}")
    worst += not same
print("all same" if not worst else f"{worst} differ")

for hq, hkv, dh, S, rot, bias, B, pos in [(14, 2, 64, 512, True, True, 1, 256), (14, 2, 64, 512, True, True, 2, 256),
                                          (14, 2, 64, 512, True, True, 8, 256), (32, 32, 112, 4, False, False, 2, 2),
                                          (32, 32, 112, 4, False, False, 8, 2)]:
    model = gqa_model(hq, hkv, dh, S, rot, bias)
    base = gqa_feeds(np.random.default_rng(0), hq, hkv, dh, S, rot, bias, B, 1, pos)
    kvbytes = base["pk"].nbytes * 2
    ring = max(1, (96 << 20) // kvbytes)
    res = {}
    for rnd in range(3):
        for name, lib in (("old", old), ("new", new)):
            sess = gqa_session(model, lib)
            ios = []
            copies = [{k: v.copy() for k, v in base.items()} for _ in range(ring)]
            ios = [bind_shared(sess, f) for f in copies]
            for io in ios[:4]: sess.run_with_iobinding(io)
            for mode in ("cold", "warm"):
                n = 200
                t0 = time.perf_counter()
                for i in range(n):
                    sess.run_with_iobinding(ios[i % ring] if mode == "cold" else ios[0])
                us = (time.perf_counter() - t0) / n * 1e6
                res.setdefault((name, mode), []).append(us)
            del ios, copies, sess
    print(f"{hq}/{hkv}x{dh} B{B} pos{pos}: " + ", ".join(f"{k[0]} {k[1]} {min(v):.1f}" for k, v in sorted(res.items())), flush=True)
