"""Training batches from ShapesWorld or a user image folder, drawn from explicit generators.

Three samplers, one per kind of batch; each owns its np.random.Generator and reports its
position (`state()` / `load_state()`), so a resumed run draws exactly the batches the
interrupted one would have drawn:

    ImageSampler          pixels (B, P, P, 3) uint8                      the RQ-VAE stage
    GenerationSampler     GenBatch: prompt ids LEFT-padded + start, pixels   "<prompt><BOI><codes>"
    UnderstandingSampler  UndBatch: pixels, ids RIGHT-padded, labels        "<BOI><img><EOI><prompt><answer><eos>"

ShapesWorld batches come only from the `train` split; the held-out split is for evaluation.
The tokenizer's and the understanding path's images come from a random rasterizer with
random sub-pixel shifts (renderers.render_variant), so neither is fitted to one
rasterizer's pixels; generation targets stay the package's own mask rendering, the one
clean drawing the model should learn to make.
Under torchrun every rank seeds its generators with its rank, so ranks see different data.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from tokenizers import Tokenizer

from ..data import renderers, shapes_world as sw
from .imagefolder import ImageFolder
from .tokenizer import EOS, caption_ids, encode

# Generation prompt mix: the six GenEval-style categories plus "caption" (a canonical caption
# used as the prompt, which binds colours to positions). The calibration run found
# color_attr and position the hardest, so they get the most weight.
DEFAULT_MIX: dict[str, float] = {
    "single_object": 1.0, "two_objects": 1.5, "counting": 1.5, "colors": 1.0,
    "position": 2.5, "color_attr": 3.0, "caption": 1.5,
}
MIX_KINDS = sw.CATEGORIES + ("caption",)
DEFAULT_NULL_RATE = 0.1  # share of generation prompts replaced by the empty (null) prompt for CFG


@dataclass(frozen=True)
class GenBatch:
    """prompt_ids (B, P) int64 left-padded (P may be 0), start (B,) int64 = first real token
    of each row (P for a null prompt), pixels (B, S, S, 3) uint8, prompts for logging."""

    prompt_ids: np.ndarray
    start: np.ndarray
    pixels: np.ndarray
    prompts: tuple[str, ...]


@dataclass(frozen=True)
class UndBatch:
    """pixels (B, S, S, 3) uint8; ids (B, U) int64 = prompt + answer + eos, right-padded;
    labels (B, U) int64 = ids on answer + eos, -100 elsewhere."""

    pixels: np.ndarray
    ids: np.ndarray
    labels: np.ndarray


def parse_mix(text: str) -> dict[str, float]:
    """'color_attr=3,position=2.5' -> DEFAULT_MIX with those weights replaced (0 drops a kind)."""
    mix = dict(DEFAULT_MIX)
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or name.strip() not in MIX_KINDS:
            raise ValueError(f"bad --mix entry {part!r}: expected KIND=WEIGHT with KIND one of {', '.join(MIX_KINDS)}")
        try:
            mix[name.strip()] = float(value)
        except ValueError:
            raise ValueError(f"bad --mix weight in {part!r}: {value!r} is not a number") from None
    if not all(math.isfinite(w) for w in mix.values()):
        raise ValueError(f"--mix weights must be finite numbers, got {text!r}")
    if any(w < 0 for w in mix.values()) or sum(mix.values()) <= 0:
        raise ValueError(f"--mix weights must be >= 0 and not all 0, got {mix}")
    return mix


def stream_rng(seed: int, rank: int, stream: str) -> np.random.Generator:
    """The generator of one data stream: distinct per seed, rank and stream name."""
    return np.random.default_rng([seed, rank, *stream.encode()])


class FolderCursor:
    """Epoch-wise pass over a folder: one shuffled order per epoch (the same on every rank,
    seeded by seed and epoch), rank r takes every world-th item from r, so ranks never
    share a row within an epoch. Position = (epoch, index)."""

    def __init__(self, n: int, seed: int, rank: int, world: int, stream: str):
        self.n, self.seed, self.rank, self.world, self.stream = n, seed, rank, world, stream
        self.epoch, self.index = 0, 0
        self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        perm = np.random.default_rng([self.seed, self.epoch, *self.stream.encode()]).permutation(self.n)
        mine = perm[self.rank::self.world]
        return mine if len(mine) else perm  # fewer rows than ranks: every rank sees them all

    def take(self, k: int) -> np.ndarray:
        out = []
        while len(out) < k:
            if self.index == len(self._order):
                self.epoch, self.index = self.epoch + 1, 0
                self._order = self._epoch_order()
            out.append(int(self._order[self.index]))
            self.index += 1
        return np.array(out)

    def state(self) -> dict:
        return {"epoch": self.epoch, "index": self.index}

    def load_state(self, s: dict) -> None:
        self.epoch, self.index = int(s["epoch"]), int(s["index"])
        self._order = self._epoch_order()


class _Sampler:
    """Common state handling: the generator, the folder cursor, the batch count."""

    def __init__(self, folder: ImageFolder | None, batch: int, seed: int, rank: int, world: int, stream: str):
        if batch <= 0:
            raise ValueError(f"batch size must be positive, got {batch}")
        self.folder, self.batch = folder, batch
        self.rng = stream_rng(seed, rank, stream)
        self.cursor = FolderCursor(len(folder), seed, rank, world, stream) if folder is not None else None
        self.batches = 0

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "batches": self.batches,
                "cursor": self.cursor.state() if self.cursor else None}

    def load_state(self, s: dict) -> None:
        self.rng.bit_generator.state = s["rng"]
        self.batches = int(s["batches"])
        if self.cursor is not None:
            self.cursor.load_state(s["cursor"])

    def next(self):
        self.batches += 1
        return self._draw()


class ImageSampler(_Sampler):
    """Images for the RQ-VAE: ShapesWorld train-split caption scenes, or the folder's images.

    targets=True (the decoder stage): batches are (images, targets), where a ShapesWorld
    target is the scene's canonical mask rendering and a folder image is its own target."""

    def __init__(self, folder, batch, seed, rank=0, world=1, targets: bool = False):
        super().__init__(folder, batch, seed, rank, world, "images")
        self.targets = targets

    def _draw(self):
        if self.folder is not None:
            images = self.folder.images[self.cursor.take(self.batch)]
            return (images, images) if self.targets else images
        scenes = [sw.random_caption_scene(self.rng, "train") for _ in range(self.batch)]
        images = np.stack([renderers.render_variant(s, self.rng) for s in scenes])
        return (images, np.stack([sw.render(s) for s in scenes])) if self.targets else images


