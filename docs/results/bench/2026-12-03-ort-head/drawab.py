"""Whole guided draws (codes + decode), --n 1 and --n 4, bundles interleaved: per bundle the ratio n4/n1."""
import sys, time, statistics
from unifork_rt.runtime.pipeline import UniForkRuntime, DrawSettings, DrawRequest
paths = sys.argv[1].split(","); rounds = int(sys.argv[2])
rts = [UniForkRuntime(p) for p in paths]
res = {}
for r in range(rounds):
    for i, rt in enumerate(rts):
        s = DrawSettings.for_bundle(rt.bundle)
        for n in (1, 4):
            t0 = time.perf_counter()
            rt.draw_batch([DrawRequest("a red circle", s, n, r)])
            res.setdefault((i, n), []).append(time.perf_counter() - t0)
            print(f"round {r} {paths[i]} n={n}: {res[(i, n)][-1]:.2f} s", flush=True)
for i, p in enumerate(paths):
    a, b = statistics.median(res[(i, 1)]), statistics.median(res[(i, 4)])
    print(f"{p}: n=1 {a:.2f} s, n=4 {b:.2f} s, ratio {b / a:.3f} (per round: {[round(y / x, 3) for x, y in zip(res[(i, 1)], res[(i, 4)])]})")
