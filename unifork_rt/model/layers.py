"""Qwen2 decoder blocks with the fused-KV-cache calling convention.

Every attention stack takes the WHOLE preallocated buffer of its layers and returns only
the new K/V slices of this step; whoever owns the buffer writes them at `pos`. Training
is the same code with an empty buffer (S = 0, pos = 0), so the exported graphs and the
trained model cannot drift apart.

    kv      (L, 2, B, Hkv, S, Dh)   read whole; slots [start[b], pos) are valid
    pos     ()   int64              absolute position of the first new token
    start   (B,) int64              first valid slot per row (left padding before it)
    kv_new  (L, 2, B, Hkv, T, Dh)   returned: K and V of the T new tokens

Rows are left-padded so that cond and uncond prompts of different lengths share one
write position (classifier-free guidance runs them as one batch). RoPE positions count
from each row's own start, so padding changes nothing the model sees.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import TextConfig


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


def attention_mask(kv_len: int, T: int, pos: torch.Tensor, start: torch.Tensor) -> torch.Tensor:
    """Which keys each new query may see: bool (B, 1, T, S + T).

    Buffer slot j is valid when start[b] <= j < pos; new key i' when i' <= i (causal) and
    it is not left padding (pos + i' >= start[b]).
    """
    device = start.device
    j = torch.arange(kv_len, device=device)
    buf = (j[None, :] >= start[:, None]) & (j[None, :] < pos)  # (B, S)
    i = torch.arange(T, device=device)
    causal = i[None, :] <= i[:, None]  # (T, T)
    not_pad = (pos + i)[None, :] >= start[:, None]  # (B, T)
    new = causal[None] & not_pad[:, None, :]  # (B, T, T)
    mask = torch.cat([buf[:, None, :].expand(-1, T, -1), new], dim=-1)  # (B, T, S + T)
    return mask[:, None]


def rope_cos_sin(T: int, pos: torch.Tensor, start: torch.Tensor, head_dim: int, theta: float,
                 dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin (B, 1, T, Dh) for positions pos + i - start[b] (clamped at 0 in the padding)."""
    device = start.device
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    p = (pos + torch.arange(T, device=device))[None, :] - start[:, None]  # (B, T)
    p = p.to(torch.float32).clamp(min=0)  # clamp as float: TensorRT's Clip is listed for float types only
    freqs = p[..., None] * inv_freq  # (B, T, Dh/2)
    emb = torch.cat([freqs, freqs], dim=-1)[:, None]  # (B, 1, T, Dh)
    return emb.cos().to(dtype), emb.sin().to(dtype)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat([-x[..., half:], x[..., :half]], dim=-1)


# The fill for masked scores: the most negative float16 number. finfo(float32).min would become
# -inf when a float32 graph runs in half precision (TensorRT --fp16), and a query row with every
# key masked (the left padding of the unguided rows) would then softmax to NaN, which reaches the
# KV written at padding slots and, as 0 x NaN, every later step. Finite, it gives those rows a
# harmless uniform average; elsewhere exp(-65504 - max) underflows to exactly 0 as before.
MASK_FILL = -65504.0


def mask_fill(dtype: torch.dtype) -> float:
    """MASK_FILL, or the dtype's own minimum where that is larger (finite in every float dtype)."""
    return max(MASK_FILL, torch.finfo(dtype).min)


def grouped_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax attention with grouped K/V heads, without expanding K/V in memory.

    q (B, Hq, T, Dh); k, v (B, Hkv, S', Dh); mask bool (B, 1, T, S') -> (B, Hq, T, Dh)
    """
    B, Hq, T, Dh = q.shape
    Hkv = k.shape[1]
    G = Hq // Hkv
    q = q.reshape(B, Hkv, G * T, Dh)  # query head h uses K/V head h // G
    scores = torch.matmul(q, k.transpose(-1, -2)) * (Dh ** -0.5)  # (B, Hkv, G*T, S')
    scores = scores.reshape(B, Hkv, G, T, -1)
    scores = scores.masked_fill(~mask[:, :, None], mask_fill(scores.dtype))  # mask (B, 1, 1, T, S')
    probs = torch.softmax(scores.float(), dim=-1).to(v.dtype).reshape(B, Hkv, G * T, -1)
    out = torch.matmul(probs, v)  # (B, Hkv, G*T, Dh)
    return out.reshape(B, Hq, T, Dh)


class Attention(nn.Module):
    """Qwen2 attention: q/k/v with bias, o without; RoPE; grouped-query K/V."""

    def __init__(self, cfg: TextConfig):
        super().__init__()
        H, Dh = cfg.hidden_size, cfg.head_dim
        self.num_heads, self.num_kv_heads, self.head_dim = cfg.num_heads, cfg.num_kv_heads, Dh
        self.q_proj = nn.Linear(H, cfg.num_heads * Dh, bias=True)
        self.k_proj = nn.Linear(H, cfg.num_kv_heads * Dh, bias=True)
        self.v_proj = nn.Linear(H, cfg.num_kv_heads * Dh, bias=True)
        self.o_proj = nn.Linear(cfg.num_heads * Dh, H, bias=False)

    def forward(self, x, past_k, past_v, cos, sin, mask):
        """x (B, T, H); past_k/v (B, Hkv, S, Dh) -> out (B, T, H), k_new, v_new (B, Hkv, T, Dh)."""
        B, T, _ = x.shape
        q = self.q_proj(x).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, Hq, T, Dh)
        k = self.k_proj(x).view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)  # (B, Hkv, T, Dh)
        v = self.v_proj(x).view(B, T, self.num_kv_heads, self.head_dim).transpose(1, 2)
        q = q * cos + _rotate_half(q) * sin
        k = k * cos + _rotate_half(k) * sin
        keys = torch.cat([past_k, k], dim=2)  # (B, Hkv, S + T, Dh)
        values = torch.cat([past_v, v], dim=2)
        out = grouped_attention(q, keys, values, mask)  # (B, Hq, T, Dh)
        out = out.transpose(1, 2).reshape(B, T, -1)
        return self.o_proj(out), k, v


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    def __init__(self, hidden: int, intermediate: int):
        super().__init__()
        self.gate_proj = nn.Linear(hidden, intermediate, bias=False)
        self.up_proj = nn.Linear(hidden, intermediate, bias=False)
        self.down_proj = nn.Linear(intermediate, hidden, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class DecoderLayer(nn.Module):
    def __init__(self, cfg: TextConfig):
        super().__init__()
        self.input_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.self_attn = Attention(cfg)
        self.post_attention_layernorm = RMSNorm(cfg.hidden_size, cfg.rms_norm_eps)
        self.mlp = MLP(cfg.hidden_size, cfg.intermediate_size)

    def forward(self, x, past_k, past_v, cos, sin, mask):
        a, k, v = self.self_attn(self.input_layernorm(x), past_k, past_v, cos, sin, mask)
        x = x + a
        x = x + self.mlp(self.post_attention_layernorm(x))
        return x, k, v


class Stack(nn.Module):
    """A run of decoder layers sharing one fused KV buffer (the trunk, or one branch)."""

    def __init__(self, cfg: TextConfig, num_layers: int):
        super().__init__()
        self.cfg = cfg
        self.layers = nn.ModuleList(DecoderLayer(cfg) for _ in range(num_layers))

    def forward(self, x: torch.Tensor, kv: torch.Tensor, pos: torch.Tensor, start: torch.Tensor):
        """x (B, T, H), kv (L, 2, B, Hkv, S, Dh) -> x (B, T, H), kv_new (L, 2, B, Hkv, T, Dh)."""
        B, T, _ = x.shape
        cos, sin = rope_cos_sin(T, pos, start, self.cfg.head_dim, self.cfg.rope_theta, x.dtype)
        mask = attention_mask(kv.shape[4], T, pos, start)
        new = []
        for i, layer in enumerate(self.layers):
            x, k, v = layer(x, kv[i, 0], kv[i, 1], cos, sin, mask)
            new.append(torch.stack([k, v]))
        if not new:  # an empty branch (fully shared model): nothing to cache
            return x, kv.new_zeros(0, 2, B, kv.shape[3], T, kv.shape[5])
        return x, torch.stack(new)

    def layer_outputs(self, x: torch.Tensor, start: torch.Tensor) -> list[torch.Tensor]:
        """Every layer's output (B, T, H) for a whole sequence (no cache): for analyses."""
        B, T, _ = x.shape
        pos = torch.zeros((), dtype=torch.int64, device=x.device)
        cos, sin = rope_cos_sin(T, pos, start, self.cfg.head_dim, self.cfg.rope_theta, x.dtype)
        mask = attention_mask(0, T, pos, start)
        empty = x.new_zeros(B, self.cfg.num_kv_heads, 0, self.cfg.head_dim)
        outs = []
        for layer in self.layers:
            x, _, _ = layer(x, empty, empty, cos, sin, mask)
            outs.append(x)
        return outs

    def empty_kv(self, B: int, S: int = 0, dtype=torch.float32, device=None) -> torch.Tensor:
        """A zeroed KV buffer (L, 2, B, Hkv, S, Dh); S = 0 is the training (no cache) case."""
        c = self.cfg
        return torch.zeros(len(self.layers), 2, B, c.num_kv_heads, S, c.head_dim, dtype=dtype, device=device)
