import sys, json, os, tempfile, collections
from pathlib import Path
import numpy as np
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False)
g, bs = sys.argv[2], int(sys.argv[3])
tmp = tempfile.mkdtemp()
be = _backend(b, spin=True, profile_prefix=os.path.join(tmp, "p"))
sess = be.session(g)
step = runner(sess, decode_feeds(b, g, bs))
for _ in range(12): step()
tr = json.loads(Path(sess.end_profiling()).read_text())
runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
keep = runs[-10]["ts"]
nodes = [e for e in tr if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep]
agg = collections.defaultdict(list)
for e in nodes:
    agg[(e["args"]["op_name"], e["name"][:-12])].append(e["dur"])
rows = sorted(((np.median(v), k, len(v)) for k, v in agg.items()), reverse=True)
for op in sys.argv[4].split(","):
    sel = [r for r in rows if r[1][0] == op]
    print(op, "nodes", len(sel), "median us per node:", " ".join(f"{r[0]:.0f}" for r in sel[:14]))
    if sel:
        e = next(e for e in nodes if e["name"][:-12] == sel[0][1][1])
        print("   e.g.", sel[0][1][1], e["args"].get("input_type_shape"))
# the order of nodes in one run, with durations, first layer
one = [e for e in nodes if e["ts"] >= runs[-1]["ts"]]
one.sort(key=lambda e: e["ts"])
print(" -> ".join(f"{e['args']['op_name']}:{e['dur']}" for e in one[:22]))
