"""Training the RQ-VAE image tokenizer: losses, dead-code restarts, reconstruction check.

    pixels ─► encoder ─► z ─► residual quantization (D depths, one codebook) ─► q
    decoder input = z + sg(q - z)          straight-through: the decoder sees q, grads reach z
    loss = MSE(x̂, x) + L1(x̂, x)                                     pixels
         + Σ_d |sg(r_d) - e_{c_d}|²                                  codebook (moves codes to data)
         + β Σ_d |z - sg(q_{≤d})|²                                   commitment (keeps z near codes)

One codebook of 256 shared by all depths starts mostly unused: codes that no depth picked
during the last `every` steps are re-seeded from residual vectors of the current batch
(of any depth), which is what makes every code earn its place. Under torchrun the usage
counts are summed over ranks and rank 0's replacement rows are broadcast, so all ranks
keep the same codebook.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data import scoring
from ..data import shapes_world as sw
from ..model.rqvae import RQVAE

COMMITMENT = 0.25


def to_pixels(images: np.ndarray, device=None) -> torch.Tensor:
    """uint8 (B, S, S, 3) -> float (B, 3, S, S) in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).to(device)
    return x.permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """float (B, 3, S, S) in [-1, 1] -> uint8 (B, S, S, 3)."""
    x = ((pixels.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def init_weights(rqvae: RQVAE, seed: int) -> None:
    """Fresh conv weights for training (Kaiming-normal, zero bias), from an explicit generator.

    PyTorch's default conv init shrinks the signal layer by layer: on mostly-white
    ShapesWorld images the encoder output then hardly depends on the input (std over a batch
    ~1e-4), every cell quantizes to the same code and training settles on blank images.
    Kaiming init keeps z input-dependent (std over a batch ~0.2) from the first step."""
    g = torch.Generator().manual_seed(seed)
    for m in rqvae.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu", generator=g)
            nn.init.zeros_(m.bias)


class RQVAELoss(nn.Module):
    """forward(pixels) -> (loss, logs, codes, residuals); the module DDP wraps in this stage."""

    def __init__(self, rqvae: RQVAE):
        super().__init__()
        self.rqvae = rqvae

    def forward(self, pixels: torch.Tensor):
        vq = self.rqvae
        z = vq.encode_latent(pixels)  # (B, N, C)
        codes, q, residuals = vq.quantize(z)  # (B, N, D), (B, N, C), (B, N, D, C)
        recon = vq.decode_features(z + (q - z).detach())
        emb = F.embedding(codes, vq.codebook)  # (B, N, D, C), grads reach the codebook
        # means over every element, like the pixel loss: summing over C would weigh the
        # quantizer C times more and the encoder collapses to one constant output
        codebook = F.mse_loss(emb, residuals.detach())
        partial = torch.cumsum(emb.detach(), dim=2)  # (B, N, D, C): q_{<=d}
        commit = F.mse_loss(z[:, :, None].expand_as(partial), partial)
        pixel = F.mse_loss(recon, pixels) + F.l1_loss(recon, pixels)
        loss = pixel + codebook + COMMITMENT * commit
        logs = {"pix": pixel.detach(), "cb": codebook.detach(), "commit": commit.detach()}
        return loss, logs, codes.detach(), residuals.detach()


class DeadCodeRestarter:
    """Counts code use; every `every` steps re-seeds the codes nobody used.

    The usage counts and the generator are training state (saved in checkpoints)."""

    def __init__(self, codebook_size: int, every: int, seed: int):
        self.every = every
        self.usage = torch.zeros(codebook_size, dtype=torch.int64)
        self.rng = np.random.default_rng([seed, *b"restarts"])
        self.restarted = 0  # total codes re-seeded, for the progress bar

    def observe(self, codes: torch.Tensor) -> None:
        self.usage += torch.bincount(codes.reshape(-1).cpu(), minlength=len(self.usage))

    @torch.no_grad()
    def maybe_restart(self, step: int, codebook: nn.Parameter, residuals: torch.Tensor,
                      optimizer: torch.optim.Optimizer, dist) -> int:
        """After optimizer step `step` (0-based): restart dead codes if it is time; returns how many.

        It is time after the first step (a data-dependent start for the random codebook) and
        then every `every` steps."""
        if step and (step + 1) % self.every:
            return 0
        usage = dist.all_reduce_sum(self.usage)
        dead = torch.nonzero(usage == 0).flatten()
        self.usage.zero_()
        if len(dead) == 0:
            return 0
        pool = residuals.reshape(-1, residuals.shape[-1])  # (B*N*D, C)
        pick = self.rng.choice(len(pool), size=len(dead), replace=len(pool) < len(dead))
        rows = pool[torch.from_numpy(pick).to(pool.device)].to(codebook.dtype)
        rows = dist.broadcast(rows)  # rank 0's choice for everyone
        codebook.data[dead.to(codebook.device)] = rows
        state = optimizer.state.get(codebook, {})
        for key in ("exp_avg", "exp_avg_sq"):  # a re-seeded code starts with fresh moments
            if key in state:
                state[key][dead.to(codebook.device)] = 0
        self.restarted += len(dead)
        return len(dead)

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {"usage": self.usage.clone()}

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "restarted": self.restarted}

    def load_state(self, s: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.restarted = int(s["restarted"])
        self.usage = tensors["usage"].clone()


@torch.no_grad()
def reconstruction_accuracy(rqvae: RQVAE, n: int = 300, seed: int = 0, batch: int = 100) -> float:
    """Share of n held-out ShapesWorld scenes whose reconstruction the detector reads exactly."""
    scenes = sw.held_out_scenes(n, seed)
    was_training = rqvae.training
    rqvae.eval()
    device = rqvae.codebook.device
    ok = 0
    for i in range(0, n, batch):
        part = scenes[i:i + batch]
        x = to_pixels(np.stack([sw.render(s) for s in part]), device)
        recon = to_uint8(rqvae.decode(rqvae.encode(x)))
        ok += sum(scoring.detect_scene(img) == s for img, s in zip(recon, part))
    rqvae.train(was_training)
    return ok / n
