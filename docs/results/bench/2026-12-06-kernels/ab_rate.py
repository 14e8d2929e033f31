"""A/B of the kernel-rate probe: python ab_rate.py OLD.so NEW.so ROUNDS [ROWS] -> int8/int4 GMAC/s per lib, alternating."""
import ctypes, sys, statistics
from benchmarks import roofline as r
rows = int(sys.argv[4]) if len(sys.argv) > 4 else 64
libs = {name: ctypes.CDLL(p) for name, p in (("old", sys.argv[1]), ("new", sys.argv[2]))}
res = {n: {"i8": [], "i4": []} for n in libs}
for k in range(int(sys.argv[3])):
    order = ["old", "new"] if k % 2 == 0 else ["new", "old"]
    for n in order:
        lib = libs[n]
        res[n]["i8"].append(r._kernel_rate(lib, 2, 8, 2, 3, rows=rows) / 1e9)
        res[n]["i4"].append(r._kernel_rate(lib, 2, 4, 2, 3, rows=rows) / 1e9)
    print(k, {n: (round(res[n]["i8"][-1]), round(res[n]["i4"][-1])) for n in libs}, flush=True)
for n in libs:
    print(n, "rows", rows, "median i8 %.0f i4 %.0f" % (statistics.median(res[n]["i8"]), statistics.median(res[n]["i4"])))
