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


# --- the official checkpoint's convention (docs/OFFICIAL.md) ----------------------------------------
# groups of an official UniFork checkpoint, in OFFICIAL_UNIFORK.md §1.3's order
OFFICIAL_GROUPS = ("embed_tokens", "layers (trunk + und)", "gen_fork_layers", "norm + norm_gen", "lm_head (tied copy)",
                   "mm_projector", "siglip vision (all layers)", "quantizer (4 copies + EMA)", "post_quant_conv",
                   "decoder", "depth head (rqtransformer)")


def official_components(cfg: ModelConfig) -> dict[str, int]:
    """Elements per group of the checkpoint the official code saves for this config, counted
    arithmetically (no torch). Not derivable from our config, so left out: SigLIP's text tower
    (336.2M at the released size) and the four logit_scale/bias scalars."""
    if cfg.tower is None:
        raise ValueError("official counts exist only for configs with a SigLIP tower (preset official)")
    t, im, hd, tw = cfg.text, cfg.image, cfg.head, cfg.tower
    H, V, I, kv = t.hidden_size, t.vocab_size, t.intermediate_size, t.num_kv_heads * t.head_dim
    layer = (H * H + H) + 2 * (kv * H + kv) + H * H + 3 * H * I + 2 * H
    W, M, p, C, K, D = tw.width, tw.mlp_dim, tw.patch_size, im.codebook_dim, im.codebook_size, im.depth

    def lin(i, o):
        return i * o + o

    def conv(i, o, k):
        return i * o * k * k + o

    def res(i, o):
        return 2 * i + conv(i, o, 3) + 2 * o + conv(o, o, 3) + (conv(i, o, 1) if i != o else 0)

    def attn(c):
        return 2 * c + 4 * conv(c, c, 1)

    siglip_layer = 4 * lin(W, W) + 4 * W + lin(W, M) + lin(M, W)
    pool_head = W + lin(W, 3 * W) + lin(W, W) + 2 * W + lin(W, M) + lin(M, W)
    c = tw.ch * tw.ch_mult[-1]
    dec = conv(tw.z_channels, c, 3) + 2 * res(c, c) + attn(c)
    for i in reversed(range(len(tw.ch_mult))):
        co = tw.ch * tw.ch_mult[i]
        for _ in range(tw.res_blocks + 1):
            dec += res(c, co) + (attn(co) if i == len(tw.ch_mult) - 1 else 0)
            c = co
        dec += conv(c, c, 3) if i else 0
    dec += 2 * c + conv(c, 3, 3)
    Wh, A = hd.width, hd.attn_width
    block = 4 * Wh + lin(Wh, A) + 4 * lin(A, A) + lin(A, Wh) + lin(Wh, hd.mlp_dim) + lin(hd.mlp_dim, Wh)
    return dict(zip(OFFICIAL_GROUPS, (
        V * H, t.num_layers * layer, t.branch_layers * layer, 2 * H, V * H,
        lin(C, H) + lin(H, H) + 2 * H,
        W * 3 * p * p + W + tw.pos_grid ** 2 * W + (tw.num_layers + 1) * siglip_layer + 2 * W + pool_head,
        D * ((K + 1) * C + K + K * C), conv(C, tw.z_channels, 1), dec,
        lin(H, Wh) + lin(C, Wh) + D * Wh + hd.num_layers * block + 2 * Wh + lin(Wh, K))))


def format_official(cfg: ModelConfig) -> str:
    comps = official_components(cfg)
    lines = ["", "  official checkpoint (tliby/UniFork save, OFFICIAL_UNIFORK.md §1.3; what `convert` reads):"]
    lines += [f"    {name:<30}{n / 1e6:10.2f}M" for name, n in comps.items()]
    lines.append(f"    {'total (without SigLIP text)':<30}{sum(comps.values()) / 1e6:10.2f}M")
    lines.append("    not run by inference, not converted: SigLIP's last layer, post-LN and pooling head, its text "
                 "tower, the codebook copies and EMA buffers")
    return "\n".join(lines)
