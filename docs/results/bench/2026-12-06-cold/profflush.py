"""ORT profile of one graph, each run after a 512 MB read (cold weights), per node kind; MatMulNBits GB/s."""
import sys, os, json, tempfile, numpy as np
from pathlib import Path
from collections import defaultdict
from unifork_rt.runtime.bundle import load_bundle
from benchmarks.profile import _backend, runner, decode_feeds
import onnx
b = load_bundle(sys.argv[1], verify=False)
g, B, flush = sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
m = onnx.load(os.path.join(sys.argv[1], g + ".onnx"), load_external_data=False)
shapes = {}
for n in m.graph.node:
    if n.op_type == "MatMulNBits":
        a = {x.name: x.i for x in n.attribute}
        shapes[n.name] = (a["K"], a["N"])
junk = np.ones(64 << 20, np.float64)
with tempfile.TemporaryDirectory() as tmp:
    be = _backend(b, threads=2, pool="shared", profile_prefix=os.path.join(tmp, "p"))
    sess = be.session(g); step = runner(sess, decode_feeds(b, g, B))
    for _ in range(20):
        if flush: junk.sum()
        step()
    tr = json.loads(Path(sess.end_profiling()).read_text())
runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"][5:]
t0 = runs[0]["ts"]
per = defaultdict(float); byname = defaultdict(float)
for e in tr:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= t0:
        per[e["args"]["op_name"]] += e["dur"]; byname[e["name"][:-12]] += e["dur"]
n = len(runs)
print(f"{g} B={B} flush={flush}: run {np.median([r['dur'] for r in runs])/1e3:.2f} ms, kernels {sum(per.values())/n/1e3:.2f}")
for k, v in sorted(per.items(), key=lambda kv: -kv[1])[:5]: print(f"  {k}: {v/n/1e3:.3f} ms")
# MatMulNBits by shape
sh = defaultdict(lambda: [0.0, 0])
for name, v in byname.items():
    if name in shapes: sh[shapes[name]][0] += v / n; sh[shapes[name]][1] += 1
for (K, N), (us, c) in sorted(sh.items()):
    mb = K * N / 2 / 1e6
    print(f"  K={K} N={N}: {c} nodes, {us/c:.1f} us each, {mb:.2f} MB -> {mb*1e3/(us/c):.1f} GB/s")
