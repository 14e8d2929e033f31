import json, sys, time
from unifork_rt.benchmarks import interleave
W = "runs/bench3"
pairs = [{"precision": p, "graphs": "ort", "gguf": interleave.PAIRINGS[p], "bundle": f"{W}/paper/bundle-{p}-ort"}
         for p in sys.argv[2].split(",")]
t0 = time.time()
out = interleave.run_unit({"pairs": pairs, "rounds": int(sys.argv[3]), "work": W, "prompt_len": 297, "new_tokens": 32,
                           "repeats": 2, "warmup": 1, "threads": 2})
out["wall_s"] = time.time() - t0
json.dump(out, open(sys.argv[1], "w"), indent=1)
for p in out["pairs"]:
    print(p["precision"], p["gguf"], " ".join(f"{r['ours_s']*1e3:.1f}/{r['peer_s']*1e3:.1f}={r['ratio']:.2f}@{max(r['bandwidth_before'],r['bandwidth_after'])/1e9:.0f}" for r in p["rounds"]), "median %.2f" % p["ratio_median"])
print("wall", out["wall_s"])
