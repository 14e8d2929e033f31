"""The cell step's --n 4 / --n 1 roofline floor (roofline.batching_floor) for int8 / int4 on the paper preset, at the
runs' probed kernel rates and at this host's register-only peak (alu.txt), for a range of bandwidths."""
import json, sys
sys.path.insert(0, '.')  # run from the repository root
from benchmarks import roofline
from unifork_rt.config import preset as get_preset
cfg = get_preset("paper")
D = "docs/results/bench/2026-12-07-s52/"
pairs_per_ns = 5.3  # 2 threads, alu.txt: 4.55-5.30 VPMADDUBSW+VPMADDWD pairs a ns, the best
peak = {"int8": pairs_per_ns * 1e9 * 32, "int4": pairs_per_ns * 1e9 * 2 / 5 * 128}  # MACs a pair: 32; 128 per 5 uops
for run in ("full1", "full2"):
    r = json.load(open(D + run + "/bench.json"))
    probes = r.get("machine_probes") or [r["machine_probe"]]
    for u in r["units"]:
        prec = u.get("precision")
        if prec not in ("int8", "int4") or "draw" not in u:
            continue
        S = u["draw"]["prompt_tokens"] + 2
        rate_key = prec + "_macs_per_s"
        probed = max(p[rate_key] for p in probes if p.get(rate_key))
        for bw in (u.get("bandwidth_beside_min"), 30e9, 45e9):
            for label, rate in (("probed", probed), ("ALU peak", peak[prec])):
                m = {"bandwidth": bw, rate_key: rate, "kernel_isa": 1}
                f = roofline.batching_floor(cfg, prec, S, m)
                print(f"{run} {prec} bw {bw/1e9:5.1f} GB/s {label:8s} {rate/1e9:6.1f} GMAC/s: floor {f['ratio']:.2f} "
                      f"(2 rows {f['rows_2']['bound']} {f['rows_2']['seconds']*1e3:.1f} ms, 8 rows {f['rows_8']['bound']} {f['rows_8']['seconds']*1e3:.1f} ms)")
