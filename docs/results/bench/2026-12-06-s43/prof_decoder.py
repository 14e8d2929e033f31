"""The image decoder (vision_decoder) of a bundle under ONNX Runtime's profiler, one image: us a run per op type."""
import sys, json, collections, tempfile, os
from pathlib import Path
import numpy as np
sys.path.insert(0, ".")
from benchmarks.profile import _backend
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False)
im = b.config.image
with tempfile.TemporaryDirectory() as tmp:
    be = _backend(b, spin=True, profile_prefix=os.path.join(tmp, "ort"))
    sess = be.session("vision_decoder")
    codes = np.random.default_rng(0).integers(0, im.codebook_size, (1, im.num_cells, im.depth)).astype(np.int64)
    for _ in range(6): sess.run(None, {"codes": codes})
    tr = json.loads(Path(sess.end_profiling()).read_text())
runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
keep = runs[-4]["ts"]
agg = collections.Counter(); cnt = collections.Counter(); nodes = collections.Counter()
for e in tr:
    if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and e["ts"] >= keep:
        agg[e["args"]["op_name"]] += e["dur"]; cnt[e["args"]["op_name"]] += 1
        nodes[e["name"]] += e["dur"]
print(f"run median {np.median([e['dur'] for e in runs[-4:]])/1e3:.1f} ms")
for k in sorted(agg, key=lambda k: -agg[k]):
    print(f"  {k:28s} x{cnt[k]/4:4.0f} {agg[k]/4/1e3:8.1f} ms")
for k, v in nodes.most_common(12):
    print(f"    {k:60s} {v/4/1e3:8.1f} ms")
