"""Parameter counts per component and active parameters per task (no torch needed).

Counts come from tensor shapes: a safetensors header for a model folder, or arithmetic on
the config for a preset. Conventions follow the UniFork paper (DESIGN.md §1):
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
from .io import path_problem, shown

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
        if not isinstance(header, dict):
            raise ValueError("the header is not a JSON object")
        shapes = {}
        for k, v in header.items():
            if k == "__metadata__":
                continue
            shape = v.get("shape") if isinstance(v, dict) else None
            if not isinstance(shape, list) or not all(type(d) is int and 0 <= d < 2**40 for d in shape):
                raise ValueError(f"tensor {k[:60]!r} has the shape {str(shape)[:60]}, not a list of dims >= 0")
            shapes[k] = tuple(shape)
    except (OSError, ValueError, struct.error, RecursionError) as e:
        why = path_problem(e) if isinstance(e, OSError) else "nested too deeply" if isinstance(e, RecursionError) \
            else str(e)
        raise ModelFolderError(f"{shown(path)} is not a readable safetensors file ({why})") from None
    return shapes


def preset_shapes(cfg: ModelConfig) -> dict[str, tuple[int, ...]]:
    """Every tensor's shape of UniFork(cfg), by name, from the config alone (arithmetic, no torch;
    tests/test_model.py checks it against the model's state_dict)."""
    t, im, hd = cfg.text, cfg.image, cfg.head
    H, kv = t.hidden_size, t.num_kv_heads * t.head_dim
    out: dict[str, tuple[int, ...]] = {"boi": (H,), "eoi": (H,), "embed_tokens.weight": (t.vocab_size, H)}

    def linear(name: str, n_in: int, n_out: int, bias: bool = True) -> None:
        out[f"{name}.weight"] = (n_out, n_in)
        if bias:
            out[f"{name}.bias"] = (n_out,)

    linear("connector.fc1", im.codebook_dim, H)
    linear("connector.fc2", H, H)
    for stack, layers in (("trunk", t.shared_layers), ("und", t.branch_layers), ("gen", t.branch_layers)):
        for i in range(layers):
            p = f"{stack}.layers.{i}"
            out[f"{p}.input_layernorm.weight"] = (H,)
            linear(f"{p}.self_attn.q_proj", H, H)
            linear(f"{p}.self_attn.k_proj", H, kv)
            linear(f"{p}.self_attn.v_proj", H, kv)
            linear(f"{p}.self_attn.o_proj", H, H, bias=False)
            out[f"{p}.post_attention_layernorm.weight"] = (H,)
            linear(f"{p}.mlp.gate_proj", H, t.intermediate_size, bias=False)
            linear(f"{p}.mlp.up_proj", H, t.intermediate_size, bias=False)
            linear(f"{p}.mlp.down_proj", t.intermediate_size, H, bias=False)
    out["norm.weight"] = out["norm_gen.weight"] = (H,)
    if not t.tie_word_embeddings:
        linear("lm_head", H, t.vocab_size, bias=False)
    W, A = hd.width, hd.attn_width
    out["head.depth_emb"] = (im.depth, W)
    linear("head.in_hidden", H, W)
    linear("head.in_code", im.codebook_dim, W)
    for i in range(hd.num_layers):
        p = f"head.blocks.{i}"
        out[f"{p}.ln1.weight"] = out[f"{p}.ln1.bias"] = out[f"{p}.ln2.weight"] = out[f"{p}.ln2.bias"] = (W,)
        if hd.has_attn_proj:
            linear(f"{p}.attn.proj_in", W, A)
            linear(f"{p}.attn.proj_out", A, W)
        for name in ("q_proj", "k_proj", "v_proj", "o_proj"):
            linear(f"{p}.attn.{name}", A, A)
        linear(f"{p}.fc1", W, hd.mlp_dim)
        linear(f"{p}.fc2", hd.mlp_dim, W)
    out["head.ln_f.weight"] = out["head.ln_f.bias"] = (W,)
    linear("head.out", W, im.codebook_size)
    out["image_tokenizer.codebook"] = (im.codebook_size, im.codebook_dim)

    def conv(name: str, n_in: int, n_out: int, k: int, transposed: bool = False) -> None:
        out[f"{name}.weight"] = (n_in, n_out, k, k) if transposed else (n_out, n_in, k, k)
        out[f"{name}.bias"] = (n_out,)

    if cfg.tower is not None:
        _tower_shapes(cfg, out, linear, conv)
        return out
    # the conv stacks of model/rqvae.py: nn.Sequential indices count the GELUs between convolutions
    big, small = (2, 1) if im.local else (4, 3)
    i, c_in = 0, 3
    for c in im.channels:
        conv(f"image_tokenizer.encoder.net.{i}", c_in, c, big)
        conv(f"image_tokenizer.encoder.net.{i + 2}", c, c, small)
        i, c_in = i + 4, c
    conv(f"image_tokenizer.encoder.net.{i}", c_in, im.codebook_dim, 1)
    chans = list(reversed(im.channels))
    conv("image_tokenizer.decoder.net.0", im.codebook_dim, chans[0], 1)
    i = 2
    for k, c in enumerate(chans):
        c_out = chans[k + 1] if k + 1 < len(chans) else chans[-1]
        conv(f"image_tokenizer.decoder.net.{i}", c, c_out, big, transposed=True)
        conv(f"image_tokenizer.decoder.net.{i + 2}", c_out, c_out, small)
        i += 4
    conv(f"image_tokenizer.decoder.net.{i}", chans[-1], 3, 1 if im.local else 3)
    return out


