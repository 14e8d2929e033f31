"""Guided draws of BUNDLE, --n 1 then --n 4, ROUNDS rounds after one warm-up draw, seconds each; run under the
PYTHONPATH of two checkouts, one process after the other, to compare kernel libraries. Prints the first draw's
image digest so that the two libraries' images can be compared.

    python draw_time.py runs/bench-avx2/paper/bundle-int4-ort 2
"""
import hashlib
import sys
import time

from unifork_rt.runtime import qmatmul
from unifork_rt.runtime.pipeline import UniForkRuntime

bundle, rounds = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 2
rt = UniForkRuntime(bundle, verify=False)
p = "a red circle on a blue square"
img = rt.draw([p], n=1, seed=0)[0]
out = {1: [], 4: []}
for r in range(rounds):
    for n in (1, 4):
        t = time.perf_counter()
        rt.draw([p], n=n, seed=r)
        out[n].append(time.perf_counter() - t)
print(f"{qmatmul.source_digest()[:10]} image {hashlib.sha256(img.tobytes()).hexdigest()[:12]} "
      + "; ".join(f"--n {n}: " + " ".join(f"{t:.2f}" for t in v) + " s" for n, v in out.items())
      + f"; ratio {min(out[4]) / min(out[1]):.2f} (best of each)")
