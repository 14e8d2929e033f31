"""One library (LIB), two runtimes in one process: A with UNIFORK_RT_NORM=0 set while its sessions are made (ONNX
Runtime's layer norms), B without (ours); trunk / und_branch / rq_head steps at each batch (pos 150, the depth head
at pos 2), rounds alternating which goes first. python env_ab.py BUNDLE LIB ROUNDS B,..."""
import os, sys, time
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, lib, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
Bs = [int(b) for b in sys.argv[4].split(",")]
graphs = ("trunk", "und_branch", "rq_head")
rts, caches = {}, {}
for k in ("onnxruntime", "ours"):
    if k == "onnxruntime":
        os.environ["UNIFORK_RT_NORM"] = "0"
    rt = UniForkRuntime(bundle, pool="shared", verify=False)
    rt.backend.qmatmul = lib
    for g in graphs:
        rt.backend.session(g)  # made now, under this environment
    os.environ.pop("UNIFORK_RT_NORM", None)
    rts[k] = rt
cfg = rts["ours"].cfg; H = cfg.text.hidden_size; D = cfg.image.depth


def feeds(g, B):
    if g == "rq_head":
        return {"hidden": np.random.randn(B, H).astype(np.float32), "codes": np.zeros((B, D), np.int64),
                "pos": np.array(2, np.int64)}
    return {"h" if g == "und_branch" else "x": np.random.randn(B, 1, H).astype(np.float32) * .02,
            "pos": np.array(150, np.int64), "start": np.zeros(B, np.int64)}


cases = [(g, B) for g in graphs for B in Bs]
for k, rt in rts.items():
    for g, B in cases:
        caches[k, g, B] = rt.backend.new_cache(g, B)
res = {}
for r in range(rounds):
    order = list(rts) if r % 2 == 0 else list(rts)[::-1]
    for g, B in cases:
        f = feeds(g, B)
        for k in order:
            be = rts[k].backend
            for _ in range(5):
                be.run(g, f, cache=caches[k, g, B])
            t = time.perf_counter()
            for _ in range(30):
                be.run(g, f, cache=caches[k, g, B])
            res.setdefault((g, B, k), []).append((time.perf_counter() - t) / 30 * 1e3)
    print(f"round {r} done", flush=True)
for g, B in cases:
    a, b = np.array(res[g, B, "onnxruntime"]), np.array(res[g, B, "ours"])
    print(f"{g} B={B}: ONNX Runtime's norms {np.median(a):.3f} ms, ours {np.median(b):.3f} ms "
          f"({np.median(b) / np.median(a) - 1:+.1%}; ours faster in {(b < a).sum()}/{len(a)} rounds)")
