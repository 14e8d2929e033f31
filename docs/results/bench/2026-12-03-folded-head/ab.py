"""rq_head before/after folding: step time at B=2 and B=8 (interleaved rounds, median), and each
graph's logits against the PyTorch head (fp32, the unfolded model): relative RMS error."""
import sys, time, statistics, numpy as np, onnxruntime as ort
from unifork_rt.benchmarks.profile import decode_feeds
from unifork_rt.runtime.bundle import load_bundle
old, new, model_dir = sys.argv[1:4]
sess, feeds = {}, {}
for label, path in (("unfolded", old), ("folded", new)):
    b = load_bundle(path, verify=False)
    so = ort.SessionOptions(); so.intra_op_num_threads = 2; so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # two sessions in one process
    sess[label] = ort.InferenceSession(str(b.graphs["rq_head"].path), so, providers=["CPUExecutionProvider"])
    feeds[label] = {B: decode_feeds(b, "rq_head", B) for B in (2, 8)}
times = {(l, B): [] for l in sess for B in (2, 8)}
for r in range(12):
    for l in sess:
        for B in (2, 8):
            f = feeds[l][B]
            if r == 0:
                sess[l].run(None, f)
            t = time.perf_counter(); sess[l].run(None, f); times[(l, B)].append(time.perf_counter() - t)
for (l, B), ts in times.items():
    print(f"rq_head {l:9s} B={B}: median {statistics.median(ts)*1e3:.1f} ms, min {min(ts)*1e3:.1f}")
if model_dir != "-":
    import torch
    from unifork_rt.model.checkpoint import load_model
    m = load_model(model_dir).eval()
    g = torch.Generator().manual_seed(0)
    cfg = m.cfg
    D = cfg.image.depth
    hidden = torch.randn(2, cfg.text.hidden_size, generator=g)
    codes = torch.randint(0, cfg.image.codebook_size, (2, D), generator=g)
    err = {l: [] for l in sess}
    kv = m.head.empty_kv(2, D)
    for d in range(D):
        p = torch.tensor(d)
        with torch.no_grad():
            want, want_kv = m.head_logits(hidden, codes, kv, p)
        for l, s in sess.items():
            got = s.run(["logits"], {"hidden": hidden.numpy(), "codes": codes.numpy(), "kv": kv.numpy(), "pos": p.numpy()})[0]
            err[l].append(float(np.sqrt(((got - want.numpy()) ** 2).mean() / (want.numpy() ** 2).mean())))
        kv[..., d:d + 1, :] = want_kv
    for l, e in err.items():
        print(f"rq_head {l:9s} logits vs PyTorch fp32, relative RMS error per depth: " + ", ".join(f"{x:.4f}" for x in e))
