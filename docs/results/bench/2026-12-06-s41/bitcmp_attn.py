"""Our attention kernel from two builds of the library (OLD.so NEW.so), called directly on the same inputs: same bits?
Both ISAs, groups 7, 1, 5, 3 and 2, 1 / 3 / 17 new tokens, masked and NaN rows. python bitcmp_attn.py OLD.so NEW.so"""
import ctypes
import sys

import numpy as np

sys.path.insert(0, "tests")
from test_attention_kernel import run_kernel  # noqa: E402

libs = [ctypes.CDLL(p) for p in sys.argv[1:3]]
for lib in libs:
    lib.uk_attn_scratch_floats.restype = ctypes.c_size_t
rng = np.random.default_rng(0)
n_cmp = 0
for isa in (1, 2):
    for G, hkv, dh, rot in ((7, 2, 64, True), (1, 8, 112, False), (5, 2, 64, True), (3, 2, 40, True), (2, 2, 128, False)):
        for T in (1, 3, 17):
            hq, cap, B = G * hkv, 64, 3
            past = np.array([0, 20, cap - T], np.int64)
            qkv = rng.standard_normal((B, T, (hq + 2 * hkv) * dh), dtype=np.float32)
            kc0 = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
            vc0 = rng.standard_normal((B, hkv, cap, dh), dtype=np.float32)
            ang = np.arange(cap)[:, None] / 10000 ** (np.arange(dh // 2) / (dh // 2))
            cos, sin = np.cos(ang).astype(np.float32), np.sin(ang).astype(np.float32)
            bias = rng.standard_normal((B, hq, T, cap)).astype(np.float32)
            bias[1, 0] = -np.inf
            bias[2, hq - 1, :, 0] = np.nan
            outs = []
            for lib in libs:
                kc, vc = kc0.copy(), vc0.copy()
                out = run_kernel(lib, isa, qkv, kc, vc, past, hq, hkv, cos if rot else None, sin if rot else None,
                                 bias, chunk=16)
                outs.append((out, kc, vc))
            assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(*outs)), (isa, G, dh, T)
            n_cmp += 1
print(f"same bits in {n_cmp} cases (isa avx2 and avx512; groups 7, 1, 5, 3, 2; T 1, 3, 17; masked and NaN rows)")
