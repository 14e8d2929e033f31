import sys, time, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
rt = UniForkRuntime(sys.argv[1]); be = rt.backend
codes = np.random.default_rng(0).integers(0, 16384, (4, 256, 4)).astype(np.int64)
be.run("vision_decoder", {"codes": codes}); be.run("vision_decoder", {"codes": codes[:1]})
r = {"batch4": [], "4x1": []}
for _ in range(4):
    t = time.perf_counter(); a = be.run("vision_decoder", {"codes": codes})["pixels"]; r["batch4"].append(time.perf_counter() - t)
    t = time.perf_counter(); b = np.concatenate([be.run("vision_decoder", {"codes": codes[i:i+1]})["pixels"] for i in range(4)]); r["4x1"].append(time.perf_counter() - t)
print({k: [round(x, 3) for x in v] for k, v in r.items()}, "max diff", float(np.abs(a - b).max()))
