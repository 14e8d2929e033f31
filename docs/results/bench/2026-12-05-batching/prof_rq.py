import sys
from benchmarks.profile import profile_graph, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
b = load_bundle(sys.argv[1], verify=False)
for g, bs in (("rq_head", 2), ("rq_head", 8), ("trunk", 2), ("trunk", 8)):
    r = profile_graph(b, g, decode_feeds(b, g, bs), 20)
    print(g, bs, f"run {r['run_ms']:.2f} kernel {r['kernel_ms']:.2f} mm {r['matmul_ms']:.2f} glue {r['glue_ms']:.2f}",
          ", ".join(f"{t['op']} {t['ms_per_run']:.2f}" for t in r["top_ops"][:7]), flush=True)
