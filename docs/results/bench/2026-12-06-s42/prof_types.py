"""Per-op-type us a run of one graph at 2 and 8 rows under ONNX Runtime's profiler (it inflates small nodes: an
Unsqueeze reads 6-10 us), with our kernel library LIB. python prof_types.py BUNDLE GRAPH LIB"""
import sys, json, collections, tempfile, os
from pathlib import Path
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); graph = sys.argv[2]; lib = sys.argv[3]
res = {}
for batch in (2, 8):
    with tempfile.TemporaryDirectory() as tmp:
        be = _backend(b, spin=True, profile_prefix=os.path.join(tmp, "ort"))
        be.qmatmul = lib
        sess = be.session(graph)
        f = decode_feeds(b, graph, batch)
        if "pos" in f and graph != "rq_head": f["pos"] = np.array(140, np.int64)
        if graph == "rq_head": f["pos"] = np.array(2, np.int64)
        step = runner(sess, f)
        for _ in range(60): step()
        tr = json.loads(Path(sess.end_profiling()).read_text()); be.close()
    runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
    keep = runs[-40]["ts"]
    agg = collections.Counter(); cnt = collections.Counter()
    for e in tr:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep:
            agg[e["args"]["op_name"]] += e["dur"]; cnt[e["args"]["op_name"]] += 1
    res[batch] = ({k: v / 40 for k, v in agg.items()}, {k: v / 40 for k, v in cnt.items()}, np.median([e["dur"] for e in runs[-40:]]))
print(f"{graph}: run {res[2][2]:.0f} / {res[8][2]:.0f} us (2 / 8 rows)")
for k in sorted(res[8][0], key=lambda k: -res[8][0][k]):
    print(f"  {k:32s} x{res[8][1][k]:4.0f}  2 rows {res[2][0].get(k,0):8.1f} us   8 rows {res[8][0][k]:8.1f} us  (+{res[8][0][k]-res[2][0].get(k,0):.1f})")
