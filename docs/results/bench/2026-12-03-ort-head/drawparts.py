"""A whole draw (codes + decode) at --n 1 and --n 4, time split by part: graphs by name, sampling, the rest."""
import sys, time, collections, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime, DrawSettings, DrawRequest
import unifork_rt.runtime.pipeline as pl
bundle, reps = sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 1
rt = UniForkRuntime(bundle)
acc = collections.defaultdict(float); cnt = collections.Counter()
real_run = rt.backend.run
def run(name, feeds, *a, **k):
    t0 = time.perf_counter(); out = real_run(name, feeds, *a, **k); acc[name] += time.perf_counter() - t0; cnt[name] += 1; return out
rt.backend.run = run
real_sample = pl.sample
def sample(*a, **k):
    t0 = time.perf_counter(); out = real_sample(*a, **k); acc["sample"] += time.perf_counter() - t0; return out
pl.sample = sample
real_mix = pl.cfg_mix
def mix(*a, **k):
    t0 = time.perf_counter(); out = real_mix(*a, **k); acc["cfg_mix"] += time.perf_counter() - t0; return out
pl.cfg_mix = mix
s = DrawSettings.for_bundle(rt.bundle)
print("cells", rt.cfg.image.num_cells, "depth", rt.cfg.image.depth)
for n in [1, 4] * reps:
    acc.clear(); cnt.clear()
    t0 = time.perf_counter(); codes = rt.draw_codes_batch([DrawRequest("a red circle", s, n, 0)])[0]; tc = time.perf_counter() - t0
    t1 = time.perf_counter(); imgs = rt.decode(codes); td = time.perf_counter() - t1
    graphs = sum(v for k, v in acc.items() if k not in ("sample", "cfg_mix", "decoder", "vision_decoder"))
    print(f"n={n} codes {tc:.2f} s decode {td:.2f} s | " + " ".join(f"{k} {v:.2f}" for k, v in sorted(acc.items())) + f" | other {tc - graphs - acc['sample'] - acc['cfg_mix']:.2f}", flush=True)
