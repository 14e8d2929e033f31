"""Training the RQ-VAE image tokenizer: losses, dead-code restarts, reconstruction check.

    pixels ─► encoder ─► z ─► residual quantization (D depths, one codebook) ─► q
    decoder input = z + sg(q - z)          straight-through: the decoder sees q, grads reach z
    loss = mean(w · (|x̂ - x|² + |x̂ - x|))                             pixels, w = 1 + ink_weight on inked pixels
         + Σ_d |sg(r_d) - e_{c_d}|²                                  codebook (moves codes to data)
         + β Σ_d |z - sg(q_{≤d})|²                                   commitment (keeps z near codes)
         + λ |z_u - sg(mean z of the flat cells of z_u's colour)|²   locality (tie_uniform_cells)

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

from ..data import renderers, scoring
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


def uniform_groups(pixels: torch.Tensor, grid: int, tol: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
    """Which cells are flat, and which flat cells share a colour.

    pixels (B, 3, P, P) in [-1, 1] -> uniform (B, N) bool, group (M,) int64: for each of the
    M uniform cells (in uniform's order), the index of its colour group (0..G-1).
    """
    B, _, P, _ = pixels.shape
    p = P // grid
    cells = pixels.reshape(B, 3, grid, p, grid, p).permute(0, 2, 4, 1, 3, 5).reshape(B, grid * grid, 3, p * p)
    uniform = (cells.amax(-1) - cells.amin(-1) <= tol).all(-1)  # (B, N)
    colour = torch.round((cells.mean(-1)[uniform] + 1) * 7.5).long()  # (M, 3) in 0..15
    key = (colour[:, 0] * 16 + colour[:, 1]) * 16 + colour[:, 2]
    return uniform, torch.unique(key, return_inverse=True)[1]


def _group_mean(x: torch.Tensor, group: torch.Tensor) -> torch.Tensor:
    """x (M, C) -> (M, C): each row replaced by the mean of its group."""
    G = int(group.max()) + 1
    sums = torch.zeros(G, x.shape[1], dtype=x.dtype, device=x.device).index_add(0, group, x)
    counts = torch.bincount(group, minlength=G).to(x.dtype)[:, None]
    return (sums / counts)[group]


def tie_uniform_cells(z: torch.Tensor, uniform: torch.Tensor, group: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Locality for the codes: every flat cell of one colour gets the same latent.

    Why: the encoder's receptive field (~50 px for 8 px cells) lets the codes of empty
    background cells describe the objects next to them. Reconstruction does not mind but
    generation does: in raster order the model must commit to an object's colour while it
    still writes background codes two rows above it. A tokenizer trained without this had
    one object change ~21 of 64 code cells (4 are the object's), and a stage 2 model on it
    drew colours at random while captioning perfectly.

    Two parts: (1) during training each flat cell's latent is replaced by its group's mean
    before quantization, so the decoder never receives information through an empty cell;
    (2) the returned loss |z - sg(group mean)|² teaches the encoder to produce that mean on
    its own, so encoding at inference gives empty cells one code. Cells whose pixels vary
    are untouched: on photographs (few flat cells) nothing changes.

    z (B, N, C) -> z_tied (B, N, C), loss ().
    """
    if not bool(uniform.any()):
        return z, z.new_zeros(())
    zu = z[uniform]  # (M, C)
    mean = _group_mean(zu, group)
    tied = z.clone()
    tied[uniform] = mean
    return tied, F.mse_loss(zu, mean.detach())


class RQVAELoss(nn.Module):
    """forward(pixels) -> (loss, logs, codes, residuals, pool mask); what DDP wraps in this stage.

    uniform_weight scales the pull of flat cells to their group's latent (tie_uniform_cells);
    0 turns the whole locality mechanism off. ink_weight: extra weight of the pixel loss on
    pixels that are not background white. On ShapesWorld ~85% of the pixels are white, so an
    unweighted loss is low for grey blobs of the right outline and colour is learnt last;
    weighting the ink makes the colour of every object (the thing captions and drawings are
    judged on) dominate the loss from the start."""

    def __init__(self, rqvae: RQVAE, uniform_weight: float = 1.0, ink_weight: float = 0.0):
        super().__init__()
        self.rqvae = rqvae
        self.uniform_weight = uniform_weight
        self.ink_weight = ink_weight

    def forward(self, pixels: torch.Tensor):
        vq = self.rqvae
        z = vq.encode_latent(pixels)  # (B, N, C)
        uniform = torch.zeros(z.shape[:2], dtype=torch.bool, device=z.device)
        flat = z.new_zeros(())
        if self.uniform_weight > 0:
            uniform, group = uniform_groups(pixels, vq.cfg.grid_size)
            z, flat = tie_uniform_cells(z, uniform, group)
        codes, q, residuals = vq.quantize(z)  # (B, N, D), (B, N, C), (B, N, D, C)
        recon = vq.decode_features(z + (q - z).detach())
        emb = F.embedding(codes, vq.codebook)  # (B, N, D, C), grads reach the codebook
        # means over every element, like the pixel loss: summing over C would weigh the
        # quantizer C times more and the encoder collapses to one constant output
        codebook = F.mse_loss(emb, residuals.detach())
        partial = torch.cumsum(emb.detach(), dim=2)  # (B, N, D, C): q_{<=d}
        commit = F.mse_loss(z[:, :, None].expand_as(partial), partial)
        pixel = ink_weighted_pixel_loss(recon, pixels, self.ink_weight)
        loss = pixel + codebook + COMMITMENT * commit + self.uniform_weight * flat
        logs = {"pix": pixel.detach(), "cb": codebook.detach(), "commit": commit.detach(), "flat": flat.detach()}
        # restarts draw from cells with content: flat cells share one latent, and seeding
        # spare codes around it would let tiny encoder wobbles there pick different codes
        return loss, logs, codes.detach(), residuals.detach(), ~uniform


def ink_weighted_pixel_loss(recon: torch.Tensor, target: torch.Tensor, ink_weight: float) -> torch.Tensor:
    """mean(w · (err² + |err|)) with w = 1 + ink_weight on the target's non-white pixels."""
    err = recon - target  # (B, 3, P, P)
    w = 1.0 + ink_weight * (target < 0.99).any(dim=1, keepdim=True).to(err.dtype)  # (B, 1, P, P)
    return (w * (err * err + err.abs())).mean()


class DecoderLoss(nn.Module):
    """forward(pixels, targets) -> (loss, logs): the decoder alone, on the frozen encoder's codes.

    The codes (and so every later stage, which reads only codes) stay exactly as the tokenizer
    stage left them; the decoder learns to draw each code's object as the target rendering
    (ShapesWorld: the canonical mask rendering, whatever rasterizer drew the input)."""

    def __init__(self, rqvae: RQVAE, ink_weight: float = 0.0):
        super().__init__()
        self.rqvae = rqvae
        self.ink_weight = ink_weight

    def forward(self, pixels: torch.Tensor, targets: torch.Tensor):
        with torch.no_grad():
            q = self.rqvae.features(self.rqvae.encode(pixels))  # (B, N, C)
        pixel = ink_weighted_pixel_loss(self.rqvae.decode_features(q), targets, self.ink_weight)
        return pixel, {"pix": pixel.detach()}


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
                      optimizer: torch.optim.Optimizer, dist, keep: torch.Tensor | None = None) -> int:
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
        if keep is not None and bool(keep.any()):  # keep (B, N): cells the pool may draw from
            residuals = residuals[keep]  # (M, D, C)
        pool = residuals.reshape(-1, residuals.shape[-1])  # (M*D, C)
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
    """Share of n held-out ShapesWorld scenes whose reconstruction the strict detector reads
    exactly; the scenes are drawn by the three rasterizers in turn (renderers.RENDERERS)."""
    scenes = sw.held_out_scenes(n, seed)
    shifts = np.random.default_rng([seed, *b"aa-shifts"])
    images = [renderers.render_with(s, renderers.RENDERERS[i % len(renderers.RENDERERS)], shifts)
              for i, s in enumerate(scenes)]
    was_training = rqvae.training
    rqvae.eval()
    device = rqvae.codebook.device
    ok = 0
    for i in range(0, n, batch):
        part = scenes[i:i + batch]
        x = to_pixels(np.stack(images[i:i + batch]), device)
        recon = to_uint8(rqvae.decode(rqvae.encode(x)))
        ok += sum(scoring.detect_scene(img) == s for img, s in zip(recon, part))
    rqvae.train(was_training)
    return ok / n


