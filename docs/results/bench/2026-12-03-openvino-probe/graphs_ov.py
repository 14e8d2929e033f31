import sys, time, statistics, numpy as np, json, os
bundle = sys.argv[1]; engine = sys.argv[2]
if engine == "ov":
    import openvino as ov
    core = ov.Core()
    cfg = {"INFERENCE_NUM_THREADS": 2, "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
           "DYNAMIC_QUANTIZATION_GROUP_SIZE": "128"}
else:
    import onnxruntime as ort
for g in ("trunk", "gen_branch", "rq_head"):
    t0 = time.perf_counter()
    if engine == "ov":
        req = core.compile_model(f"{bundle}/{g}.onnx", "CPU", cfg).create_infer_request()
        run = lambda f: req.infer(f)
        outs = None
    else:
        so = ort.SessionOptions(); so.intra_op_num_threads = 2
        s = ort.InferenceSession(f"{bundle}/{g}.onnx", so, providers=["CPUExecutionProvider"])
        run = lambda f: s.run(None, f)
    load = time.perf_counter() - t0
    res = []
    for B in (1, 2, 8):
        f = dict(np.load(f"/work/ovprobe/feeds-{g}-{B}.npz"))
        for _ in range(2): run(f)
        ts = []
        for _ in range(9):
            t = time.perf_counter(); run(f); ts.append(time.perf_counter() - t)
        res.append(statistics.median(ts) * 1e3)
    print(f"{engine} {g:11s} load {load:5.1f} s  B=1 {res[0]:7.2f}  B=2 {res[1]:7.2f}  B=8 {res[2]:7.2f} ms  8/2 {res[2]/res[1]:.2f}", flush=True)
