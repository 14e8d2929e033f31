import collections, statistics, sys
d = collections.defaultdict(lambda: collections.defaultdict(list))
rounds = collections.defaultdict(dict)
for line in open(sys.argv[1]):
    f = line.split()
    if not f or f[0] != 'round':
        continue
    lib = f[2]
    g1, r1, g2, r2 = float(f[5]), float(f[6]), float(f[8]), float(f[9])
    d[lib]['a'].append(g1); d[lib]['ar'].append(r1); d[lib]['b'].append(g2); d[lib]['br'].append(r2)
    rounds[int(f[1])][lib] = (g1 / r1, g2 / r2)
for lib, v in d.items():
    print(f"{lib:5s} 896x4864 gemv median {statistics.median(v['a']):6.2f} min {min(v['a']):6.2f} (its read4 median {statistics.median(v['ar']):6.2f})"
          f" | 4864x896 gemv median {statistics.median(v['b']):6.2f} min {min(v['b']):6.2f} (read4 {statistics.median(v['br']):6.2f})"
          f" | gemv/read4 median {statistics.median([x / y for x, y in zip(v['a'], v['ar'])]):.3f} / {statistics.median([x / y for x, y in zip(v['b'], v['br'])]):.3f}")
