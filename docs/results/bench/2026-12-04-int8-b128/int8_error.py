"""Relative RMS error of symmetric round-to-nearest block quantization (blocks along K) over the shipped
model's weight matrices (2-D, both sides >= 64; embeddings and the image codebook left out), int8 and int4 at blocks of 32 / 64 / 128.

    python docs/results/bench/2026-12-04-int8-b128/int8_error.py
"""
import numpy as np
from safetensors.numpy import load_file

from unifork_rt import assets

w = load_file(str(assets.default_model_dir() / "checkpoint" / "model.safetensors"))
mats = [v.astype(np.float64) for k, v in w.items() if v.ndim == 2 and min(v.shape) >= 64 and "embed" not in k
        and not k.startswith("image_tokenizer")]  # the codebook stays float


def err(W, block, bits):  # W: [N, K] (a Linear's weight): blocks along K, K padded with zeros
    N, K = W.shape
    X = np.zeros((N, -(-K // block) * block))
    X[:, :K] = W
    X = X.reshape(N, -1, block)
    qmax = (1 << (bits - 1)) - 1
    amax = np.abs(X).max(-1, keepdims=True)
    s = np.where(amax > 0, amax / qmax, 1.0)
    q = np.clip(np.rint(X / s), -qmax - 1, qmax) * s
    return ((q - X) ** 2).sum(), (X ** 2).sum()


print(len(mats), "matrices")
for bits in (8, 4):
    for block in (32, 64, 128):
        e, t = map(sum, zip(*(err(W, block, bits) for W in mats)))
        print(f"int{bits} blocks of {block}: relative RMS error {np.sqrt(e / t) * 100:.2f}%")
