"""Parameter counts per component and active parameters per task (no torch needed).

Counts come from tensor shapes: a safetensors header for a model folder, or a model built
on the meta device for a preset. Conventions follow the UniFork paper (DESIGN.md §1):
understanding active = the layers on its path (trunk + und branch) + embeddings (a tied
lm_head is the embedding); generation active = trunk + gen branch + depth head, embeddings
not counted; "total (paper)" counts a tied lm_head a second time.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from .config import ModelConfig
from .errors import ModelFolderError

COMPONENTS = ("embeddings", "trunk", "und_branch", "gen_branch", "lm_head", "connector", "depth_head",
              "image_tokenizer")
_PREFIX = (("embed_tokens.", "embeddings"), ("trunk.", "trunk"), ("und.", "und_branch"),
           ("norm.", "und_branch"), ("gen.", "gen_branch"), ("norm_gen.", "gen_branch"),
           ("lm_head.", "lm_head"), ("connector.", "connector"), ("boi", "connector"), ("eoi", "connector"),
           ("head.", "depth_head"), ("image_tokenizer.", "image_tokenizer"))


def component_of(name: str) -> str:
    for prefix, comp in _PREFIX:
        if name.startswith(prefix):
            return comp
    raise ModelFolderError(f"tensor {name!r} belongs to no known component")


def count(shapes: dict[str, tuple[int, ...]]) -> dict[str, int]:
    out = dict.fromkeys(COMPONENTS, 0)
    for name, shape in shapes.items():
        out[component_of(name)] += math.prod(shape)
    return out


def safetensors_shapes(path: Path) -> dict[str, tuple[int, ...]]:
    """Read tensor shapes from a safetensors header without loading the data."""
    try:
        with open(path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            if n > 100_000_000:
                raise ValueError("header length is implausible")
            header = json.loads(f.read(n))
    except (OSError, ValueError, struct.error) as e:
        raise ModelFolderError(f"{path} is not a readable safetensors file ({e})") from None
    return {k: tuple(v["shape"]) for k, v in header.items() if k != "__metadata__"}


def preset_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    from .errors import require

    torch = require("torch", "train", "counting the parameters of a preset")
    from .model.unifork import UniFork

    with torch.device("meta"):
        model = UniFork(cfg)
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def summary(cfg: ModelConfig, counts: dict[str, int]) -> dict:
    t = cfg.text
    per_layer = (counts["trunk"] // t.shared_layers if t.shared_layers
                 else (counts["und_branch"] - t.hidden_size) // max(t.branch_layers, 1))
    tied_again = counts["embeddings"] if t.tie_word_embeddings else 0
    und = counts["trunk"] + counts["und_branch"] + counts["embeddings"] + counts["lm_head"]
    gen = counts["trunk"] + counts["gen_branch"] + counts["depth_head"]
    return {
        "components": counts,
        "per_backbone_layer": per_layer,
        "active_understanding": und,
        "active_generation": gen,
        "total_unique": sum(counts.values()),
        "total_paper_convention": sum(counts.values()) - counts["image_tokenizer"] + tied_again,
    }


def format_summary(cfg: ModelConfig, s: dict, title: str) -> str:
    t = cfg.text

    def m(n):
        return f"{n / 1e6:10.2f}M"

    lines = [f"{title}: layers {t.num_layers} per task path = trunk {t.shared_layers} + branch {t.branch_layers}, "
             f"hidden {t.hidden_size}, vocab {t.vocab_size}, image {cfg.image.image_size}px -> "
             f"{cfg.image.grid_size}x{cfg.image.grid_size}x{cfg.image.depth} codes", ""]
    for comp in COMPONENTS:
        note = " (tied: the embedding)" if comp == "lm_head" and t.tie_word_embeddings else ""
        lines.append(f"  {comp:<17}{m(s['components'][comp])}{note}")
    lines += ["",
              f"  per backbone layer        {m(s['per_backbone_layer'])}",
              f"  active, understanding     {m(s['active_understanding'])}  (trunk + und branch + embeddings)",
              f"  active, generation        {m(s['active_generation'])}  (trunk + gen branch + depth head; "
              "embeddings not counted)",
              f"  total, unique tensors     {m(s['total_unique'])}",
              f"  total, paper convention   {m(s['total_paper_convention'])}  (no image tokenizer; a tied lm_head "
              "counted twice)"]
    return "\n".join(lines)
