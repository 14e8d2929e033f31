import sys, json, collections, numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend, runner, decode_feeds, summarize
from unifork_rt.runtime.bundle import load_bundle
import tempfile, os
from pathlib import Path
b = load_bundle(sys.argv[1], verify=False)
graph = sys.argv[2]
for batch in (2, 8):
    with tempfile.TemporaryDirectory() as tmp:
        be = _backend(b, spin=True, profile_prefix=os.path.join(tmp, "ort"))
        sess = be.session(graph)
        f = decode_feeds(b, graph, batch)
        if "pos" in f and graph != "rq_head": f["pos"] = np.array(int(sys.argv[3]) if len(sys.argv) > 3 else 140, np.int64)
        step = runner(sess, f)
        for _ in range(30): step()
        tr = json.loads(Path(sess.end_profiling()).read_text()); be.close()
    s = summarize(tr, 28)
    acc = collections.defaultdict(float); cnt = collections.Counter()
    runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
    keep = runs[-28]["ts"]
    for e in tr:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep:
            acc[e["args"]["op_name"]] += e["dur"]; cnt[e["args"]["op_name"]] += 1
    print(f"{graph} b{batch}: run {s['run_ms']:.2f} ms, kernel {s['kernel_ms']:.2f}, matmul {s['matmul_ms']:.2f}, glue {s['glue_ms']:.2f}")
    print("   " + "; ".join(f"{k} {v/28/1e3:.3f} ms ({cnt[k]//28}x, {v/cnt[k]:.0f} us each)" for k, v in sorted(acc.items(), key=lambda kv: -kv[1])[:8]))
