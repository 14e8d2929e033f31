# Odd shapes through ONNX Runtime, ours vs its own MatMulNBits: K < block, N = 1, 0 rows, all-zero rows, inputs scaled 1e-3..1e3
# python docs/results/bench/2026-12-03-qmatmul/fuzz.py   ->  "960 cases, worst rel diff ours vs ORT 1.60e-06; ORT itself refused 0 models"
import sys, numpy as np, onnxruntime as ort
sys.path.insert(0, "tests")
from test_qmatmul import matmulnbits_model
from unifork_rt.runtime import qmatmul
lib = str(qmatmul.build()[0]); rng = np.random.default_rng(7); worst = 0; n_cases = 0; refused = []
for bits in (4, 8):
    for block in (16, 32, 64):
        for K in (8, 16, 17, 31, 100):
            for N in (1, 3, 17, 33):
                for bias in (False, True):
                    m = matmulnbits_model(rng, K, N, bits, block, bias)
                    try:
                        sp = ort.InferenceSession(m)
                    except Exception as e:
                        refused.append(("ort", bits, block, K, N)); continue
                    o = ort.SessionOptions(); o.register_custom_ops_library(lib)
                    so = ort.InferenceSession(m, o)
                    for rows in (0, 1, 3, 9):
                        a = (rng.standard_normal((1, rows, K)) * rng.choice([1e-3, 1, 1e3])).astype(np.float32)
                        if rows and rng.random() < 0.2: a[0, 0] = 0  # an all-zero row
                        w, g = sp.run(None, {"A": a})[0], so.run(None, {"A": a})[0]
                        assert w.shape == g.shape, (w.shape, g.shape)
                        if rows:
                            d = float(np.abs(w - g).max() / (np.abs(w).max() + 1e-30)); worst = max(worst, d)
                        n_cases += 1
print(f"{n_cases} cases, worst rel diff ours vs ORT {worst:.2e}; ORT itself refused {len(refused)} models")