class GenerationSampler(_Sampler):
    """(prompt, image) pairs for generation; a null_rate share of prompts is emptied for CFG."""

    def __init__(self, folder, tok: Tokenizer, batch, seed, rank=0, world=1,
                 mix: dict[str, float] | None = None, null_rate: float = DEFAULT_NULL_RATE):
        super().__init__(folder, batch, seed, rank, world, "generation")
        if not 0 <= null_rate < 1:
            raise ValueError(f"null prompt rate must be in [0, 1), got {null_rate}")
        mix = dict(DEFAULT_MIX if mix is None else mix)
        self.kinds = tuple(k for k in MIX_KINDS if mix.get(k, 0) > 0)
        w = np.array([mix[k] for k in self.kinds], dtype=np.float64)
        self.p = w / w.sum()
        self.tok, self.null_rate = tok, null_rate
        self.pad = tok.token_to_id(EOS)

    def _example(self, i: int | None) -> tuple[str, np.ndarray]:
        if i is not None:
            return self.folder.texts[i], self.folder.images[i]
        kind = self.kinds[int(self.rng.choice(len(self.kinds), p=self.p))]
        if kind == "caption":
            scene = sw.random_caption_scene(self.rng, "train")
            return sw.caption(scene), sw.render(scene)
        prompt, scene = sw.random_prompt_example(self.rng, kind, "train")
        return prompt, sw.render(scene)

    def _draw(self) -> GenBatch:
        rows = self.cursor.take(self.batch) if self.cursor else [None] * self.batch
        prompts, images = [], []
        for i in rows:
            prompt, image = self._example(i)
            if self.rng.random() < self.null_rate:
                prompt = ""
            prompts.append(prompt)
            images.append(image)
        ids = [encode(self.tok, p) for p in prompts]
        P = max(len(x) for x in ids)
        out = np.full((self.batch, P), self.pad, dtype=np.int64)
        start = np.empty(self.batch, dtype=np.int64)
        for b, x in enumerate(ids):  # left padding: every row's BOI lands at position P
            start[b] = P - len(x)
            out[b, start[b]:] = x
        return GenBatch(out, start, np.stack(images), tuple(prompts))


class UnderstandingSampler(_Sampler):
    """(image, caption) pairs; the loss is on the caption and eos only."""

    def __init__(self, folder, tok: Tokenizer, batch, seed, rank=0, world=1):
        super().__init__(folder, batch, seed, rank, world, "understanding")
        self.tok = tok
        self.pad = tok.token_to_id(EOS)

    def _draw(self) -> UndBatch:
        rows = self.cursor.take(self.batch) if self.cursor else [None] * self.batch
        images, seqs = [], []
        for i in rows:
            if i is not None:
                text, image = self.folder.texts[i], self.folder.images[i]
            else:
                scene = sw.random_caption_scene(self.rng, "train")
                text, image = sw.caption(scene), renderers.render_variant(scene, self.rng)
            images.append(image)
            seqs.append(caption_ids(self.tok, text))
        U = max(len(ids) for ids, _ in seqs)
        ids = np.full((self.batch, U), self.pad, dtype=np.int64)
        labels = np.full((self.batch, U), -100, dtype=np.int64)
        for b, (x, n_prompt) in enumerate(seqs):
            ids[b, :len(x)] = x
            labels[b, n_prompt:len(x)] = x[n_prompt:]
        return UndBatch(np.stack(images), ids, labels)
