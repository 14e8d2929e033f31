"""Held-out ShapesWorld evaluation of a training checkpoint, in PyTorch.

A monitor for training runs (the runtime has its own samplers); it decodes with the model's
fused KV buffers exactly as the exported graphs will: each call returns the new K/V and
this module writes them at `pos`.

    caption:  prefill <BOI> img <EOI> <prompt>, then greedy tokens until eos
    draw:     cond rows <prompt><BOI> and null rows <pad..><BOI> as one batch of 2B;
              per cell, D depth steps; logits mix as uncond + s * (cond - uncond)
"""

from __future__ import annotations

import numpy as np
import torch
from tokenizers import Tokenizer

from ..data import scoring
from ..data import shapes_world as sw
from ..model.unifork import UniFork
from .tokenizer import CAPTION_PROMPT, EOS, encode
from .vq import to_pixels, to_uint8


def _write(buf: torch.Tensor, new: torch.Tensor, pos: int) -> None:
    """The one write into a fused buffer (L, 2, B, Hkv, S, Dh) at slots [pos, pos + T)."""
    buf[:, :, :, :, pos:pos + new.shape[4]] = new


@torch.no_grad()
def greedy_captions(model: UniFork, tok: Tokenizer, images: np.ndarray, max_new: int = 32) -> list[str]:
    """images (B, S, S, 3) uint8 -> one caption each (greedy)."""
    dev = model.boi.device
    B = len(images)
    codes = model.encode_image(to_pixels(images, dev))  # (B, N, D)
    prompt = torch.tensor(encode(tok, CAPTION_PROMPT), device=dev)[None].expand(B, -1)
    x = torch.cat([model.boi.expand(B, 1, -1), model.image_embeds(codes), model.eoi.expand(B, 1, -1),
                   model.text_embeds(prompt)], dim=1)  # (B, T0, H)
    S = x.shape[1] + max_new
    kv_t, kv_u = model.trunk.empty_kv(B, S, device=dev), model.und.empty_kv(B, S, device=dev)
    start = torch.zeros(B, dtype=torch.int64, device=dev)
    eos = tok.token_to_id(EOS)
    out, done, pos = [], torch.zeros(B, dtype=torch.bool, device=dev), 0
    for _ in range(max_new):
        p = torch.tensor(pos, device=dev)
        h, new = model.trunk_forward(x, kv_t, p, start)
        _write(kv_t, new, pos)
        logits, new = model.und_logits(h, kv_u, p, start)
        _write(kv_u, new, pos)
        pos += x.shape[1]
        nxt = logits.argmax(-1)  # (B,)
        out.append(torch.where(done, eos, nxt))
        done |= nxt == eos
        if bool(done.all()):
            break
        x = model.text_embeds(nxt[:, None])
    ids = torch.stack(out, 1).tolist()
    return [tok.decode(row[:row.index(eos)] if eos in row else row) for row in ids]


@torch.no_grad()
def draw(model: UniFork, tok: Tokenizer, prompts: list[str], generator: torch.Generator,
         cfg_scale: float = 2.0, temperature: float = 1.0, top_k: int | None = None,
         top_p: float = 1.0) -> np.ndarray:
    """prompts -> images (B, S, S, 3) uint8, sampled with classifier-free guidance
    (top_k: sample among the k most likely codes only; None: all; top_p: among the smallest
    set of likeliest codes whose probability reaches top_p, as runtime/sampling.py; 1: all)."""
    dev = model.boi.device
    cfg = model.cfg
    B, N, D = len(prompts), cfg.image.num_cells, cfg.image.depth
    ids = [encode(tok, p) for p in prompts]
    P = max(len(x) for x in ids)
    pad = tok.token_to_id(EOS)
    rows = torch.full((2 * B, P), pad, dtype=torch.int64)
    start = torch.full((2 * B,), P, dtype=torch.int64)  # rows B.. stay null prompts
    for b, x in enumerate(ids):
        start[b] = P - len(x)
        rows[b, start[b]:] = torch.tensor(x, dtype=torch.int64)
    rows, start = rows.to(dev), start.to(dev)
    x = torch.cat([model.text_embeds(rows), model.boi.expand(2 * B, 1, -1)], dim=1)  # (2B, P+1, H)
    S = P + N
    kv_t, kv_g = model.trunk.empty_kv(2 * B, S, device=dev), model.gen.empty_kv(2 * B, S, device=dev)
    codes = torch.zeros(2 * B, N, D, dtype=torch.int64, device=dev)
    pos = 0
    for n in range(N):
        p = torch.tensor(pos, device=dev)
        h, new = model.trunk_forward(x, kv_t, p, start)
        _write(kv_t, new, pos)
        h, new = model.gen_hidden(h, kv_g, p, start)
        _write(kv_g, new, pos)
        pos += x.shape[1]
        hidden = h[:, -1]  # (2B, H)
        kv_h = model.head.empty_kv(2 * B, D, device=dev)
        cell = torch.zeros(2 * B, D, dtype=torch.int64, device=dev)
        for d in range(D):
            logits, new = model.head_logits(hidden, cell, kv_h, torch.tensor(d, device=dev))
            _write(kv_h, new, d)
            cond, uncond = logits[:B].float(), logits[B:].float()
            mixed = uncond + cfg_scale * (cond - uncond)  # (B, K)
            if top_k is not None and top_k < mixed.shape[-1]:
                kth = torch.topk(mixed, top_k, dim=-1).values[:, -1:]  # (B, 1)
                mixed = mixed.masked_fill(mixed < kth, float("-inf"))
            probs = torch.softmax(mixed / temperature, dim=-1)
            if top_p < 1:
                probs = _nucleus(probs, top_p)
            c = torch.multinomial(probs.cpu(), 1, generator=generator)[:, 0].to(dev)
            cell[:, d] = c.repeat(2)  # the sampled code goes to both rows
        codes[:, n] = cell
        x = model.image_embeds(cell[:, None])  # (2B, 1, H)
    return to_uint8(model.decode_codes(codes[:B]))


def _nucleus(probs: torch.Tensor, top_p: float) -> torch.Tensor:
    """probs (B, K) -> renormalised probs of the smallest prefix (likeliest first) whose mass reaches top_p."""
    sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)
    drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    probs = probs.masked_fill(drop, 0.0)
    return probs / probs.sum(-1, keepdim=True)


def caption_eval(model: UniFork, tok: Tokenizer, n: int = 300, seed: int = 0) -> dict:
    """caption_report over n held-out scenes."""
    scenes = sw.held_out_scenes(n, seed)
    preds = []
    for i in range(0, n, 100):
        part = scenes[i:i + 100]
        preds += greedy_captions(model, tok, np.stack([sw.render(s) for s in part]))
    return scoring.caption_report(preds, scenes)


def draw_eval(model: UniFork, tok: Tokenizer, n_per_category: int = 20, seed: int = 0,
              cfg_scale: float = 2.0, temperature: float = 1.0, top_k: int | None = None, top_p: float = 1.0) -> dict:
    """draw_report over n_per_category held-out prompts of each of the six categories."""
    examples = sw.held_out_prompts(n_per_category, seed)
    prompts = [e.prompt for e in examples]
    g = torch.Generator().manual_seed(seed)
    images = np.concatenate([draw(model, tok, prompts[i:i + 60], g, cfg_scale, temperature, top_k, top_p)
                             for i in range(0, len(prompts), 60)])
    report = scoring.draw_report(prompts, images)
    report.update(cfg_scale=cfg_scale, temperature=temperature, top_k=top_k, top_p=top_p)
    return report
