"""The seven graphs: one thin nn.Module per model entry point, with example inputs and
dynamic dimensions for torch.onnx (dynamo). The contract is docs/GRAPHS.md.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn
from torch.export import Dim

from ..model.heads import FoldedHeadAttention
from ..model.unifork import UniFork


class _EntryPoint(nn.Module):
    def __init__(self, model: UniFork, fn: Callable):
        super().__init__()
        self.model, self.fn = model, fn

    def forward(self, *args):
        return self.fn(self.model, *args)


@dataclass(frozen=True)
class GraphDef:
    name: str
    fn: Callable  # (model, *inputs) -> outputs
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    has_kv: bool

    def module(self, model: UniFork) -> nn.Module:
        return _EntryPoint(model, self.fn)


GRAPH_DEFS = {
    "vision_encoder": GraphDef("vision_encoder", lambda m, pixels: m.encode_image(pixels),
                               ("pixels",), ("codes",), False),
    "connector": GraphDef("connector", lambda m, codes: m.image_embeds(codes), ("codes",), ("embeds",), False),
    "trunk": GraphDef("trunk", lambda m, x, kv, pos, start: m.trunk_forward(x, kv, pos, start),
                      ("x", "kv", "pos", "start"), ("h", "kv_new"), True),
    "und_branch": GraphDef("und_branch", lambda m, h, kv, pos, start: m.und_logits(h, kv, pos, start),
                           ("h", "kv", "pos", "start"), ("logits", "kv_new"), True),
    "gen_branch": GraphDef("gen_branch", lambda m, h, kv, pos, start: m.gen_hidden(h, kv, pos, start),
                           ("h", "kv", "pos", "start"), ("hidden", "kv_new"), True),
    "rq_head": GraphDef("rq_head", lambda m, hidden, codes, kv, pos: m.head_logits(hidden, codes, kv, pos),
                        ("hidden", "codes", "kv", "pos"), ("logits", "kv_new"), True),
    "vision_decoder": GraphDef("vision_decoder", lambda m, codes: m.decode_codes(codes), ("codes",), ("pixels",),
                               False),
}


@contextlib.contextmanager
def folded_head(model: UniFork):
    """While inside: the depth head's attention blocks are FoldedHeadAttention where the config folds
    them (HeadConfig.folds_attn_proj), so the rq_head graph holds the composed matrices. The model's
    own modules are put back on exit (training and checkpoints keep the unfolded form)."""
    blocks = list(model.head.blocks) if model.cfg.head.folds_attn_proj else []
    originals = [b.attn for b in blocks]
    try:
        for b in blocks:
            b.attn = FoldedHeadAttention(b.attn)
        yield model
    finally:
        for b, attn in zip(blocks, originals):
            b.attn = attn


def kv_layers(model: UniFork, name: str) -> int:
    return {"trunk": len(model.trunk.layers), "und_branch": len(model.und.layers),
            "gen_branch": len(model.gen.layers), "rq_head": len(model.head.blocks)}.get(name, 0)


def example_inputs(model: UniFork, name: str, max_seq: int, dtype: torch.dtype):
    """Example inputs (batch 2, 3 new tokens) and the dynamic dims for one graph."""
    cfg = model.cfg
    t, im = cfg.text, cfg.image
    B, T = 2, 3
    batch = Dim("batch", min=1, max=1024)
    seq = Dim("seq", min=1, max=max_seq)
    i64 = dict(dtype=torch.int64)
    if name == "vision_encoder":
        return (torch.zeros(B, 3, im.image_size, im.image_size, dtype=dtype),), {"pixels": {0: batch}}
    if name in ("connector", "vision_decoder"):
        n = 3 if name == "connector" else im.num_cells
        dims = {0: batch, 1: Dim("cells", min=1, max=im.num_cells)} if name == "connector" else {0: batch}
        return (torch.zeros(B, n, im.depth, **i64),), {"codes": dims}
    if name == "rq_head":
        kv = model.head.empty_kv(B, im.depth, dtype=dtype)
        return ((torch.zeros(B, t.hidden_size, dtype=dtype), torch.zeros(B, im.depth, **i64), kv,
                 torch.zeros((), **i64)),
                {"hidden": {0: batch}, "codes": {0: batch}, "kv": {2: batch}, "pos": None})
    stack = {"trunk": model.trunk, "und_branch": model.und, "gen_branch": model.gen}[name]
    first = "x" if name == "trunk" else "h"
    return ((torch.zeros(B, T, t.hidden_size, dtype=dtype), stack.empty_kv(B, max_seq, dtype=dtype),
             torch.zeros((), **i64), torch.zeros(B, **i64)),
            {first: {0: batch, 1: seq}, "kv": {2: batch}, "pos": None, "start": {0: batch}})
