"""One graph at a batch, profiled with two kernel libraries alternately: per-op-type us a node. 
python prof_ab.py BUNDLE GRAPH BATCH OLD NEW ROUNDS [OP]"""
import sys, json, collections, tempfile, os
from pathlib import Path
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False); graph = sys.argv[2]; batch = int(sys.argv[3])
libs = {"old": sys.argv[4], "new": sys.argv[5]}; rounds = int(sys.argv[6]); op = sys.argv[7] if len(sys.argv) > 7 else "GroupQueryAttention"
res = collections.defaultdict(list)
for r in range(rounds):
    for k, lib in libs.items():
        with tempfile.TemporaryDirectory() as tmp:
            be = _backend(b, spin=True, profile_prefix=os.path.join(tmp, "ort"))
            be.qmatmul = lib
            sess = be.session(graph)
            f = decode_feeds(b, graph, batch)
            if "pos" in f and graph != "rq_head": f["pos"] = np.array(140, np.int64)
            step = runner(sess, f)
            for _ in range(40): step()
            tr = json.loads(Path(sess.end_profiling()).read_text()); be.close()
        runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
        keep = runs[-30]["ts"]
        d = [e["dur"] for e in tr if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep and e["args"]["op_name"] == op]
        run = np.median([e["dur"] for e in runs[-30:]])
        res[k, "op"].append(np.mean(d)); res[k, "run"].append(run)
    print(f"round {r}: " + ", ".join(f"{k} {op} {res[k,'op'][-1]:.1f} us, run {res[k,'run'][-1]/1e3:.2f} ms" for k in libs), flush=True)
for what in ("op", "run"):
    o, w = np.array(res["old", what]), np.array(res["new", what])
    print(f"{what}: old {np.median(o):.1f}, new {np.median(w):.1f} ({np.median(w)/np.median(o)-1:+.1%}; new lower in {(w < o).sum()}/{len(o)})")
