"""int8-dynamic `--graphs ort` bundle, three ways in one process on one shared pool (ONNX Runtime's default: one per core), interleaved:
  ort   UNIFORK_RT_QMATMUL=0: no library (ONNX Runtime's integer matmuls and GroupQueryAttention; before a5cfb70)
  int   UNIFORK_RT_ATTENTION=0: our DynamicQuantizeMatMul / MatMulIntegerToFloat, ONNX Runtime's attention
  ours  the default: both ours
Caption decode step (trunk + und_branch, batch 1, pos 300) in blocks of STEPS for ROUNDS rounds (medians, ms), then
guided draw_codes --n 1 and --n 4 ("a red circle", seed 1) for DRAWS rounds (s): python dyn_ab.py BUNDLE ROUNDS STEPS DRAWS"""
import os, statistics, sys, time
import numpy as np
from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import OrtBackend
from unifork_rt.runtime.pipeline import UniForkRuntime

bundle_dir, rounds, steps, draws = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
KINDS = {"ort": {"UNIFORK_RT_QMATMUL": "0"}, "int": {"UNIFORK_RT_ATTENTION": "0"}, "ours": {}}
x = (np.random.default_rng(0).standard_normal((1, 1, 896)) * 0.02).astype(np.float32)
pos, start = np.array(300, np.int64), np.zeros(1, np.int64)
steps_fn, rts = {}, {}
for kind, env in KINDS.items():
    for k in ("UNIFORK_RT_QMATMUL", "UNIFORK_RT_ATTENTION"):
        os.environ.pop(k, None)
    os.environ.update(env)
    be = OrtBackend(load_bundle(bundle_dir, verify=False), pool="shared", preload=True).load()
    kt, ku = be.new_cache("trunk", 1), be.new_cache("und_branch", 1)
    rng = np.random.default_rng(1)
    for c in (kt, ku):
        c.buf[...] = rng.standard_normal(c.buf.shape).astype(c.buf.dtype)

    def step(be=be, kt=kt, ku=ku):
        h = be.run("trunk", {"x": x, "pos": pos, "start": start}, kt)["h"]
        return be.run("und_branch", {"h": h, "pos": pos, "start": start}, ku)["logits"]
    for _ in range(3):
        step()
    steps_fn[kind] = step
    rt = UniForkRuntime(bundle_dir, pool="shared", verify=False)
    for g in ("trunk", "gen_branch", "rq_head", "connector"):
        rt.backend.session(g)  # made now, under this setting
    rt.draw_codes("a red circle", n=1, seed=1)
    rts[kind] = rt
for k in ("UNIFORK_RT_QMATMUL", "UNIFORK_RT_ATTENTION"):
    os.environ.pop(k, None)
med = {k: [] for k in KINDS}
for r in range(rounds):
    for kind in (list(KINDS) if r % 2 == 0 else list(KINDS)[::-1]):
        ts = []
        for _ in range(steps):
            t0 = time.perf_counter(); steps_fn[kind](); ts.append(time.perf_counter() - t0)
        med[kind].append(statistics.median(ts) * 1e3)
want = np.asarray(steps_fn["ort"]())
print("caption step ms: " + " | ".join(f"{k} " + " ".join(f"{m:.1f}" for m in v) + f" (median {statistics.median(v):.2f})"
                                       for k, v in med.items())
      + " | max |logits diff| vs ort: " + ", ".join(f"{k} {float(np.abs(np.asarray(steps_fn[k]()) - want).max()):.2e}"
                                                   for k in ("int", "ours")))
for n in (1, 4):
    times = {k: [] for k in KINDS}
    for r in range(draws):
        for kind in (list(KINDS) if r % 2 == 0 else list(KINDS)[::-1]):
            t = time.perf_counter(); rts[kind].draw_codes("a red circle", n=n, seed=1); times[kind].append(time.perf_counter() - t)
    print(f"draw --n {n} s: " + " | ".join(f"{k} " + " ".join(f"{x:.2f}" for x in v) + f" (median {statistics.median(v):.2f})"
                                          for k, v in times.items()), flush=True)
