"""op_split.py for several timing builds of our library in one process, alternating: per graph and batch, the run
time and our attention's own time (rdtsc inside the op), medians over ROUNDS.
python op_split_ab.py BUNDLE ROUNDS [--cases=GRAPH:ROWS,...] LIB1 LIB2 ...
(the cases default to trunk at 1, 2 and 8 rows and the depth head at 8)"""
import sys, time, ctypes, collections
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); rounds = int(sys.argv[2]); libs = sys.argv[3:]
cases = [("trunk", 1), ("trunk", 2), ("trunk", 8), ("rq_head", 8)]
if libs[0].startswith("--cases="):
    cases = [(c.split(":")[0], int(c.split(":")[1])) for c in libs.pop(0)[len("--cases="):].split(",")]
tls = [ctypes.CDLL(l) for l in libs]
for tl in tls: tl.uk_rdtsc.restype = ctypes.c_ulonglong
t0, c0 = time.perf_counter(), tls[0].uk_rdtsc(); time.sleep(0.5); hz = (tls[0].uk_rdtsc() - c0) / (time.perf_counter() - t0)
buf = (ctypes.c_ulonglong * 8)()
res = collections.defaultdict(list)
bes = {}
for li, lib in enumerate(libs):
    for g in {c[0] for c in cases}:
        be = _backend(b, spin=True); be.qmatmul = lib; bes[li, g] = be
for r in range(rounds):
    for g, batch in cases:
        for li in (range(len(libs)) if r % 2 == 0 else reversed(range(len(libs)))):
            sess = bes[li, g].session(g)
            f = decode_feeds(b, g, batch)
            if g != "rq_head": f["pos"] = np.array(140, np.int64)
            step = runner(sess, f)
            for _ in range(10): step()
            tls[li].uk_timing(buf)
            n = 40; t = time.perf_counter()
            for _ in range(n): step()
            wall = (time.perf_counter() - t) / n
            tls[li].uk_timing(buf)
            res[li, g, batch, "run"].append(wall * 1e3); res[li, g, batch, "gqa"].append(buf[3] / hz / n * 1e3)
    print(f"round {r}: " + "; ".join(f"{g} b{bt} " + " / ".join(f"{res[li,g,bt,'run'][-1]:.2f} ({res[li,g,bt,'gqa'][-1]:.3f})" for li in range(len(libs))) for g, bt in cases), flush=True)
print("medians, ms a run (attention's own ms a run), libraries in order: " + ", ".join(libs))
for g, bt in cases:
    print(f"  {g} {bt} rows: " + " / ".join(f"{np.median(res[li,g,bt,'run']):.2f} ({np.median(res[li,g,bt,'gqa']):.3f})" for li in range(len(libs))))
