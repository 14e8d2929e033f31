"""Modality alignment per layer (the UniFork paper's analysis), with the mutual-kNN metric.

For n held-out ShapesWorld samples and every layer on a task's path (trunk, then branch):
    image feature = mean hidden state over the image positions at that layer
    text feature  = mean final-layer hidden state over the text's tokens (text alone, same path)
score(layer) = mutual kNN alignment (Huh et al., 2024): the mean overlap of the k nearest
neighbours (cosine) of each sample in the image-feature space and in the text-feature space.

    generation:    [prompt BOI img..]          image = the model's own drawing of the prompt
    understanding: [BOI img EOI caption-prompt] image = the scene; text = its canonical caption
"""

from __future__ import annotations

import numpy as np
import torch

from ..config import CAPTION_PROMPT
from ..data import shapes_world as sw
from ..runtime import limits
from ..runtime.sampling import Sampling
from . import reference
from .unifork import UniFork


def mutual_knn(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """Mean |kNN_a(i) ∩ kNN_b(i)| / k over rows; a, b (n, dim); self excluded; cosine similarity."""
    n = a.shape[0]
    if not 0 < k < n:
        raise ValueError(f"k={k} must be in (0, n={n})")

    def knn(x):
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
        sim = x @ x.T
        np.fill_diagonal(sim, -np.inf)
        return np.argsort(-sim, axis=1, kind="stable")[:, :k]

    na, nb = knn(a), knn(b)
    return float(np.mean([len(set(na[i]) & set(nb[i])) / k for i in range(n)]))


@torch.no_grad()
def _path_layers(model: UniFork, x: torch.Tensor, start: torch.Tensor, task: str) -> list[torch.Tensor]:
    outs = model.trunk.layer_outputs(x, start)
    h = outs[-1] if outs else x
    branch = model.und if task == "understanding" else model.gen
    return outs + branch.layer_outputs(h, start)


@torch.no_grad()
def _text_feature(model: UniFork, ids: list[int], task: str) -> np.ndarray:
    x = model.text_embeds(torch.tensor([ids]))
    return _path_layers(model, x, torch.zeros(1, dtype=torch.int64), task)[-1][0].mean(0).numpy()


@torch.no_grad()
def alignment(model: UniFork, encode, n: int = 64, k: int = 8, seed: int = 0, cfg_scale: float = 2.0) -> dict:
    """Per-layer mutual-kNN scores for both tasks. `encode(text) -> list[int]` is the tokenizer."""
    from ..runtime.images import pixels_from_uint8

    per_cat = -(-n // len(sw.CATEGORIES))
    examples = sw.held_out_prompts(per_cat, seed)[:n]
    scenes = sw.held_out_scenes(n, seed)
    N = model.cfg.image.num_cells
    feats = {"generation": ([], []), "understanding": ([], [])}
    prompt_ids = encode(CAPTION_PROMPT)
    for i, ex in enumerate(examples):  # generation: prompt -> the model's drawing
        ids = encode(ex.prompt)
        codes = torch.from_numpy(reference.draw_codes(model, ids, 1, cfg_scale, Sampling(1.0, 0, 1.0),
                                                      seed=limits.seed_for(seed, i)))
        x = torch.cat([model.text_embeds(torch.tensor([ids])), model.boi.expand(1, 1, -1),
                       model.image_embeds(codes[:, :-1])], 1)
        layers = _path_layers(model, x, torch.zeros(1, dtype=torch.int64), "generation")
        feats["generation"][0].append([h[0, len(ids) + 1:].mean(0).numpy() for h in layers])
        feats["generation"][1].append(_text_feature(model, ids, "generation"))
    for scene in scenes:  # understanding: the scene's image with the caption prompt
        pixels = torch.from_numpy(pixels_from_uint8(sw.render(scene)))[None]
        codes = model.encode_image(pixels)
        x = torch.cat([model.boi.expand(1, 1, -1), model.image_embeds(codes), model.eoi.expand(1, 1, -1),
                       model.text_embeds(torch.tensor([prompt_ids]))], 1)
        layers = _path_layers(model, x, torch.zeros(1, dtype=torch.int64), "understanding")
        feats["understanding"][0].append([h[0, 1:1 + N].mean(0).numpy() for h in layers])
        feats["understanding"][1].append(_text_feature(model, encode(sw.caption(scene)), "understanding"))
    out = {"n": n, "k": k, "seed": seed, "shared_layers": model.cfg.text.shared_layers,
           "num_layers": model.cfg.text.num_layers}
    for task, (img, txt) in feats.items():
        img, txt = np.array(img), np.array(txt)  # (n, layers, H), (n, H)
        out[task] = [mutual_knn(img[:, layer], txt, k) for layer in range(img.shape[1])]
    return out


def plot(result: dict, path) -> None:
    """Both curves against layer index, with the trunk/branch split marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from ..io import atomic_path

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    for task, style in (("understanding", "o-"), ("generation", "s-")):
        ys = result[task]
        ax.plot(range(1, len(ys) + 1), ys, style, label=task)
    ax.axvline(result["shared_layers"] + 0.5, color="gray", ls="--", lw=1, label="trunk | branch")
    ax.set_xlabel("layer")
    ax.set_ylabel(f"mutual kNN alignment (k={result['k']})")
    ax.set_title(f"Image-text alignment per layer (n={result['n']})")
    ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
