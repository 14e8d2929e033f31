"""PyTorch reference loops for caption and draw, used by the parity tests.

Deliberately the slow, obvious way: no KV cache, every step recomputes the whole sequence
with an empty buffer, and the depth head is teacher-forced over the codes so far. Sampling
uses the runtime's numpy sampler with the same seed, so equal logits give equal tokens.
"""

from __future__ import annotations

import numpy as np
import torch

from ..runtime.sampling import Sampling, cfg_mix, sample
from .unifork import UniFork


def _zero():
    return torch.zeros((), dtype=torch.int64)


@torch.no_grad()
def caption_ids(model: UniFork, pixels: torch.Tensor, prompt_ids: list[int], max_new_tokens: int,
                sampling: Sampling = Sampling(temperature=0.0), seed: int = 0) -> list[list[int]]:
    """pixels (B, 3, P, P) -> token ids per row (without eos)."""
    rng = np.random.default_rng(seed)
    B = pixels.shape[0]
    codes = model.encode_image(pixels)
    prefix = torch.cat([model.boi.expand(B, 1, -1), model.image_embeds(codes), model.eoi.expand(B, 1, -1),
                        model.text_embeds(torch.tensor([prompt_ids] * B, dtype=torch.int64))], 1)
    start = torch.zeros(B, dtype=torch.int64)
    out = [[] for _ in range(B)]
    done = np.zeros(B, dtype=bool)
    eos = model.cfg.eos_token_id
    gen = torch.empty(B, 0, dtype=torch.int64)
    for _ in range(max_new_tokens):
        x = torch.cat([prefix, model.text_embeds(gen)], 1)
        h, _ = model.trunk_forward(x, model.trunk.empty_kv(B), _zero(), start)
        logits, _ = model.und_logits(h, model.und.empty_kv(B), _zero(), start)
        tok = np.where(done, eos, sample(logits.numpy(), sampling, rng))
        for b in range(B):
            if not done[b] and tok[b] != eos:
                out[b].append(int(tok[b]))
        done |= tok == eos
        if done.all():
            break
        gen = torch.cat([gen, torch.from_numpy(tok)[:, None]], 1)
    return out


@torch.no_grad()
def draw_codes(model: UniFork, prompt_ids: list[int], n: int, cfg_scale: float, sampling: Sampling,
               seed: int = 0) -> np.ndarray:
    """Codes (n, N, D) for one prompt, cond rows then uncond (null prompt, left-padded) rows."""
    rng = np.random.default_rng(seed)
    im = model.cfg.image
    N, D, P = im.num_cells, im.depth, len(prompt_ids)
    guided = cfg_scale != 1.0
    B = 2 * n if guided else n
    ids = torch.tensor([prompt_ids] * B, dtype=torch.int64).reshape(B, P)
    start = torch.zeros(B, dtype=torch.int64)
    if guided:
        ids[n:] = model.cfg.pad_token_id
        start[n:] = P
    codebook = model.image_tokenizer.codebook
    codes = torch.zeros(B, N, D, dtype=torch.int64)
    for cell in range(N):
        x = torch.cat([model.text_embeds(ids), model.boi.expand(B, 1, -1), model.image_embeds(codes[:, :cell])], 1)
        h, _ = model.trunk_forward(x, model.trunk.empty_kv(B), _zero(), start)
        hidden, _ = model.gen_hidden(h, model.gen.empty_kv(B), _zero(), start)
        hidden = hidden[:, -1]
        for d in range(D):
            logits = model.head.forward_train(hidden, codes[:, cell], codebook)[:, d].numpy()
            mixed = cfg_mix(logits, cfg_scale) if guided else logits
            tok = sample(mixed, sampling, rng)
            codes[:, cell, d] = torch.from_numpy(np.concatenate([tok, tok]) if guided else tok)
    return codes[:n].numpy()
