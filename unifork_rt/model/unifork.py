"""The Y-shaped UniFork model: shared trunk, understanding and generation branches.

    text ids ─► embed ─┐                                   ┌─► und: layers ─► norm ─► lm_head ─► logits
    image codes ─► connector ─► trunk (shared_layers) ─────┤
                  (+ BOI/EOI)                              └─► gen: layers ─► norm_gen ─► hidden ─► depth head ─► codes

One entry point per exported graph (image_embeds, trunk, und_logits, gen_hidden,
head_logits, encode_image, decode_codes); the training losses are built from them.

Sequence formats (DESIGN.md §2):
    generation:    [pad..] <prompt> <BOI> f(cell_0) .. f(cell_{N-2})   hidden at BOI predicts cell 0
    understanding: <BOI> f(cell_0) .. f(cell_{N-1}) <EOI> <prompt> <answer> <eos> [pad..]
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ModelConfig
from .heads import Connector, DepthHead
from .layers import RMSNorm, Stack
from .rqvae import RQVAE
from .tower import SiglipTower


class UniFork(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        t, im = cfg.text, cfg.image
        self.embed_tokens = nn.Embedding(t.vocab_size, t.hidden_size)
        self.boi = nn.Parameter(torch.randn(t.hidden_size) * 0.02)
        self.eoi = nn.Parameter(torch.randn(t.hidden_size) * 0.02)
        self.connector = Connector(im.codebook_dim, t.hidden_size)
        self.trunk = Stack(t, t.shared_layers)
        self.und = Stack(t, t.branch_layers)
        self.norm = RMSNorm(t.hidden_size, t.rms_norm_eps)
        self.lm_head = None if t.tie_word_embeddings else nn.Linear(t.hidden_size, t.vocab_size, bias=False)
        self.gen = Stack(t, t.branch_layers)
        self.norm_gen = RMSNorm(t.hidden_size, t.rms_norm_eps)
        self.head = DepthHead(cfg.head, t.hidden_size, im.codebook_dim, im.codebook_size, im.depth)
        self.image_tokenizer = RQVAE(im) if cfg.tower is None else SiglipTower(cfg.tower, im)
        self.apply(_init_weights)

    # --- entry points (one per graph) -------------------------------------------------
    def text_embeds(self, ids: torch.Tensor) -> torch.Tensor:
        """ids (B, T) int64 -> (B, T, H). Done in numpy by the runtime."""
        return self.embed_tokens(ids)

    def image_embeds(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) int64 -> LLM inputs (B, N, H). Graph `connector`."""
        return self.connector(self.image_tokenizer.features(codes))

    def trunk_forward(self, x, kv, pos, start):
        """x (B, T, H), kv (Ls, 2, B, Hkv, S, Dh) -> (B, T, H), kv_new. Graph `trunk`."""
        return self.trunk(x, kv, pos, start)

    def lm_weight(self) -> torch.Tensor:
        return self.embed_tokens.weight if self.lm_head is None else self.lm_head.weight

    def und_hidden(self, h, kv, pos, start):
        x, kv_new = self.und(h, kv, pos, start)
        return self.norm(x), kv_new

    def und_logits(self, h, kv, pos, start):
        """Logits of the LAST position only: h (B, T, H) -> (B, V), kv_new. Graph `und_branch`."""
        x, kv_new = self.und_hidden(h, kv, pos, start)
        return F.linear(x[:, -1], self.lm_weight()), kv_new

    def und_all_logits(self, h, kv, pos, start):
        """Logits of every position (B, T, V): for training and parity tests."""
        x, kv_new = self.und_hidden(h, kv, pos, start)
        return F.linear(x, self.lm_weight()), kv_new

    def gen_hidden(self, h, kv, pos, start):
        """h (B, T, H) -> normalised gen hidden (B, T, H), kv_new. Graph `gen_branch`."""
        x, kv_new = self.gen(h, kv, pos, start)
        return self.norm_gen(x), kv_new

    def head_logits(self, hidden, codes, kv, pos):
        """One depth step: hidden (B, H), codes (B, D) -> logits (B, K), kv_new. Graph `rq_head`."""
        return self.head.step(hidden, codes, kv, pos, self.image_tokenizer.codebook)

    def encode_image(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, P, P) in [-1, 1] -> codes (B, N, D) int64. Graph `vision_encoder`."""
        return self.image_tokenizer.encode(pixels)

    def decode_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) -> pixels (B, 3, P, P) in [-1, 1]. Graph `vision_decoder`."""
        return self.image_tokenizer.decode(codes)

    # --- training losses ----------------------------------------------------------------
    def _zero(self, device) -> torch.Tensor:
        return torch.zeros((), dtype=torch.int64, device=device)

    def generation_loss(self, prompt_ids: torch.Tensor, start: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the image codes, equal weight per depth.

        prompt_ids (B, P) left-padded (row b's prompt begins at start[b]; P may be 0 for
        all-null batches), codes (B, N, D) -> scalar loss."""
        B, P = prompt_ids.shape
        N, D = codes.shape[1:]
        dev = codes.device
        x = torch.cat([self.text_embeds(prompt_ids), self.boi.expand(B, 1, -1),
                       self.image_embeds(codes[:, :-1])], dim=1)  # (B, P + N, H)
        pos = self._zero(dev)
        h, _ = self.trunk_forward(x, self.trunk.empty_kv(B, device=dev), pos, start)
        h, _ = self.gen_hidden(h, self.gen.empty_kv(B, device=dev), pos, start)
        hidden = h[:, P:].reshape(B * N, -1)  # (B*N, H): position P + n predicts cell n
        logits = self.head.forward_train(hidden, codes.reshape(B * N, D), self.image_tokenizer.codebook)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), codes.reshape(-1))

    def understanding_loss(self, codes: torch.Tensor, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Cross-entropy on the answer tokens.

        codes (B, N, D); ids (B, U) = prompt + answer + eos, right-padded; labels (B, U) = ids
        with -100 where no loss is taken (prompt, padding) -> scalar loss."""
        B, N = codes.shape[:2]
        dev = codes.device
        x = torch.cat([self.boi.expand(B, 1, -1), self.image_embeds(codes), self.eoi.expand(B, 1, -1),
                       self.text_embeds(ids)], dim=1)  # (B, N + 2 + U, H)
        pos, start = self._zero(dev), torch.zeros(B, dtype=torch.int64, device=dev)
        h, _ = self.trunk_forward(x, self.trunk.empty_kv(B, device=dev), pos, start)
        h, _ = self.und_hidden(h, self.und.empty_kv(B, device=dev), pos, start)
        U = ids.shape[1]
        h = h[:, N + 1: N + 1 + U]  # position N+1+u predicts text token u
        logits = F.linear(h, self.lm_weight())
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)

    # --- bookkeeping ----------------------------------------------------------------------
    def component_parameters(self) -> dict[str, int]:
        """Parameter count per component (a tied lm_head counts 0 here: it is the embedding)."""
        def n(*mods):
            return sum(p.numel() for m in mods if m is not None for p in (m.parameters() if isinstance(m, nn.Module) else [m]))
        return {
            "embeddings": n(self.embed_tokens),
            "trunk": n(self.trunk),
            "und_branch": n(self.und, self.norm),
            "gen_branch": n(self.gen, self.norm_gen),
            "lm_head": n(self.lm_head),
            "connector": n(self.connector, self.boi, self.eoi),
            "depth_head": n(self.head),
            "image_tokenizer": n(self.image_tokenizer),
        }


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Embedding):
        nn.init.normal_(m.weight, std=0.02)
