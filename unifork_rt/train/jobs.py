"""The two kinds of training job the stages plug into the loop (loop.Job).

    VQJob   the image tokenizer stage: RQ-VAE losses, dead-code restarts, held-out check
    YJob    stages 1-3: generation and/or understanding cross-entropy on the Y-model
"""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from ..errors import InputError
from ..model.unifork import UniFork
from .data import GenBatch, GenerationSampler, ImageSampler, UnderstandingSampler, UndBatch
from .dist import Dist
from .vq import DeadCodeRestarter, DecoderLoss, RQVAELoss, init_weights, reconstruction_accuracy, to_pixels


class VQJob:
    def __init__(self, model: UniFork, sampler: ImageSampler, dist: Dist, restart_every: int,
                 seed: int, eval_every: int, eval_n: int, target: float | None, uniform_weight: float,
                 ink_weight: float = 0.0):
        self.rqvae = model.image_tokenizer
        init_weights(self.rqvae, seed)  # the stage trains the image tokenizer from scratch
        self.module = RQVAELoss(self.rqvae, uniform_weight, ink_weight)
        self.sampler, self.dist = sampler, dist
        self.restarter = DeadCodeRestarter(model.cfg.image.codebook_size, restart_every, seed)
        self.eval_every, self.eval_n, self.target = eval_every, eval_n, target
        self._codes = self._residuals = self._keep = None
        self._stop = False
        self.last_accuracy: float | None = None

    def batch(self) -> torch.Tensor:
        return to_pixels(self.sampler.next(), self.dist.device)

    def loss(self, module, pixels):
        loss, logs, self._codes, self._residuals, self._keep = module(pixels)
        return loss, logs

    def after_step(self, step: int, optimizer) -> dict:
        self.restarter.observe(self._codes)
        dead = self.restarter.maybe_restart(step, self.rqvae.codebook, self._residuals, optimizer, self.dist,
                                            self._keep)
        info = {"restarts": self.restarter.restarted} if dead else {}
        if self.eval_every and self.eval_n and (step + 1) % self.eval_every == 0:
            # seed 1: a validation draw of held-out scenes; the end-of-stage report uses seed 0,
            # so the scenes that decide when to stop are not the ones that are reported
            acc = reconstruction_accuracy(self.rqvae, self.eval_n, seed=1) if self.dist.is_main else 0.0
            self.last_accuracy = acc
            stop = self.target is not None and acc >= self.target
            self._stop = bool(self.dist.broadcast_int(int(stop)))
            if self.dist.is_main:
                tqdm.write(f"step {step + 1}: held-out reconstructions read correctly {acc:.3f}"
                           + (f" >= target {self.target}: stopping" if stop else ""))
            info["recon_acc"] = acc
        return info

    def should_stop(self, step: int) -> bool:
        return self._stop

    def state(self) -> dict:
        return {"data": self.sampler.state(), "restarter": self.restarter.state()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return self.restarter.state_tensors()

    def load_state(self, per_rank: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.sampler.load_state(per_rank["data"])
        self.restarter.load_state(per_rank["restarter"], tensors)


class DecoderJob:
    """The decoder stage: the tokenizer's decoder fine-tuned on frozen codes (vq.DecoderLoss)."""

    def __init__(self, model: UniFork, sampler: ImageSampler, dist: Dist, eval_every: int, eval_n: int,
                 ink_weight: float):
        self.rqvae = model.image_tokenizer
        self.module = DecoderLoss(self.rqvae, ink_weight)
        self.sampler, self.dist = sampler, dist
        self.eval_every, self.eval_n = eval_every, eval_n

    def batch(self):
        images, targets = self.sampler.next()
        return to_pixels(images, self.dist.device), to_pixels(targets, self.dist.device)

    def loss(self, module, batch):
        return module(*batch)

    def after_step(self, step: int, optimizer) -> dict:
        if not (self.eval_every and self.eval_n and (step + 1) % self.eval_every == 0):
            return {}
        acc = reconstruction_accuracy(self.rqvae, self.eval_n, seed=1) if self.dist.is_main else 0.0
        if self.dist.is_main:
            tqdm.write(f"step {step + 1}: held-out reconstructions read correctly {acc:.3f}")
        return {"recon_acc": acc}

    def should_stop(self, step: int) -> bool:
        return False

    def state(self) -> dict:
        return {"data": self.sampler.state()}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, per_rank: dict, tensors: dict[str, torch.Tensor]) -> None:
        self.sampler.load_state(per_rank["data"])


class YLoss(nn.Module):
    """forward(gen, und) -> (sum of the task losses, logs). No task weighting (DESIGN §1).

    The loss module DDP wraps: gradients flow only into the parameters the stage unfroze;
    images are tokenized by the frozen RQ-VAE inside, without a graph."""

    def __init__(self, model: UniFork):
        super().__init__()
        self.model = model

    def forward(self, gen: tuple | None, und: tuple | None):
        m = self.model
        total, logs = 0.0, {}
        if gen is not None:
            ids, start, pixels = gen
            with torch.no_grad():
                codes = m.encode_image(pixels)  # (B, N, D)
            logs["gen"] = m.generation_loss(ids, start, codes)
            total = total + logs["gen"]
        if und is not None:
            pixels, ids, labels = und
            with torch.no_grad():
                codes = m.encode_image(pixels)
            logs["und"] = m.understanding_loss(codes, ids, labels)
            total = total + logs["und"]
        return total, {k: v.detach() for k, v in logs.items()}


class YJob:
    def __init__(self, model: UniFork, gen: GenerationSampler | None, und: UnderstandingSampler | None, dist: Dist):
        self.module = YLoss(model)
        self.gen, self.und, self.dist = gen, und, dist
        self.max_seq = model.cfg.text.max_seq_len
        self.cells = model.cfg.image.num_cells

    def batch(self):
        dev = self.dist.device
        g = u = None
        if self.gen is not None:
            b: GenBatch = self.gen.next()
            self._check_length(b.prompt_ids.shape[1] + self.cells, "a generation")
            g = (torch.from_numpy(b.prompt_ids).to(dev), torch.from_numpy(b.start).to(dev), to_pixels(b.pixels, dev))
        if self.und is not None:
            c: UndBatch = self.und.next()
            self._check_length(self.cells + 2 + c.ids.shape[1], "an understanding")
            u = (to_pixels(c.pixels, dev), torch.from_numpy(c.ids).to(dev), torch.from_numpy(c.labels).to(dev))
        return g, u

    def _check_length(self, length: int, what: str) -> None:
        # the runtime's KV buffers hold max_seq_len positions: train only on what it can run
        if length > self.max_seq:
            raise InputError(f"{what} sequence is {length} positions but text.max_seq_len is {self.max_seq}: "
                             "shorten the texts or raise max_seq_len in config.json")

    def loss(self, module, batch):
        return module(*batch)

    def after_step(self, step: int, optimizer) -> dict:
        return {}

    def should_stop(self, step: int) -> bool:
        return False

    def state(self) -> dict:
        return {"gen": self.gen.state() if self.gen else None, "und": self.und.state() if self.und else None}

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return {}

    def load_state(self, per_rank: dict, tensors: dict[str, torch.Tensor]) -> None:
        if self.gen is not None:
            self.gen.load_state(per_rank["gen"])
        if self.und is not None:
            self.und.load_state(per_rank["und"])
