"""The same guided draws and captions with the previous kernel library and the tree's: python same_codes.py
BUNDLE OLD_LIB. The 4- and 8-row tiles changed how they walk the weights, not what they compute per column,
so every code and token should be the same."""
import sys
import numpy as np
from PIL import Image
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.runtime import qmatmul
bundle, old = sys.argv[1], sys.argv[2]
rts = {}
for name, lib in (("old", old), ("new", str(qmatmul.build()[0]))):
    rt = UniForkRuntime(bundle, pool="shared", verify=False)
    rt.backend.qmatmul = lib
    rts[name] = rt
for n, seed in ((1, 0), (4, 1), (2, 2)):
    c = {k: rt.draw_codes("a red circle above a blue square", n=n, seed=seed) for k, rt in rts.items()}
    print(f"draw --n {n} seed {seed}: codes {c['old'].shape}, identical: {np.array_equal(c['old'], c['new'])}")
imgs = [Image.fromarray(a) for a in rts["new"].decode(rts["new"].draw_codes("a green triangle", n=4, seed=5))]
caps = {k: rt.caption_ids(imgs, max_new_tokens=12) for k, rt in rts.items()}
print(f"caption of 4 images at once (4-row tiles), 12 tokens each: identical: {caps['old'] == caps['new']}")
caps = {k: rt.caption_ids(imgs[:1], max_new_tokens=12) for k, rt in rts.items()}
print(f"caption of 1 image: identical: {caps['old'] == caps['new']}")
