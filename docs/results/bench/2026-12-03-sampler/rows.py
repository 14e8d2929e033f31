"""Per-part cost of one draw cell at B=2 (--n 1) and B=8 (--n 4): graphs through the real backend, and sampling."""
import sys, time, statistics, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime, DrawSettings
from unifork_rt.runtime.sampling import sample, cfg_mix
sys.path.insert(0, "tests"); from test_sampling import whole_vocab_sample  # the sampler before 1657f39
bundle = sys.argv[1]
rt = UniForkRuntime(bundle)
cfg = rt.cfg; H = cfg.text.hidden_size; D = cfg.image.depth; V = cfg.image.codebook_size
from unifork_rt.runtime.sampling import Sampling
_s = DrawSettings.for_bundle(rt.bundle); st = type("S", (), {"sampling": Sampling(_s.temperature, _s.top_k, _s.top_p)})
print("sampling", st.sampling, "V", V, "D", D)
parts = {}
def t(name, fn):
    parts.setdefault(name, []).append(None)
    t0 = time.perf_counter(); fn(); parts[name][-1] = time.perf_counter() - t0
state = {}
for B in (2, 8):
    chunks = rt._chunks(B)
    caches = rt._new_caches(("trunk", "gen_branch"), chunks)
    hc = [c for c, in rt._new_caches(("rq_head",), chunks)]
    state[B] = (chunks, caches, hc)
rng = np.random.default_rng(0)
pos = 200
for r in range(8):
    for B in (2, 8):
        chunks, caches, hc = state[B]
        x = np.random.randn(B, 1, H).astype(np.float32) * 0.02
        start = np.zeros(B, np.int64)
        p = np.array(pos, np.int64)
        h = {}
        t(f"trunk B={B}", lambda: h.update(h=rt.backend.run("trunk", {"x": x, "pos": p, "start": start}, caches[0][0])["h"]))
        t(f"gen B={B}", lambda: h.update(g=rt.backend.run("gen_branch", {"h": h["h"], "pos": p, "start": start}, caches[0][1])["hidden"]))
        hid = h["g"][:, -1]
        cc = np.zeros((B, D), np.int64)
        for d in range(D):
            out = {}
            t(f"head B={B}", lambda: out.update(rt.backend.run("rq_head", {"hidden": hid, "codes": cc, "pos": np.array(d, np.int64)}, hc[0])))
            lg = out["logits"]
            t(f"sample B={B}", lambda: sample(cfg_mix(lg, 4.0), st.sampling, rng))
            t(f"old sample B={B}", lambda: whole_vocab_sample(cfg_mix(lg, 4.0), st.sampling, rng))
        t(f"connector B={B}", lambda: rt.backend.run("connector", {"codes": cc[:, None]}))
for k, v in parts.items():
    v = v[1:] if len(v) > 8 else v[1:]
    print(f"{k:16s} median {statistics.median(v)*1e3:7.2f} ms  min {min(v)*1e3:7.2f}  n={len(v)}")
