"""Guided draws with the numpy sampler (UNIFORK_RT_SAMPLER=0) and the C one, interleaved in one process:
python draw_ab.py BUNDLE ROUNDS. Whole draws (draw_codes + decode), --n 1 and --n 4; the codes of both
samplers compared for the same seed."""
import os, sys, time, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime
bundle, rounds = sys.argv[1], int(sys.argv[2])
rt = UniForkRuntime(bundle, pool="shared", verify=False)
rt.draw_codes("a red circle", n=1, seed=0)
res, same = {}, []
for r in range(rounds):
    for n in (1, 4):
        codes = {}
        for path in ("numpy", "C"):
            if path == "numpy":
                os.environ["UNIFORK_RT_SAMPLER"] = "0"
            else:
                os.environ.pop("UNIFORK_RT_SAMPLER", None)
            t = time.perf_counter()
            codes[path] = rt.draw_codes("a red circle", n=n, seed=r)
            rt.decode(codes[path])
            res.setdefault((n, path), []).append(time.perf_counter() - t)
        same.append(bool(np.array_equal(codes["numpy"], codes["C"])))
for n in (1, 4):
    a, b = res[n, "numpy"], res[n, "C"]
    print(f"--n {n}: numpy sampler {np.median(a):.2f} s, C sampler {np.median(b):.2f} s "
          f"({np.median(b) - np.median(a):+.2f} s; rounds " + " ".join(f"{x:.2f}/{y:.2f}" for x, y in zip(a, b)) + ")")
for path in ("numpy", "C"):
    print(f"{path}: --n 4 / --n 1 per round " + " ".join(f"{y / x:.2f}" for x, y in zip(res[1, path], res[4, path])))
print(f"same codes for the same seed in {sum(same)} of {len(same)} draws")
