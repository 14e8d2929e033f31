"""ours fp32 caption prefill (trunk + und_branch over the 297-row caption sequence) and llama-bench -p 297 -n 0,
alternately; python pre_ab.py BUNDLE GGUF ROUNDS"""
import subprocess, sys, time, json, numpy as np
from unifork_rt.runtime.pipeline import UniForkRuntime, CAPTION_PROMPT
bundle, gguf, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
rt = UniForkRuntime(bundle, backend="ort-cpu", verify=False)
be = rt.backend
P = rt.cfg.image.image_size
pix = np.random.default_rng(0).uniform(-1, 1, (1, 3, P, P)).astype(rt.bundle.float_dtype)
emb = be.run("connector", {"codes": be.run("vision_encoder", {"pixels": pix})["codes"]})["embeds"]
x = rt.caption_prefill(emb, rt.encode_text(CAPTION_PROMPT))
caches = (be.new_cache("trunk", 1), be.new_cache("und_branch", 1)); start = np.zeros(1, np.int64)
rt.step(x, caches, 0, start, "und_branch")
cmd = ["runs/bench3/llamacpp/0.3.36/build/bin/llama-bench", "-m", gguf, "-p", str(x.shape[1]), "-n", "0", "-t", "2", "-r", "1", "-o", "json"]
for r in range(rounds):
    ts = []
    for _ in range(2):
        t = time.perf_counter(); rt.step(x, caches, 0, start, "und_branch"); ts.append(time.perf_counter() - t)
    out = subprocess.run(cmd, capture_output=True, text=True).stdout
    ll = json.loads(out[out.find("["):])[0]["samples_ns"][0] / 1e9
    print(f"round {r}: ours {min(ts)*1e3:.0f} ms ({x.shape[1]} rows)  llama.cpp {ll*1e3:.0f} ms  ratio {min(ts)/ll:.2f}", flush=True)
