"""The connector (codes -> LLM inputs) and the RQ depth head (gen hidden -> codes).

Depth head, per image position, RQ-Transformer style (M = positions, D = depth):

    step 0:  Linear_h(gen hidden)                         ┐
    step d:  Linear_c(sum of code embeddings of depths < d) ├─ + depth_emb[d] ─► causal pre-LN
                                                           ┘   blocks over the D steps ─► LN ─► Linear ─► logits (K)

The head uses the same fused-KV convention as the backbone: its buffer holds the D steps of
one cell, (L_h, 2, B, heads, D, dh), and each step returns only its own K/V.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import HeadConfig
from .layers import attention_mask, grouped_attention


class Connector(nn.Module):
    """Quantized image feature (sum of the D code embeddings) -> LLM input: Linear, GELU, Linear."""

    def __init__(self, codebook_dim: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(codebook_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(feat)))


class HeadAttention(nn.Module):
    """Multi-head attention, optionally at a wider attn_width than the residual width."""

    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.num_heads, self.head_dim = cfg.num_heads, cfg.head_dim
        A = cfg.attn_width
        self.proj_in = nn.Linear(cfg.width, A) if cfg.has_attn_proj else nn.Identity()
        self.q_proj = nn.Linear(A, A)
        self.k_proj = nn.Linear(A, A)
        self.v_proj = nn.Linear(A, A)
        self.o_proj = nn.Linear(A, A)
        self.proj_out = nn.Linear(A, cfg.width) if cfg.has_attn_proj else nn.Identity()

    def forward(self, x, past_k, past_v, mask):
        """x (B, T, W); past_k/v (B, h, S, dh) -> out (B, T, W), k, v (B, h, T, dh)."""
        B, T, _ = x.shape
        a = self.proj_in(x)
        q = self.q_proj(a).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, h, T, dh)
        k = self.k_proj(a).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(a).view(B, T, self.num_heads, self.head_dim).transpose(1, 2)
        out = grouped_attention(q, torch.cat([past_k, k], 2), torch.cat([past_v, v], 2), mask)
        out = out.transpose(1, 2).reshape(B, T, -1)
        return self.proj_out(self.o_proj(out)), k, v


class FoldedHeadAttention(HeadAttention):
    """HeadAttention for inference with its linear maps composed: q/k/v = Linear(W, A) each
    (q_proj ∘ proj_in) and o_proj = Linear(A, W) (proj_out ∘ o_proj), with proj_in / proj_out the
    identity, so HeadAttention.forward runs it. The same function up to float rounding (composed in
    float64), and fewer weights to read when W < 2·A (HeadConfig.folds_attn_proj): the export writes
    the rq_head graph from it (export/graphs.py folded_head)."""

    def __init__(self, attn: HeadAttention):
        nn.Module.__init__(self)  # the layers come from ATTN, composed; none of HeadAttention's own

        def compose(outer: nn.Linear, inner: nn.Linear) -> nn.Linear:
            """outer(inner(x)) = x (Wo Wi)^T + (Wo bi + bo), as one Linear."""
            wo, wi = outer.weight.double(), inner.weight.double()
            lin = nn.Linear(wi.shape[1], wo.shape[0], device=outer.weight.device, dtype=outer.weight.dtype)
            with torch.no_grad():
                lin.weight.copy_(wo @ wi)
                lin.bias.copy_(wo @ inner.bias.double() + outer.bias.double())
            return lin

        self.num_heads, self.head_dim = attn.num_heads, attn.head_dim
        self.proj_in, self.proj_out = nn.Identity(), nn.Identity()
        self.q_proj = compose(attn.q_proj, attn.proj_in)
        self.k_proj = compose(attn.k_proj, attn.proj_in)
        self.v_proj = compose(attn.v_proj, attn.proj_in)
        self.o_proj = compose(attn.proj_out, attn.o_proj)


class HeadBlock(nn.Module):
    def __init__(self, cfg: HeadConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.width)
        self.attn = HeadAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.width)
        self.fc1 = nn.Linear(cfg.width, cfg.mlp_dim)
        self.fc2 = nn.Linear(cfg.mlp_dim, cfg.width)

    def forward(self, x, past_k, past_v, mask):
        a, k, v = self.attn(self.ln1(x), past_k, past_v, mask)
        x = x + a
        x = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        return x, k, v


class DepthHead(nn.Module):
    def __init__(self, cfg: HeadConfig, llm_hidden: int, codebook_dim: int, codebook_size: int, depth: int):
        super().__init__()
        self.cfg, self.depth = cfg, depth
        self.in_hidden = nn.Linear(llm_hidden, cfg.width)
        self.in_code = nn.Linear(codebook_dim, cfg.width)
        self.depth_emb = nn.Parameter(torch.randn(depth, cfg.width) * 0.02)
        self.blocks = nn.ModuleList(HeadBlock(cfg) for _ in range(cfg.num_layers))
        self.ln_f = nn.LayerNorm(cfg.width)
        self.out = nn.Linear(cfg.width, codebook_size)

    def _blocks(self, x, kv, pos):
        """x (B, T, W), kv (Lh, 2, B, h, S, dh) -> logits (B, T, K), kv_new (Lh, 2, B, h, T, dh)."""
        B, T, _ = x.shape
        start = torch.zeros(B, dtype=torch.int64, device=x.device)
        mask = attention_mask(kv.shape[4], T, pos, start)
        new = []
        for i, block in enumerate(self.blocks):
            x, k, v = block(x, kv[i, 0], kv[i, 1], mask)
            new.append(torch.stack([k, v]))
        return self.out(self.ln_f(x)), torch.stack(new)

    def forward_train(self, hidden: torch.Tensor, codes: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
        """Teacher-forced: hidden (M, H), codes (M, D) -> logits (M, D, K) for every depth."""
        M, D = codes.shape
        emb = F.embedding(codes, codebook)  # (M, D, C)
        prefix = torch.cumsum(emb, dim=1)[:, :-1]  # (M, D-1, C): sum of depths < d, for d >= 1
        x = torch.cat([self.in_hidden(hidden)[:, None], self.in_code(prefix)], dim=1) + self.depth_emb[:D]
        kv = hidden.new_zeros(len(self.blocks), 2, M, self.cfg.num_heads, 0, self.cfg.head_dim)
        logits, _ = self._blocks(x, kv, torch.zeros((), dtype=torch.int64, device=hidden.device))
        return logits

    def step(self, hidden, codes, kv, pos, codebook):
        """One depth step. hidden (B, H); codes (B, D) int64, only depths < pos are read;
        kv (Lh, 2, B, h, D, dh); pos () int64 in [0, D) -> logits (B, K), kv_new (Lh, 2, B, h, 1, dh)."""
        D = codes.shape[1]
        seen = (torch.arange(D, device=codes.device) < pos).to(codebook.dtype)  # (D,)
        prefix = (F.embedding(codes, codebook) * seen[None, :, None]).sum(1)  # (B, C)
        x = torch.where(pos == 0, self.in_hidden(hidden), self.in_code(prefix))  # (B, W)
        x = x + torch.index_select(self.depth_emb, 0, pos.reshape(1))
        logits, kv_new = self._blocks(x[:, None], kv, pos)
        return logits[:, 0], kv_new

    def empty_kv(self, B: int, S: int, dtype=torch.float32, device=None) -> torch.Tensor:
        return torch.zeros(len(self.blocks), 2, B, self.cfg.num_heads, S, self.cfg.head_dim, dtype=dtype, device=device)
