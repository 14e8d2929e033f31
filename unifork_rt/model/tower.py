"""The official UniFork image tokenizer: VILA-U's SigLIP tower + shared-codebook RQ + conv decoder.

    pixels (B, 3, P, P) in [-1, 1] ─► patch conv (p x p, stride p) ─► (B, N, W), N = g*g = (P/p)^2
        + position table (G*G, W) resized to g*g (bicubic; its first N rows when g < G, as official)
    ─► L pre-LN SigLIP layers (x + attn(LN1 x); x + MLP(LN2 x)), no post-LN ─► z (B, N, C = W)
    z ─► residual quantization, one shared codebook (K, C), nearest by squared L2 on the RAW residual:
         r_0 = z;  c_d = argmin_k |r_d|^2 + |e_k|^2 - 2 r_d.e_k;  r_{d+1} = r_d - e_{c_d}
    codes (B, N, D) ─► sum_d e_{c_d} (B, N, C) ─► 1x1 post-quant conv C -> Z
        ─► conv_in ─► mid (res, attn, res) ─► levels lowest first: (res_blocks + 1) x ResBlock
           [+ AttnBlock after each at the lowest level], nearest x2 + conv between levels
        ─► GroupNorm(32) ─► SiLU ─► conv_out ─► pixels (B, 3, g*2^(levels-1), ...)

Module names follow the official checkpoint (SigLIP's and the taming decoder's), so the
converter's key map is a list of prefixes (official.py). Same interface as rqvae.RQVAE:
encode / encode_latent / quantize / features / decode_features / decode, and `codebook`.

Letters: B batch, N cells (g*g), W tower width, C codebook dim (= W), K codebook size, D depth,
h heads, dh head dim, Z decoder latent channels.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ImageConfig, TowerConfig
from .rqvae import residual_quantize


class SiglipAttention(nn.Module):
    def __init__(self, width: int, heads: int):
        super().__init__()
        self.heads, self.dh = heads, width // heads
        self.q_proj = nn.Linear(width, width)
        self.k_proj = nn.Linear(width, width)
        self.v_proj = nn.Linear(width, width)
        self.out_proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, W = x.shape
        q = self.q_proj(x).view(B, N, self.heads, self.dh).transpose(1, 2)  # (B, h, N, dh)
        k = self.k_proj(x).view(B, N, self.heads, self.dh).transpose(1, 2)
        v = self.v_proj(x).view(B, N, self.heads, self.dh).transpose(1, 2)
        scores = torch.matmul(q, k.transpose(-1, -2)) * self.dh ** -0.5  # (B, h, N, N)
        probs = torch.softmax(scores.float(), dim=-1).to(v.dtype)  # float32 softmax, as SigLIP
        out = torch.matmul(probs, v).transpose(1, 2).reshape(B, N, W)
        return self.out_proj(out)


class SiglipMLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))  # gelu_pytorch_tanh


class SiglipLayer(nn.Module):
    def __init__(self, cfg: TowerConfig):
        super().__init__()
        self.layer_norm1 = nn.LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.self_attn = SiglipAttention(cfg.width, cfg.num_heads)
        self.layer_norm2 = nn.LayerNorm(cfg.width, eps=cfg.ln_eps)
        self.mlp = SiglipMLP(cfg.width, cfg.mlp_dim)

    def forward(self, x):
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


def position_resize_matrix(table_grid: int, grid: int) -> torch.Tensor:
    """(g*g, G*G) float32: the official position handling as one linear map of the table.

    g == G: the identity; g > G: bicubic (align_corners False, no antialias), as F.interpolate
    does on every official call; g < G: the table's first g*g rows (an official quirk: rows of a
    16-wide raster, not a resized grid). A matrix exports as one MatMul, so the ONNX graph needs
    no Resize and matches PyTorch to rounding."""
    P, N = table_grid * table_grid, grid * grid
    if grid <= table_grid:
        return torch.eye(P)[:N]
    basis = torch.eye(P).reshape(P, 1, table_grid, table_grid)  # each table row on its own
    out = F.interpolate(basis, size=(grid, grid), mode="bicubic", align_corners=False)  # (P, 1, g, g)
    return out.reshape(P, N).t().contiguous()


class ResnetBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = nn.GroupNorm(32, c_in, eps=1e-6)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.norm2 = nn.GroupNorm(32, c_out, eps=1e-6)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.nin_shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))  # dropout 0 in the official ddconfig
        return (x if self.nin_shortcut is None else self.nin_shortcut(x)) + h


class AttnBlock(nn.Module):
    """Single-head attention over the h*w positions, 1x1 convolutions, residual."""

    def __init__(self, c: int):
        super().__init__()
        self.norm = nn.GroupNorm(32, c, eps=1e-6)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x):
        B, c, hh, ww = x.shape
        h = self.norm(x)
        q = self.q(h).reshape(B, c, hh * ww).transpose(1, 2)  # (B, hw, c)
        k = self.k(h).reshape(B, c, hh * ww)  # (B, c, hw)
        v = self.v(h).reshape(B, c, hh * ww)
        w = torch.softmax(torch.bmm(q, k) * c ** -0.5, dim=2)  # (B, hw_q, hw_k)
        out = torch.bmm(v, w.transpose(1, 2)).reshape(B, c, hh, ww)
        return x + self.proj_out(out)


class Upsample(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Level(nn.Module):
    def __init__(self, blocks: list, attn: list, upsample: Upsample | None):
        super().__init__()
        self.block = nn.ModuleList(blocks)
        self.attn = nn.ModuleList(attn)
        self.upsample = upsample


class _Mid(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.block_1 = ResnetBlock(c, c)
        self.attn_1 = AttnBlock(c)
        self.block_2 = ResnetBlock(c, c)


class ConvDecoder(nn.Module):
    """The taming/VQGAN decoder without timestep embedding; up[i] is level i (0 = full size)."""

    def __init__(self, cfg: TowerConfig):
        super().__init__()
        levels = len(cfg.ch_mult)
        c = cfg.ch * cfg.ch_mult[-1]
        self.conv_in = nn.Conv2d(cfg.z_channels, c, 3, padding=1)
        self.mid = _Mid(c)
        up = [None] * levels
        for i in reversed(range(levels)):
            c_out = cfg.ch * cfg.ch_mult[i]
            blocks, attn = [], []
            for _ in range(cfg.res_blocks + 1):
                blocks.append(ResnetBlock(c, c_out))
                c = c_out
                if i == levels - 1:  # VILA-U's attn_resolutions put attention at the lowest level only
                    attn.append(AttnBlock(c))
            up[i] = _Level(blocks, attn, Upsample(c) if i else None)
        self.up = nn.ModuleList(up)
        self.norm_out = nn.GroupNorm(32, c, eps=1e-6)
        self.conv_out = nn.Conv2d(c, 3, 3, padding=1)

    def forward(self, z):
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for level in reversed(self.up):  # lowest resolution first
            for j, block in enumerate(level.block):
                h = block(h)
                if len(level.attn):
                    h = level.attn[j](h)
            if level.upsample is not None:
                h = level.upsample(h)
        return self.conv_out(F.silu(self.norm_out(h)))


class SiglipTower(nn.Module):
    def __init__(self, cfg: TowerConfig, image: ImageConfig):
        super().__init__()
        self.cfg, self.image = cfg, image
        self.patch_embedding = nn.Conv2d(3, cfg.width, cfg.patch_size, stride=cfg.patch_size)
        self.position_embedding = nn.Parameter(torch.randn(cfg.pos_grid ** 2, cfg.width) * 0.02)
        self.register_buffer("pos_resize", position_resize_matrix(cfg.pos_grid, image.grid_size), persistent=False)
        self.layers = nn.ModuleList(SiglipLayer(cfg) for _ in range(cfg.num_layers))
        self.codebook = nn.Parameter(torch.randn(image.codebook_size, image.codebook_dim) * 0.1)
        self.post_quant_conv = nn.Conv2d(cfg.width, cfg.z_channels, 1)
        self.decoder = ConvDecoder(cfg)

    def encode_latent(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, P, P) in [-1, 1] -> raw features (B, N, C) of the last layer run."""
        x = self.patch_embedding(pixels).flatten(2).transpose(1, 2)  # (B, N, W), raster order
        x = x + torch.matmul(self.pos_resize.to(x.dtype), self.position_embedding)  # (N, W)
        for layer in self.layers:
            x = layer(x)
        return x

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, C) -> codes (B, N, D) int64, quantized (B, N, C), residuals (B, N, D, C)."""
        # the full squared distance, |r|^2 included, as the official addmm: near-ties fall its way
        return residual_quantize(z, self.codebook, self.image.depth, full_distance=True)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, P, P) in [-1, 1] -> codes (B, N, D) int64."""
        return self.quantize(self.encode_latent(pixels))[0]

    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) -> the sum of the D code embeddings (B, N, C), depth 0 first."""
        emb = F.embedding(codes, self.codebook)  # (B, N, D, C)
        out = emb[:, :, 0]
        for d in range(1, codes.shape[-1]):  # in depth order, as the official cumsum
            out = out + emb[:, :, d]
        return out

    def decode_features(self, q: torch.Tensor) -> torch.Tensor:
        """q (B, N, C) -> pixels (B, 3, P', P'), roughly in [-1, 1] (no tanh, as official)."""
        B, N, C = q.shape
        g = self.image.grid_size
        z = q.transpose(1, 2).reshape(B, C, g, g)
        return self.decoder(self.post_quant_conv(z))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) -> pixels clamped to [-1, 1]."""
        return self.decode_features(self.features(codes)).clamp(-1, 1)
