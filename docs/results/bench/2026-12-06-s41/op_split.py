"""Without ONNX Runtime's profiler (it doubled a step's time): a graph's run time at 2 and 8 rows, split into
our ops' own time (rdtsc inside a timing build of our library: matmuls, GroupQueryAttention) and the rest
(ONNX Runtime's other nodes, its executor, the IOBinding calls). Rounds alternate graphs and batches.
python op_split.py BUNDLE TIMING_LIB ROUNDS"""
import sys, time, ctypes, collections
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); lib = sys.argv[2]; rounds = int(sys.argv[3])
tl = ctypes.CDLL(lib); tl.uk_rdtsc.restype = ctypes.c_ulonglong
t0, c0 = time.perf_counter(), tl.uk_rdtsc(); time.sleep(0.5); hz = (tl.uk_rdtsc() - c0) / (time.perf_counter() - t0)
buf = (ctypes.c_ulonglong * 8)()
res = collections.defaultdict(list)
graphs = ("trunk", "gen_branch", "rq_head")
bes = {}
for g in graphs:
    be = _backend(b, spin=True); be.qmatmul = lib; bes[g] = be
for r in range(rounds):
    for g in graphs:
        for batch in (2, 8):
            sess = bes[g].session(g)
            f = decode_feeds(b, g, batch)
            if g != "rq_head": f["pos"] = np.array(140, np.int64)
            step = runner(sess, f)
            for _ in range(10): step()
            tl.uk_timing(buf)
            n = 40; t = time.perf_counter()
            for _ in range(n): step()
            wall = (time.perf_counter() - t) / n
            tl.uk_timing(buf)
            mm = (buf[0] + buf[1] + buf[2]) / hz / n; gqa = buf[3] / hz / n
            for k, v in (("run", wall), ("matmul", mm), ("gqa", gqa), ("rest", wall - mm - gqa)):
                res[g, batch, k].append(v * 1e3)
    print(f"round {r}: " + "; ".join(f"{g} b{bt} {res[g,bt,'run'][-1]:.2f} (mm {res[g,bt,'matmul'][-1]:.2f}, gqa {res[g,bt,'gqa'][-1]:.2f})" for g in graphs for bt in (2, 8)), flush=True)
med = {k: float(np.median(v)) for k, v in res.items()}
print(f"TSC {hz/1e9:.2f} GHz; medians of {rounds} rounds, ms a run (40 runs each, no profiler):")
for g in graphs:
    for bt in (2, 8):
        print(f"  {g} {bt} rows: run {med[g,bt,'run']:.2f} = matmuls {med[g,bt,'matmul']:.2f} + attention {med[g,bt,'gqa']:.2f} + rest {med[g,bt,'rest']:.2f}")
D = 4
for k in ("run", "matmul", "gqa", "rest"):
    c2 = med["trunk", 2, k] + med["gen_branch", 2, k] + D * med["rq_head", 2, k]
    c8 = med["trunk", 8, k] + med["gen_branch", 8, k] + D * med["rq_head", 8, k]
    print(f"a cell (trunk + gen_branch + {D} rq_head), {k}: 2 rows {c2:.2f} ms, 8 rows {c8:.2f} ms, +{c8 - c2:.2f} ms (x256 cells: +{(c8 - c2) * 0.256:.2f} s)")
