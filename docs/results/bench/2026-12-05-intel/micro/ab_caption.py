"""Our caption decode (ms per token after the first, 32 new tokens, greedy) with two kernel libraries, alternately
in child processes (old first in even rounds, new first in odd ones): python ab_caption.py BUNDLE OLD.so NEW.so ROUNDS"""
import json, subprocess, sys

CHILD = r'''
import json, sys, numpy as np
from unifork_rt.runtime import qmatmul
lib = sys.argv[2]
qmatmul.library_for_sessions = lambda: __import__("pathlib").Path(lib)
from unifork_rt.runtime.pipeline import UniForkRuntime
from unifork_rt.benchmarks.stages import caption_timed
rt = UniForkRuntime(sys.argv[1], backend="ort-cpu", verify=False)
P = rt.cfg.image.image_size
img = np.random.default_rng(0).uniform(-1, 1, (3, P, P)).astype(rt.bundle.float_dtype)
caption_timed(rt, img, 8)
runs = [caption_timed(rt, img, 32) for _ in range(3)]
print(json.dumps({"ttft": [r[0] for r in runs], "per_token": [r[2] for r in runs], "tokens": [r[1] for r in runs]}))
'''

bundle, old, new, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
for r in range(rounds):
    for name, lib in ([("old", old), ("new", new)] if r % 2 == 0 else [("new", new), ("old", old)]):
        out = subprocess.run([sys.executable, "-c", CHILD, bundle, lib], capture_output=True, text=True, check=True)
        res = json.loads(out.stdout.strip().splitlines()[-1])
        pt = sorted(res["per_token"])[1] * 1e3
        print(f"round {r} {name}: {pt:.2f} ms/token (median of 3; {', '.join(f'{x*1e3:.2f}' for x in res['per_token'])}), "
              f"ttft {min(res['ttft']):.2f} s, tokens {res['tokens']}", flush=True)
