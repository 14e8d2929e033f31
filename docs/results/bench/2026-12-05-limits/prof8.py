"""ONNX Runtime's profiler on one decode step of trunk, gen_branch, rq_head (or the graphs named) at the batches
named, in a session with our kernel library registered, as the runtime makes it since 39ee43c (pos 150):
PYTHONPATH=. python prof8.py BUNDLE [BATCHES, default 2,8] [GRAPHS]"""
import sys, json, os, tempfile
from pathlib import Path
import onnxruntime as ort
from benchmarks.profile import runner, summarize, decode_feeds
from unifork_rt.runtime.bundle import load_bundle
from unifork_rt.runtime.ort_backend import session_options
from unifork_rt.runtime.qmatmul import build, set_session_threads
lib = str(build()[0])
b = load_bundle(sys.argv[1], verify=False)
Bs = [int(x) for x in sys.argv[2].split(",")] if len(sys.argv) > 2 else [2, 8]
for g in (sys.argv[3].split(",") if len(sys.argv) > 3 else ("trunk", "gen_branch", "rq_head")):
    for B in Bs:
        with tempfile.TemporaryDirectory() as tmp:
            set_session_threads(Path(lib), 2)
            opts = session_options(ort, 2, spin=True); opts.register_custom_ops_library(lib)
            opts.enable_profiling = True; opts.profile_file_prefix = os.path.join(tmp, "ort")
            s = ort.InferenceSession(str(b.graphs[g].path), sess_options=opts, providers=["CPUExecutionProvider"])
            f = decode_feeds(b, g, B)
            if "pos" in f and g != "rq_head": f["pos"][...] = 150
            step = runner(s, f)
            for _ in range(22): step()
            r = summarize(json.loads(Path(s.end_profiling()).read_text()), 20)
        print(g, B, f"run {r['run_ms']:.2f} kernel {r['kernel_ms']:.2f} matmul {r['matmul_ms']:.2f} glue {r['glue_ms']:.2f}",
              " ".join(f"{t['op']}:{t['ms_per_run']:.2f}" for t in r['top_ops'][:7]), flush=True)
