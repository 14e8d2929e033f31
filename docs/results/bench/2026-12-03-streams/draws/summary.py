"""Whole draws (codes + decode) per round from drawab output files: n=1, n=4, ratio; medians."""
import re, statistics, sys
for path in sys.argv[1:]:
    rows, cur = {}, None
    for line in open(path):
        m = re.match(r"round (\d+) (\w+)", line)
        if m:
            cur = m.group(2); continue
        m = re.match(r"n=(\d) codes ([\d.]+) s decode ([\d.]+) s", line)
        if m and cur:
            rows.setdefault(cur, {}).setdefault(m.group(1), []).append(float(m.group(2)) + float(m.group(3)))
    print(path)
    for v, d in rows.items():
        r = [b / a for a, b in zip(d["1"], d["4"])]
        print(f"  {v}: n=1 {' '.join(f'{x:.2f}' for x in d['1'])} s (median {statistics.median(d['1']):.2f}); "
              f"n=4 {' '.join(f'{x:.2f}' for x in d['4'])} s (median {statistics.median(d['4']):.2f}); "
              f"ratio {' '.join(f'{x:.2f}' for x in r)} (median {statistics.median(r):.2f})")
