"""A 300-token prompt through the int8-dynamic trunk and und_branch (T = 300, batch 1), ONNX Runtime's kernels
(UNIFORK_RT_QMATMUL=0) against ours, interleaved, ROUNDS rounds, ms: python dyn_prompt.py BUNDLE ROUNDS"""
import os, statistics, sys, time
import numpy as np
from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend
bundle_dir, rounds = sys.argv[1], int(sys.argv[2])
x = (np.random.default_rng(0).standard_normal((1, 300, 896)) * 0.02).astype(np.float32)
pos, start = np.array(0, np.int64), np.zeros(1, np.int64)
fns = {}
for kind, env in (("ort", "0"), ("ours", None)):
    os.environ.pop("UNIFORK_RT_QMATMUL", None)
    if env: os.environ["UNIFORK_RT_QMATMUL"] = env
    be = OrtBackend(load_bundle(bundle_dir, verify=False), pool="shared", preload=True).load()
    kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
    def run(be=be, kt=kt, ku=ku):
        h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
        return be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)["logits"]
    run()
    fns[kind] = run
ts = {k: [] for k in fns}
for r in range(rounds):
    for k in (("ort", "ours") if r % 2 == 0 else ("ours", "ort")):
        t = time.perf_counter(); fns[k](); ts[k].append((time.perf_counter() - t) * 1e3)
print("300-token prompt, trunk + und_branch, ms: " + " | ".join(f"{k} " + " ".join(f"{v:.0f}" for v in ts[k]) + f" (median {statistics.median(ts[k]):.0f})" for k in ts))
