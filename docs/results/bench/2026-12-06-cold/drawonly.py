import sys, time
from unifork_rt.runtime.pipeline import UniForkRuntime, DrawSettings
rt = UniForkRuntime(sys.argv[1], backend="ort-cpu", verify=False, pool="shared")
s = DrawSettings.for_bundle(rt.bundle)
rt.draw_codes("warm up", n=int(sys.argv[2]), settings=s)
for n in [int(v) for v in sys.argv[2:]]:
    t = time.perf_counter(); rt.draw_codes("a red circle left of a blue square", n=n, settings=s); print(f"n={n}: {time.perf_counter()-t:.2f} s", flush=True)
