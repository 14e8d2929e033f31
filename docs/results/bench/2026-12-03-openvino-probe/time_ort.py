import sys, time, statistics, numpy as np, onnxruntime as ort
rows = [1, 2, 8, 32, 297]
for fmt in sys.argv[1:]:
    so = ort.SessionOptions(); so.intra_op_num_threads = 2
    s = ort.InferenceSession(f"/work/ovprobe/{fmt}/chain.onnx", so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(1); out = []
    for m in rows:
        x = rng.standard_normal((m, 896)).astype(np.float32)
        for _ in range(2): s.run(None, {"x": x})
        ts = []
        for _ in range(7):
            t = time.perf_counter(); s.run(None, {"x": x}); ts.append(time.perf_counter() - t)
        out.append(statistics.median(ts) * 1e3)
    print(f"ORT {fmt:14s} " + "  ".join(f"{m}: {t:8.2f}" for m, t in zip(rows, out)))
