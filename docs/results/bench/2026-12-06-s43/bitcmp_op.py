"""GroupQueryAttention through ONNX Runtime with two builds of our library (OLD.so NEW.so): the same bits in the
output and the in-place caches? Steps (a task holds one pair or several, by the work and the thread count) and
prompts of 3 and 16 tokens (one pair a task), 1, 2, 8 and 9 rows, the depth head's and the decoders' head layouts,
1 and 2 threads, both ISAs (UNIFORK_RT_ISA=avx2 for the second run).
python bitcmp_op.py OLD.so NEW.so"""
import sys
import numpy as np
sys.path.insert(0, "tests")
from test_attention_kernel import bind_shared, gqa_feeds, gqa_model, gqa_session  # noqa: E402

cases = [(32, 32, 112, 8, False, False), (14, 2, 64, 512, True, True), (14, 2, 64, 40, True, False),
         (4, 4, 24, 9, False, True)]
n = same = 0
for hq, hkv, dh, cap, rot, bias in cases:
    model = gqa_model(hq, hkv, dh, cap, rot, bias)
    for B, T, pos, threads in [(1, 1, 2, 2), (2, 1, 3, 2), (8, 1, 2, 2), (9, 1, 5, 1), (8, 3, 0, 2), (2, 16, 1, 2)]:
        if pos + T > cap:
            continue
        outs = []
        for lib in sys.argv[1:3]:
            feeds = gqa_feeds(np.random.default_rng(7), hq, hkv, dh, cap, rot, bias, B, T, pos)
            sess = gqa_session(model, lib, threads)
            io = bind_shared(sess, feeds)
            sess.run_with_iobinding(io)
            outs.append([io.get_outputs()[0].numpy(), feeds["pk"], feeds["pv"]])
        eq = all(np.array_equal(a, b, equal_nan=True) for a, b in zip(*outs))
        n += 1
        same += eq
        if not eq:
            print("DIFFER", hq, hkv, dh, cap, B, T, pos, threads)
print(f"{same} of {n} cases bitwise equal")
