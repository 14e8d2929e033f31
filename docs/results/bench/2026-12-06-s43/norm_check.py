"""The shipped model's --graphs ort fp32 depth head, one step at 2 rows, with UNIFORK_RT_NORM=0 and =1 set while
its session is made: if our SkipLayerNormalization runs, the logits differ in the last bits."""
import os, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
outs = {}
for k in ("0", "1"):
    os.environ["UNIFORK_RT_NORM"] = k
    rt = UniForkRuntime("/tmp/shapes-ort-fp32", verify=False)
    rt.backend.session("rq_head")
    cfg = rt.cfg; H = cfg.text.hidden_size; D = cfg.image.depth
    rng = np.random.default_rng(0)
    f = {"hidden": rng.standard_normal((2, H)).astype(np.float32), "codes": np.zeros((2, D), np.int64), "pos": np.array(0, np.int64)}
    c = rt.backend.new_cache("rq_head", 2)
    outs[k] = rt.backend.run("rq_head", f, c)
    print(k, "qmatmul lib:", rt.backend.qmatmul)
for name in outs["0"]:
    a, b = outs["0"][name], outs["1"][name]
    print(name, a.shape, "max diff", float(np.abs(a - b).max()), "identical" if np.array_equal(a, b) else "differ")
