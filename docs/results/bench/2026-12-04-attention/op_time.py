"""One GroupQueryAttention node (tests/test_attention_kernel.py's graph, IOBinding, present bound to past, 2 threads):
ONNX Runtime's kernel against ours (LIB registered), best of 3 x 200 runs (10 for the 300-token prompt), microseconds.

    python op_time.py LIB          (LIB: python -c "from unifork_rt.runtime.qmatmul import build; print(build()[0])")
"""
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[4] / "tests"))
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session  # noqa: E402

lib = sys.argv[1]
for hq, hkv, dh, S, rot, bias, B, T, pos in [(14, 2, 64, 512, True, True, 1, 1, 256), (14, 2, 64, 512, True, True, 8, 1, 256),
                                             (4, 4, 112, 4, False, False, 8, 1, 2), (32, 32, 112, 4, False, False, 8, 1, 2),
                                             (14, 2, 64, 512, True, True, 1, 300, 0)]:
    model = gqa_model(hq, hkv, dh, S, rot, bias)
    feeds = gqa_feeds(np.random.default_rng(0), hq, hkv, dh, S, rot, bias, B, T, pos)
    best = {}
    for _ in range(3):
        for ours in (False, True):
            sess = gqa_session(model, lib if ours else None)
            io = bind_shared(sess, feeds)
            for _ in range(20):
                sess.run_with_iobinding(io)
            n = 200 if T == 1 else 10
            t0 = time.perf_counter()
            for _ in range(n):
                sess.run_with_iobinding(io)
            us = (time.perf_counter() - t0) / n * 1e6
            best[ours] = min(best.get(ours, us), us)
    print(f"{hq}/{hkv} heads of {dh}, B {B}, T {T}, pos {pos}: ONNX Runtime {best[False]:.1f} us, ours {best[True]:.1f} us")