@torch.no_grad()
def locality(rqvae: RQVAE, n: int = 30, seed: int = 0) -> dict:
    """How local the codes are: on a blank canvas, how many distinct codes (1 is ideal), and
    for n single-object scenes, how many code cells differ from the blank canvas's codes
    (ideal: the cells the object covers, (16 px / cell px)² = 4 for the shapes preset)."""
    rng = np.random.default_rng([seed, *b"locality"])
    device = rqvae.codebook.device
    blank = rqvae.encode(to_pixels(sw.render(sw.Scene(()))[None], device))[0]  # (N, D)
    scenes = [sw.Scene((sw.Obj(int(rng.integers(sw.GRID)), int(rng.integers(sw.GRID)),
                               str(rng.choice(list(sw.COLORS))), str(rng.choice(sw.SHAPES))),)) for _ in range(n)]
    codes = rqvae.encode(to_pixels(np.stack([sw.render(s) for s in scenes]), device))  # (n, N, D)
    changed = (codes != blank[None]).any(-1).sum(-1).float()  # (n,)
    return {"blank_distinct_codes": len({tuple(c) for c in blank.tolist()}),
            "cells_changed_per_object": round(float(changed.mean()), 2),
            "cells_per_object": (sw.CELL * rqvae.cfg.grid_size // rqvae.cfg.image_size) ** 2}
