"""The packed GEMM of the library at 62c0116 (path as argv[1], built from its sources) against this tree's, on 8 shapes, both ISAs: bitwise."""
import ctypes, sys, numpy as np
sys.path.insert(0, "/work/main/tests")
from test_qmatmul import Shape, matmulnbits_weights
from unifork_rt.runtime import qmatmul
libs = {"old": ctypes.CDLL(sys.argv[1]), "new": ctypes.CDLL(str(qmatmul.build()[0]))}
ptr = lambda x: x.ctypes.data_as(ctypes.c_void_p)
worst = 0
for bits, block, k, n, m in [(4,128,896,1152,1),(4,128,3584,896,8),(4,32,896,4864,2),(8,32,896,1152,1),(8,32,3584,896,8),(4,128,200,40,13),(8,32,200,40,5),(4,128,896,1136,9)]:
    rng = np.random.default_rng(k+n+m); b, scales, q, zp = matmulnbits_weights(rng, k, n, bits, block)
    a = rng.standard_normal((m, k)).astype(np.float32); bias = rng.standard_normal(n).astype(np.float32)
    outs = {}
    for name, lib in libs.items():
        for f in ("uk_packed_bytes", "uk_packed_scales", "uk_scratch_bytes"): getattr(lib, f).restype = ctypes.c_size_t
        s = Shape(bits, block, k, n, q.shape[1], -(-n // 16) * 16)
        w = np.zeros(lib.uk_packed_bytes(ctypes.byref(s)), np.uint8); ws = np.zeros(lib.uk_packed_scales(ctypes.byref(s)), np.float32)
        lib.uk_pack(ctypes.byref(s), ptr(b), ptr(scales), ptr(w), ptr(ws))
        scr = np.zeros(lib.uk_scratch_bytes(ctypes.byref(s), ctypes.c_int64(m)), np.uint8); lib.uk_quantize(ctypes.byref(s), ptr(a), ctypes.c_int64(m), ptr(scr))
        for isa in (1, 2):
            c = np.full((m, n), np.nan, np.float32); G = s.np // 16
            for g0, g1 in ((0, G // 2), (G // 2, G)):
                lib.uk_gemm(ctypes.byref(s), ptr(scr), ctypes.c_int64(m), ptr(w), ptr(ws), ptr(bias), ptr(c), ctypes.c_int64(g0), ctypes.c_int64(g1), ctypes.c_int(isa))
            outs[(name, isa)] = c
    for isa in (1, 2):
        same = np.array_equal(outs[("old", isa)], outs[("new", isa)])
        print(bits, block, k, n, m, "isa", isa, "bitwise equal" if same else f"DIFF {np.abs(outs[('old', isa)] - outs[('new', isa)]).max():.3e}")
