import numpy as np, sys
from unifork_rt.benchmarks.profile import decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False)
for g in ("trunk", "gen_branch", "rq_head"):
    for B in (1, 2, 8):
        np.savez(f"/work/ovprobe/feeds-{g}-{B}.npz", **decode_feeds(b, g, B))
