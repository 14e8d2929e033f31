import sys, json, collections, time, numpy as np
from unifork_rt.runtime.bundle import Bundle
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, graph = sys.argv[1], sys.argv[2]
for B in (2, 8):
    rt = UniForkRuntime(bundle)
    be = rt.backend
    for o in (be._opts, be._opts_q):
        if o is not None:
            o.enable_profiling = True; o.profile_file_prefix = f"/tmp/prof_{graph}_{B}"
    cfg = rt.cfg; H = cfg.text.hidden_size; D = cfg.image.depth
    if graph == "rq_head":
        cache = be.new_cache("rq_head", B)
        feeds = lambda d: {"hidden": np.random.randn(B, H).astype(np.float32), "codes": np.zeros((B, D), np.int64), "pos": np.array(d, np.int64)}
    else:
        cache = be.new_cache(graph, B)
        feeds = lambda d: {"x" if graph == "trunk" else "h": np.random.randn(B, 1, H).astype(np.float32) * .02, "pos": np.array(200 + d, np.int64), "start": np.zeros(B, np.int64)}
    for r in range(40):
        be.run(graph, feeds(r % D), cache)
    sess = be.session(graph)
    path = sess.end_profiling()
    tr = json.load(open(path))
    runs = [e for e in tr if e.get("name") == "model_run"][10:]
    t0 = runs[0]["ts"]
    by = collections.defaultdict(float)
    for e in tr:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= t0:
            by[e["args"].get("op_name")] += e["dur"]
    n = len(runs)
    print(f"B={B} run {np.median([e['dur'] for e in runs])/1e3:.2f} ms; kernels " + ", ".join(f"{k} {v/n/1e3:.2f}" for k, v in sorted(by.items(), key=lambda x: -x[1])[:12]))