def _tower_shapes(cfg: ModelConfig, out: dict, linear, conv) -> None:
    """The SigLIP tower of model/tower.py (its decoder named as the taming decoder)."""
    tw, p = cfg.tower, "image_tokenizer"
    W = tw.width
    conv(f"{p}.patch_embedding", 3, W, tw.patch_size)
    out[f"{p}.position_embedding"] = (tw.pos_grid ** 2, W)
    for i in range(tw.num_layers):
        q = f"{p}.layers.{i}"
        for ln in ("layer_norm1", "layer_norm2"):
            out[f"{q}.{ln}.weight"] = out[f"{q}.{ln}.bias"] = (W,)
        for name in ("q_proj", "k_proj", "v_proj", "out_proj"):
            linear(f"{q}.self_attn.{name}", W, W)
        linear(f"{q}.mlp.fc1", W, tw.mlp_dim)
        linear(f"{q}.mlp.fc2", tw.mlp_dim, W)
    conv(f"{p}.post_quant_conv", W, tw.z_channels, 1)
    d = f"{p}.decoder"

    def norm(name: str, c: int) -> None:
        out[f"{name}.weight"] = out[f"{name}.bias"] = (c,)

    def res(name: str, ci: int, co: int) -> None:
        norm(f"{name}.norm1", ci)
        conv(f"{name}.conv1", ci, co, 3)
        norm(f"{name}.norm2", co)
        conv(f"{name}.conv2", co, co, 3)
        if ci != co:
            conv(f"{name}.nin_shortcut", ci, co, 1)

    def attn(name: str, c: int) -> None:
        norm(f"{name}.norm", c)
        for k in ("q", "k", "v", "proj_out"):
            conv(f"{name}.{k}", c, c, 1)

    levels = len(tw.ch_mult)
    c = tw.ch * tw.ch_mult[-1]
    conv(f"{d}.conv_in", tw.z_channels, c, 3)
    res(f"{d}.mid.block_1", c, c)
    attn(f"{d}.mid.attn_1", c)
    res(f"{d}.mid.block_2", c, c)
    for i in reversed(range(levels)):
        co = tw.ch * tw.ch_mult[i]
        for j in range(tw.res_blocks + 1):
            res(f"{d}.up.{i}.block.{j}", c, co)
            c = co
            if i == levels - 1:
                attn(f"{d}.up.{i}.attn.{j}", c)
        if i:
            conv(f"{d}.up.{i}.upsample.conv", c, c, 3)
    norm(f"{d}.norm_out", c)
    conv(f"{d}.conv_out", c, 3, 3)


def summary(cfg: ModelConfig, counts: dict[str, int]) -> dict:
    t = cfg.text
    per_layer = (counts["trunk"] // t.shared_layers if t.shared_layers
                 else (counts["und_branch"] - t.hidden_size) // max(t.branch_layers, 1))
    tied_again = counts["embeddings"] if t.tie_word_embeddings else 0
    und = counts["trunk"] + counts["und_branch"] + counts["embeddings"] + counts["lm_head"]
    gen = counts["trunk"] + counts["gen_branch"] + counts["depth_head"]
    return {
        "components": counts,
        "depth_head_exported": exported_depth_head(cfg, counts["depth_head"]),
        "per_backbone_layer": per_layer,
        "active_understanding": und,
        "active_generation": gen,
        "total_unique": sum(counts.values()),
        "total_paper_convention": sum(counts.values()) - counts["image_tokenizer"] + tied_again,
    }


def exported_depth_head(cfg: ModelConfig, params: int) -> int:
    """The depth head's weights in the rq_head graph: PARAMS, less what composing the attention
    projections removes where the export does it (HeadConfig.folds_attn_proj, docs/GRAPHS.md):
    per block proj_in + q/k/v/o + proj_out (4·A² + 2·W·A + 5·A + W with biases) become three W -> A and
    one A -> W (4·W·A + 3·A + W)."""
    h = cfg.head
    if not h.folds_attn_proj:
        return params
    W, A = h.width, h.attn_width
    return params - h.num_layers * (4 * A * A - 2 * W * A + 2 * A)


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
        if comp == "depth_head" and s["depth_head_exported"] != s["components"][comp]:
            lines.append(f"    as exported    {m(s['depth_head_exported'])} (attention projections composed; "
                         "docs/GRAPHS.md)")
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
