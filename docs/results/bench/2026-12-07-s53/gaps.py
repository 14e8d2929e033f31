"""Where a decode graph's run - kernel time goes: the gaps between node events inside one model_run, in the session
benchmarks/profile.py makes (8 runs, the last one read). usage: python gaps.py BUNDLE GRAPH  (from the repository
root; UNIFORK_RT_ORT_POOL=shared for the shared pool the bench's workers use). Prints; this folder's gaps.txt."""
import json, os, sys, tempfile
from pathlib import Path
import numpy as np
sys.path.insert(0, ".")
from benchmarks import profile as P
from unifork_rt.runtime.bundle import load_bundle

b = load_bundle(sys.argv[1]); graph = sys.argv[2]
feeds = P.decode_feeds(b, graph, 1)
with tempfile.TemporaryDirectory() as tmp:
    be = P._backend(b, spin=True, profile_prefix=os.path.join(tmp, "ort"))
    sess = be.session(graph); step = P.runner(sess, feeds)
    for _ in range(8): step()
    tr = json.loads(Path(sess.end_profiling()).read_text())
    be.close()
runs = [e for e in tr if e.get("cat") == "Session" and e.get("name") == "model_run"]
last = runs[-1]; t0, t1 = last["ts"], last["ts"] + last["dur"]
nodes = sorted([e for e in tr if e.get("cat") == "Node" and t0 <= e["ts"] <= t1], key=lambda e: e["ts"])
print("run us", last["dur"], "events", len(nodes))
ker = [e for e in nodes if e["name"].endswith("_kernel_time")]
print("kernel us", sum(e["dur"] for e in ker))
gaps = []; prev = t0
for e in ker:
    gaps.append((e["ts"] - prev, e["name"], e["args"].get("op_name"))); prev = e["ts"] + e["dur"]
gaps.append((t1 - prev, "END", ""))
print("sum gaps", sum(g[0] for g in gaps))
for g in sorted(gaps, reverse=True)[:12]: print(g)
kinds = {}
for e in nodes:
    kinds.setdefault(e["name"].split("_")[-2] + "_" + e["name"].split("_")[-1], []).append(e["dur"])
for k, v in kinds.items(): print(k, len(v), sum(v))
top = sorted(ker, key=lambda e: -e["dur"])[:6]
for e in top: print(e["name"], e["args"].get("op_name"), e["dur"])
