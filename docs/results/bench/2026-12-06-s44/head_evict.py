"""Is the depth head's 8-row step slower inside draws because its weights no longer sit in the cache? The rq_head
graph of a bundle at 2 and 8 rows in a loop, each step alone (warm: the same step again and again) or after a read
of a buffer (MB, default 512) that evicts the caches, as the trunk's and gen_branch's weights do inside a draw; only
the step is timed. Rounds alternate. python head_evict.py BUNDLE ROUNDS [MB]"""
import sys, time
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); rounds = int(sys.argv[2]); mb = int(sys.argv[3]) if len(sys.argv) > 3 else 512
big = np.ones(mb * 2**20 // 8)
be = _backend(b, spin=True)
sess = be.session("rq_head")
res = {}
for r in range(rounds):
    for batch in (2, 8):
        step = runner(sess, decode_feeds(b, "rq_head", batch))
        for _ in range(5): step()
        for mode in (("warm", "evicted") if r % 2 == 0 else ("evicted", "warm")):
            ts = []
            for _ in range(30):
                if mode == "evicted": big.sum()
                t = time.perf_counter(); step(); ts.append(time.perf_counter() - t)
            res.setdefault((batch, mode), []).append(np.median(ts) * 1e3)
    print(f"round {r}: " + ", ".join(f"{bt} rows {m} {v[-1]:.2f}" for (bt, m), v in res.items()), flush=True)
print(f"ms a step, medians of {rounds} rounds (30 steps each), sweep {mb} MB:")
for (bt, m), v in res.items(): print(f"  {bt} rows {m:8s} {np.median(v):.2f}")
