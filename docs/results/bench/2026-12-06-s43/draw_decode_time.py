"""How long the image decoder takes inside whole guided draws (the pipeline's `decode`, timed by wrapping it), --n 1
and --n 4 alternately, after one untimed draw of each. python draw_decode_time.py BUNDLE ROUNDS"""
import sys, time
from unifork_rt.runtime.pipeline import UniForkRuntime
rt = UniForkRuntime(sys.argv[1], pool="shared", verify=False)
inner, spent = rt.decode, []


def timed(codes):
    t = time.perf_counter()
    out = inner(codes)
    spent.append(time.perf_counter() - t)
    return out


rt.decode = timed
for n in (1, 4):
    rt.draw(["a red circle"], n=n)
for r in range(int(sys.argv[2])):
    for n in (1, 4):
        spent.clear()
        t = time.perf_counter()
        rt.draw(["a red circle"], n=n, seed=r)
        whole = time.perf_counter() - t
        print(f"round {r} --n {n}: draw {whole:.2f} s, decode {sum(spent):.3f} s ({sum(spent) / n * 1e3:.0f} ms an image)",
              flush=True)
