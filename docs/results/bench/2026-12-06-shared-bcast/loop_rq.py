import sys, time, numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); graph = sys.argv[2]; batch = int(sys.argv[3]); n = int(sys.argv[4])
be = _backend(b, spin=True); sess = be.session(graph); step = runner(sess, decode_feeds(b, graph, batch))
for _ in range(20): step()
t = time.perf_counter()
for _ in range(n): step()
print(f"{graph} b{batch}: {(time.perf_counter()-t)/n*1e3:.3f} ms")
