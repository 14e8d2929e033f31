"""Guided draw_codes ("a red circle", seed 1) of BUNDLE with --n N, interleaved in one process on one shared pool:
sessions made with UNIFORK_RT_ATTENTION=0 (ONNX Runtime's GroupQueryAttention) and =1 (ours), after a warm-up draw
each, ROUNDS rounds with the order flipped each round: python draw_ab.py BUNDLE N ROUNDS
"""
import os, sys, time
import numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rts = {}
for att in ("0", "1"):
    os.environ["UNIFORK_RT_ATTENTION"] = att
    rt = UniForkRuntime(bundle, pool="shared", verify=False)
    for g in ("trunk", "gen_branch", "rq_head", "connector"):
        rt.backend.session(g)  # made now, under this setting
    rt.draw_codes("a red circle", n=n, seed=1)
    rts[att] = rt
times = {"0": [], "1": []}
codes = {}
for r in range(rounds):
    for att in (("0", "1") if r % 2 == 0 else ("1", "0")):
        t = time.perf_counter(); codes[att] = rts[att].draw_codes("a red circle", n=n, seed=1); times[att].append(time.perf_counter() - t)
print(f"n={n} ORT GQA: " + " ".join(f"{x:.2f}" for x in times["0"]) + f" (median {np.median(times['0']):.2f})  ours: " +
      " ".join(f"{x:.2f}" for x in times["1"]) + f" (median {np.median(times['1']):.2f})  same codes: {bool((codes['0'] == codes['1']).all())}"
      f" ({float((codes['0'] == codes['1']).mean()):.4f} equal)")
