"""A fresh decoder session's first runs (codes all ones, as the bench's decoder stage feeds it), with and without
spinning threads: the first run is slow, the third on at the steady time. python decoder_fresh.py BUNDLE"""
import sys, time, numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False)
im = b.config.image
codes = np.ones((1, im.num_cells, im.depth), np.int64)
for spin in (True, False):
    be = _backend(b, spin=spin)
    ts = []
    for _ in range(5):
        t = time.perf_counter(); be.run("vision_decoder", {"codes": codes}); ts.append(time.perf_counter() - t)
    print(f"spin={spin}: {[round(x*1e3) for x in ts]} ms")
    be.close()
