import sys, time, statistics, numpy as np, openvino as ov
core = ov.Core()
print(ov.__version__, core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
rows = [1, 2, 8, 32, 297]
import json, os; CFG = json.loads(os.environ.get("OVCFG", "{}"))
for fmt in sys.argv[1:]:
    path = f"/work/ovprobe/{fmt}/chain.onnx"
    try:
        model = core.read_model(path)
        cm = core.compile_model(model, "CPU", dict({"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY"}, **CFG))
    except Exception as e:
        print(fmt, "failed:", str(e).splitlines()[0][:300]); continue
    req = cm.create_infer_request()
    rng = np.random.default_rng(1); out = []
    for m in rows:
        x = rng.standard_normal((m, 896)).astype(np.float32)
        for _ in range(2): req.infer({0: x})
        ts = []
        for _ in range(7):
            t = time.perf_counter(); req.infer({0: x}); ts.append(time.perf_counter() - t)
        out.append(statistics.median(ts) * 1e3)
    print(f"{fmt:14s} " + "  ".join(f"{m}: {t:8.2f}" for m, t in zip(rows, out)))
