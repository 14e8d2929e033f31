import sys, time, numpy as np, onnxruntime as ort
path = sys.argv[1]
o = ort.SessionOptions(); o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL; o.intra_op_num_threads = 2
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
codes = np.random.default_rng(0).integers(0, 16384, (4, 256, 4)).astype(np.int64)
s.run(None, {"codes": codes}); s.run(None, {"codes": codes[:1]})
for r in range(4):
    t = time.perf_counter(); a = s.run(None, {"codes": codes})[0]; t4 = time.perf_counter() - t
    t = time.perf_counter(); b = np.concatenate([s.run(None, {"codes": codes[i:i+1]})[0] for i in range(4)]); t1 = time.perf_counter() - t
    print(f"batch 4: {t4*1e3:.0f} ms, 4 x batch 1: {t1*1e3:.0f} ms, max diff {np.abs(a-b).max():.2e}", flush=True)
