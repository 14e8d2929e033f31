"""The residual-quantized image tokenizer (RQ-VAE): pixels <-> D codes per cell.

    pixels (B, 3, P, P) in [-1, 1] ─► conv encoder ─► z (B, C, g, g)
        (cfg.local: 2x2/stride-2 + 1x1 convolutions, so each cell sees only its own pixels)
    z ─► residual quantization, one shared codebook (K, C):
         r_0 = z;  c_d = argmin_k |r_d - e_k|;  r_{d+1} = r_d - e_{c_d}     (d < D)
    codes (B, N, D), N = g*g in reading order;  quantized feature = sum_d e_{c_d}
    quantized ─► conv decoder ─► pixels
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config import ImageConfig


class Encoder(nn.Module):
    def __init__(self, cfg: ImageConfig):
        super().__init__()
        layers, c_in = [], 3
        for c in cfg.channels:  # each stage halves the resolution
            if cfg.local:
                layers += [nn.Conv2d(c_in, c, 2, stride=2), nn.GELU(), nn.Conv2d(c, c, 1), nn.GELU()]
            else:
                layers += [nn.Conv2d(c_in, c, 4, stride=2, padding=1), nn.GELU(), nn.Conv2d(c, c, 3, padding=1), nn.GELU()]
            c_in = c
        layers.append(nn.Conv2d(c_in, cfg.codebook_dim, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class Decoder(nn.Module):
    def __init__(self, cfg: ImageConfig):
        super().__init__()
        chans = list(reversed(cfg.channels))
        layers = [nn.Conv2d(cfg.codebook_dim, chans[0], 1), nn.GELU()]
        for i, c in enumerate(chans):
            c_out = chans[i + 1] if i + 1 < len(chans) else chans[-1]
            if cfg.local:
                layers += [nn.ConvTranspose2d(c, c_out, 2, stride=2), nn.GELU(), nn.Conv2d(c_out, c_out, 1), nn.GELU()]
            else:
                layers += [nn.ConvTranspose2d(c, c_out, 4, stride=2, padding=1), nn.GELU(),
                           nn.Conv2d(c_out, c_out, 3, padding=1), nn.GELU()]
        layers.append(nn.Conv2d(chans[-1], 3, 1) if cfg.local else nn.Conv2d(chans[-1], 3, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, z):
        return self.net(z)


class RQVAE(nn.Module):
    def __init__(self, cfg: ImageConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.codebook = nn.Parameter(torch.randn(cfg.codebook_size, cfg.codebook_dim) * 0.1)

    def encode_latent(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, P, P) in [-1, 1] -> z (B, N, C)."""
        z = self.encoder(pixels)  # (B, C, g, g)
        return z.flatten(2).transpose(1, 2)  # (B, N, C)

    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """z (B, N, C) -> codes (B, N, D) int64, quantized (B, N, C), residuals (B, N, D, C).

        residuals[..., d, :] is r_d, the input of depth d (for the codebook loss)."""
        return residual_quantize(z, self.codebook, self.cfg.depth)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """pixels (B, 3, P, P) in [-1, 1] -> codes (B, N, D) int64."""
        return self.quantize(self.encode_latent(pixels))[0]

    def features(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) -> quantized feature (B, N, C): the sum of the D code embeddings."""
        return F.embedding(codes, self.codebook).sum(2)

    def decode_features(self, q: torch.Tensor) -> torch.Tensor:
        """q (B, N, C) -> pixels (B, 3, P, P), roughly in [-1, 1]."""
        B, N, C = q.shape
        g = self.cfg.grid_size
        return self.decoder(q.transpose(1, 2).reshape(B, C, g, g))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes (B, N, D) -> pixels (B, 3, P, P) clamped to [-1, 1]."""
        return self.decode_features(self.features(codes)).clamp(-1, 1)


def residual_quantize(z: torch.Tensor, e: torch.Tensor, depth: int, full_distance: bool = False):
    """Residual quantization of z (B, N, C) on one codebook e (K, C) shared by `depth` depths:
    codes (B, N, D) int64, quantized (B, N, C), residuals (B, N, D, C) (r_d, the input of depth d).

    full_distance adds |r|^2 to the distance (constant per row, so the same argmin in exact
    arithmetic) to round as the official code's addmm does, so that near-ties fall its way."""
    e_sq = (e * e).sum(-1)  # (K,)
    r, q, codes, residuals = z, torch.zeros_like(z), [], []
    for _ in range(depth):
        if full_distance:  # in the official order of additions: the same rounding
            dist = (r * r).sum(-1, keepdim=True) + e_sq - 2 * torch.matmul(r, e.t())  # (B, N, K)
        else:
            dist = e_sq - 2 * torch.matmul(r, e.t())
        c = torch.argmin(dist, dim=-1)  # (B, N)
        ec = F.embedding(c, e)
        residuals.append(r)
        codes.append(c)
        q = q + ec
        r = r - ec
    return torch.stack(codes, -1), q, torch.stack(residuals, 2)
