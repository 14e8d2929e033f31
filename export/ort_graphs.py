"""The ORT-optimized variant of the decoder graphs (trunk, und_branch, gen_branch), built
directly with onnx.helper from the model's weights: ONNX Runtime contrib ops, for its CPU kernels.

The portable graphs (export/graphs.py, torch.onnx) stay for TensorRT; this variant replaces
their ~70 glue nodes per layer (unfused RMSNorm, rotate_half, the mask, Split/Concat of the
fused KV buffer) with about a dozen:

    x ─► RMSNormalization ─► MatMul(Wqkv) + b ─► GroupQueryAttention ─► MatMul(Wo) ─┐
         (rotary inside; past/present = one layer's K/V slice of the fused buffer)     │
    ┌─────────────────────────────────────────────────────────────────────────────────┘
    └► SkipSimplifiedLayerNorm (residual add + norm) ─► MatMul(Wg), MatMul(Wu) ─► g·σ(g)·u ─► MatMul(Wd)
       ─► next layer's SkipSimplifiedLayerNorm (its residual add), or the final one / an Add

Letters: B batch, T new tokens, S max_seq, H hidden, Hq/Hkv query/KV heads, Dh head dim, L layers.

KV contract. The runtime's fused buffer is still ONE array (L, 2, B, Hkv, S, Dh) per graph; its
slice [i, 0] (layer i's K, (B, Hkv, S, Dh)) is contiguous, so the backend binds it as both the
input `past_key_i` and the output `present_key_i` (likewise V): GroupQueryAttention then writes
the T new slices in place at [pos, pos + T) and nothing else is copied (docs/GRAPHS.md).

Positions and padding keep the portable contract (`pos` () int64, `start` (B,) int64, rows
left-padded): a small preamble, computed once per graph, turns them into GQA's inputs:
seqlens_k = pos + T - 1 and query_seqlens = T for every row (all rows share pos),
position_ids = max(pos + i - start[b], 0), and an additive attention_bias (B, 1, T, pos + T)
that hides the slots before start[b] (the causal part is GQA's own).

Float weights. In an fp32 bundle every MatMul by a weight matrix is written as com.microsoft
TransposeMatMul (ONNX Runtime's older name of FusedMatMul; no attributes: plain A . B), which
unifork-rt's kernel library takes over in our sessions (runtime/kernels/fmatmul_kernels.c, the weights
read as several streams; measured in docs/KERNELS.md "Float weights") and which ONNX Runtime runs
itself where the library does not load. Quantized bundles keep MatMul:
their quantizers rewrite it to MatMulNBits / MatMulInteger.
"""

from __future__ import annotations

import numpy as np

from ..model.layers import MASK_FILL
from ..runtime.qmatmul import FLOAT_KERNEL_OP  # com.microsoft TransposeMatMul; runtime/kernels/qmatmul_op.c runs it

GQA_DOMAIN = "com.microsoft"
OPSET = 23  # ONNX opset of these graphs: RMSNormalization (ONNX Runtime >= 1.22)
KINDS = ("trunk", "und_branch", "gen_branch")  # build_decoder_graph; rq_head: build_head_graph


def rope_caches(max_seq: int, head_dim: int, theta: float) -> tuple[np.ndarray, np.ndarray]:
    """cos/sin caches (S, Dh/2) float32, the same angles as model.layers.rope_cos_sin."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float32) / head_dim))
    freqs = np.arange(max_seq, dtype=np.float32)[:, None] * inv_freq[None, :].astype(np.float32)
    return np.cos(freqs).astype(np.float32), np.sin(freqs).astype(np.float32)


class _Builder:
    """Accumulates nodes and initializers; names are unique by construction."""

    def __init__(self):
        self.nodes, self.inits = [], []
        self._n = 0

    def init(self, name: str, array: np.ndarray) -> str:
        from onnx import numpy_helper

        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def const(self, name: str, values, dtype) -> str:
        return self.init(name, np.asarray(values, dtype=dtype))

    def op(self, op_type: str, inputs: list[str], n_out: int = 1, name: str | None = None, domain: str = "",
           outputs: list[str] | None = None, **attrs) -> list[str] | str:
        from onnx import helper

        self._n += 1
        base = name or f"{op_type.lower()}_{self._n}"
        outs = outputs or ([base] if n_out == 1 else [f"{base}.{k}" for k in range(n_out)])
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=base, domain=domain or None, **attrs))
        return outs[0] if n_out == 1 else outs


def _preamble(b: _Builder, x: str) -> dict[str, str]:
    """GQA's control inputs from (x, pos, start); once per graph.

        T = shape(x)[1];  total = pos + T
        seqlens_k (B,) i32 = total - 1          query_seqlens (B,) i32 = T
        position_ids (B, T) = max(pos + i - start[b], 0)
        attention_bias (B, 1, T, total) = 0 where slot j >= start[b] else MASK_FILL
    """
    i64, i32, f32 = np.int64, np.int32, np.float32
    zero, one = b.const("c.zero", [0], i64), b.const("c.one", [1], i64)
    z_s, one_s = b.const("c.zero_s", 0, i64), b.const("c.one_s", 1, i64)
    B = b.op("Shape", [x], name="p.B", start=0, end=1)  # (1,)
    T = b.op("Shape", [x], name="p.T", start=1, end=2)  # (1,)
    total = b.op("Add", [b.op("Unsqueeze", ["pos", zero], name="p.pos1"), T], name="p.total")  # (1,)
    total32 = b.op("Cast", [total], name="p.total32", to=6)
    seqlens = b.op("Expand", [b.op("Sub", [total32, b.const("c.one32", [1], i32)], name="p.last32"), B],
                   name="p.seqlens_k")
    qlens = b.op("Expand", [b.op("Cast", [T], name="p.T32", to=6), B], name="p.query_seqlens")
    total_s = b.op("Squeeze", [total32, zero], name="p.total_sequence_length")  # () int32
    T_s = b.op("Squeeze", [T, zero], name="p.T_s")
    i = b.op("Range", [z_s, T_s, one_s], name="p.i")  # (T,)
    p = b.op("Sub", [b.op("Unsqueeze", [b.op("Add", ["pos", i], name="p.abs"), zero], name="p.abs2"),
                     b.op("Unsqueeze", ["start", one], name="p.start2")], name="p.rel")  # (B, T)
    pos_ids = b.op("Max", [p, z_s], name="p.position_ids")
    j = b.op("Range", [z_s, b.op("Squeeze", [total, zero], name="p.total_s64"), one_s], name="p.j")  # (total,)
    valid = b.op("GreaterOrEqual", [b.op("Unsqueeze", [j, zero], name="p.j2"),
                                    b.op("Unsqueeze", ["start", one], name="p.start2b")], name="p.valid")  # (B, total)
    bias2 = b.op("Where", [valid, b.const("c.f0", 0.0, f32), b.const("c.fill", MASK_FILL, f32)], name="p.bias2")
    bias4 = b.op("Unsqueeze", [bias2, b.const("c.ax12", [1, 2], i64)], name="p.bias4")  # (B, 1, 1, total)
    shape = b.op("Concat", [B, b.const("c.one_b", [1], i64), T, total], name="p.bias_shape", axis=0)
    bias = b.op("Expand", [bias4, shape], name="p.attention_bias")  # (B, 1, T, total)
    return {"seqlens_k": seqlens, "total": total_s, "position_ids": pos_ids, "bias": bias, "query_seqlens": qlens}


def _linear(b: _Builder, x: str, w: np.ndarray, name: str, bias: np.ndarray | None = None) -> str:
    """x @ w.T (+ bias); w (N, K) as nn.Linear stores it, kept (K, N) for MatMul (and its quantizer)."""
    y = b.op("MatMul", [x, b.init(f"{name}.weight", w.T)], name=name)
    if bias is not None:
        y = b.op("Add", [y, b.init(f"{name}.bias", bias)], name=f"{name}.add")
    return y


def build_decoder_graph(kind: str, weights: dict[str, np.ndarray], prefix: str, num_layers: int, *, hidden: int,
                        num_heads: int, num_kv_heads: int, head_dim: int, rope_theta: float, eps: float,
                        max_seq: int, final_norm: np.ndarray | None = None, lm_head: np.ndarray | None = None):
    """One ORT-optimized decoder graph as an onnx.ModelProto (float32).

    kind: trunk (-> h, the residual stream), und_branch (-> logits (B, V) of the last position:
    final norm + lm_head), gen_branch (-> hidden (B, T, H) after final norm). weights: the model's
    state dict as numpy; prefix: "trunk.layers" / "und.layers" / "gen.layers".
    """
    from onnx import TensorProto, helper

    if kind not in KINDS:
        raise ValueError(f"unknown graph kind {kind!r}; valid: {', '.join(KINDS)}")
    b = _Builder()
    first = "x" if kind == "trunk" else "h"
    ctl = _preamble(b, first)
    cos, sin = rope_caches(max_seq, head_dim, rope_theta)
    cos, sin = b.init("rope.cos", cos), b.init("rope.sin", sin)
    inputs = [helper.make_tensor_value_info(first, TensorProto.FLOAT, ["batch", "seq", hidden])]
    outputs = []
    kv_shape = ["batch", num_kv_heads, max_seq, head_dim]
    resid, pending = first, None  # pending: the last layer's MLP output, not yet added to resid
    for li in range(num_layers):
        w = lambda n: weights[f"{prefix}.{li}.{n}"]  # noqa: E731 - short local accessor
        ln1 = b.init(f"l{li}.ln1", w("input_layernorm.weight"))
        if pending is None:
            # the first norm has no residual to add: ONNX RMSNormalization (opset 23; ORT runs it with the
            # same kernel as its SimplifiedLayerNormalization, which onnx.checker does not know)
            normed = b.op("RMSNormalization", [resid, ln1], name=f"l{li}.ln1.norm", axis=-1, epsilon=eps,
                          stash_type=1)
        else:
            normed, resid = b.op("SkipSimplifiedLayerNormalization", [pending, resid, ln1], n_out=4,
                                 name=f"l{li}.ln1.norm", domain=GQA_DOMAIN, epsilon=eps,
                                 outputs=[f"l{li}.ln1.out", "", "", f"l{li}.resid_in"])[0::3]
        wqkv = np.concatenate([w("self_attn.q_proj.weight"), w("self_attn.k_proj.weight"),
                               w("self_attn.v_proj.weight")], axis=0)  # (Hq*Dh + 2*Hkv*Dh, H)
        bqkv = np.concatenate([w("self_attn.q_proj.bias"), w("self_attn.k_proj.bias"), w("self_attn.v_proj.bias")])
        qkv = _linear(b, normed, wqkv, f"l{li}.qkv", bqkv)  # (B, T, (Hq + 2 Hkv) Dh), packed
        pk, pv = f"past_key_{li}", f"past_value_{li}"
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in (pk, pv)]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape)
                    for n in (f"present_key_{li}", f"present_value_{li}")]
        attn = b.op("GroupQueryAttention",
                    [qkv, "", "", pk, pv, ctl["seqlens_k"], ctl["total"], cos, sin, ctl["position_ids"], ctl["bias"],
                     "", "", "", "", "", ctl["query_seqlens"]],
                    name=f"l{li}.attn", domain=GQA_DOMAIN, num_heads=num_heads, kv_num_heads=num_kv_heads,
                    do_rotary=1, outputs=[f"l{li}.attn.out", f"present_key_{li}", f"present_value_{li}"])
        o = _linear(b, attn, w("self_attn.o_proj.weight"), f"l{li}.o")
        ln2 = b.init(f"l{li}.ln2", w("post_attention_layernorm.weight"))
        normed, resid = b.op("SkipSimplifiedLayerNormalization", [o, resid, ln2], n_out=4, name=f"l{li}.ln2.norm",
                             domain=GQA_DOMAIN, epsilon=eps,
                             outputs=[f"l{li}.ln2.out", "", "", f"l{li}.resid_mid"])[0::3]
        g = _linear(b, normed, w("mlp.gate_proj.weight"), f"l{li}.gate")
        u = _linear(b, normed, w("mlp.up_proj.weight"), f"l{li}.up")
        act = b.op("Mul", [b.op("Mul", [g, b.op("Sigmoid", [g], name=f"l{li}.sig")], name=f"l{li}.silu"), u],
                   name=f"l{li}.glu")
        pending = _linear(b, act, w("mlp.down_proj.weight"), f"l{li}.down")
    f32 = TensorProto.FLOAT
    if kind == "trunk":
        b.op("Add", [pending, resid], name="h.add", outputs=["h"])
        head = [helper.make_tensor_value_info("h", f32, ["batch", "seq", hidden])]
    elif kind == "gen_branch":
        b.op("SkipSimplifiedLayerNormalization", [pending, resid, b.init("norm.weight", final_norm)],
             name="final.norm", domain=GQA_DOMAIN, epsilon=eps, outputs=["hidden"])
        head = [helper.make_tensor_value_info("hidden", f32, ["batch", "seq", hidden])]
    else:  # und_branch: the norm and the head on the last position only
        last = b.const("c.last", [-1], np.int64)
        big = b.const("c.big", [np.iinfo(np.int64).max], np.int64)
        ax1 = b.const("c.ax1", [1], np.int64)
        pl = b.op("Slice", [pending, last, big, ax1], name="final.pending_last")  # (B, 1, H)
        rl = b.op("Slice", [resid, last, big, ax1], name="final.resid_last")
        xn = b.op("SkipSimplifiedLayerNormalization", [pl, rl, b.init("norm.weight", final_norm)],
                  name="final.norm", domain=GQA_DOMAIN, epsilon=eps)
        x2 = b.op("Squeeze", [xn, ax1], name="final.squeeze")  # (B, H)
        _ = b.op("MatMul", [x2, b.init("lm_head.weight", lm_head.T)], name="lm_head", outputs=["logits"])
        head = [helper.make_tensor_value_info("logits", f32, ["batch", lm_head.shape[0]])]
    inputs += [helper.make_tensor_value_info("pos", TensorProto.INT64, []),
               helper.make_tensor_value_info("start", TensorProto.INT64, ["batch"])]
    graph = helper.make_graph(b.nodes, f"{kind}_ort", inputs, head + outputs, initializer=b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(GQA_DOMAIN, 1)],
                             ir_version=10, producer_name="unifork-rt")


def _lin(mod) -> tuple[np.ndarray, np.ndarray]:
    """An nn.Linear as numpy: weight (N, K), bias (N,)."""
    return _np(mod.weight), _np(mod.bias)


def build_head_graph(head, codebook: np.ndarray, eps: float = 1e-5):
    """The RQ depth head's step (graph `rq_head`) in the ORT-optimized form, as an onnx.ModelProto.

    Same contract as the portable graph (hidden (B, H), codes (B, D), pos () -> logits (B, K)), but
    its KV is the decoders' shared form: layer i's K and V slices of the one (Lh, 2, B, h, D, dh)
    buffer bound as past_/present_{key,value}_i, written in place by GroupQueryAttention (no rotary;
    h query heads = h KV heads). The portable graph splits the whole buffer and concatenates every
    layer's K and V at each of the D steps, a copy that grows with the rows: at `paper` 8 rows that
    was 3.4 of the step's 18 ms (docs/BENCHMARKS.md). head: the DepthHead, folded where its config
    folds (export/graphs.py folded_head); codebook (K, C) float32.

        codes ─► Gather(codebook) · [d < pos] ─► sum ─► Linear_c ┐
        hidden ───────────────────────────────────────► Linear_h ┴► Where(pos = 0) + depth_emb[pos]
        ─► per block: LayerNorm ─► qkv ─► GQA ─► o ─► SkipLayerNorm (residual) ─► fc1 ─► BiasGelu ─► fc2
        ─► SkipLayerNorm (ln_f) ─► out ─► logits
    """
    from onnx import TensorProto, helper

    i64, i32 = np.int64, np.int32
    cfg = head.cfg
    D, h, dh = head.depth, cfg.num_heads, cfg.head_dim
    H, K = head.in_hidden.weight.shape[1], head.out.weight.shape[0]
    b = _Builder()
    zero, one = b.const("c.zero", [0], i64), b.const("c.one", [1], i64)
    # preamble: the step's input x (B, 1, W) and GQA's controls (one new position at pos, no padding)
    seen = b.op("Cast", [b.op("Less", [b.const("c.depths", np.arange(D), i64), "pos"], name="p.lt")],
                name="p.seen", to=TensorProto.FLOAT)  # (D,)
    emb = b.op("Gather", [b.init("codebook", codebook), "codes"], name="p.emb")  # (B, D, C)
    weighted = b.op("Mul", [emb, b.op("Unsqueeze", [seen, b.const("c.ax02", [0, 2], i64)], name="p.seen3")],
                    name="p.weighted")
    prefix = b.op("ReduceSum", [weighted, one], name="p.prefix", keepdims=0)  # (B, C)
    xh = _linmod(b, "hidden", head.in_hidden, "in_hidden")
    xc = _linmod(b, prefix, head.in_code, "in_code")
    x0 = b.op("Where", [b.op("Equal", ["pos", b.const("c.zero_s", 0, i64)], name="p.first"), xh, xc], name="p.x0")
    demb = b.op("Gather", [b.init("depth_emb", _np(head.depth_emb)), "pos"], name="p.demb")
    x = b.op("Unsqueeze", [b.op("Add", [x0, demb], name="p.x1"), one], name="p.x")  # (B, 1, W)
    Bs = b.op("Shape", ["hidden"], name="p.B", start=0, end=1)
    pos32 = b.op("Cast", [b.op("Unsqueeze", ["pos", zero], name="p.pos1")], name="p.pos32", to=6)  # (1,)
    seqlens = b.op("Expand", [pos32, Bs], name="p.seqlens_k")  # (B,) = pos + T - 1, T = 1
    total = b.op("Squeeze", [b.op("Add", [pos32, b.const("c.one32", [1], i32)], name="p.total1"), zero],
                 name="p.total_sequence_length")
    qlens = b.op("Expand", [b.const("c.one32b", [1], i32), Bs], name="p.query_seqlens")

    def ln(mod, name: str) -> tuple[str, str]:
        return b.init(f"{name}.weight", _np(mod.weight)), b.init(f"{name}.bias", _np(mod.bias))

    inputs = [helper.make_tensor_value_info("hidden", TensorProto.FLOAT, ["batch", H]),
              helper.make_tensor_value_info("codes", TensorProto.INT64, ["batch", D])]
    outputs = []
    kv_shape = ["batch", h, D, dh]
    resid, pending = x, None
    for li, blk in enumerate(head.blocks):
        g1, b1 = ln(blk.ln1, f"blocks.{li}.ln1")
        if pending is None:
            normed = b.op("LayerNormalization", [resid, g1, b1], name=f"l{li}.ln1.norm", axis=-1, epsilon=eps)
        else:
            normed, resid = b.op("SkipLayerNormalization", [pending, resid, g1, b1], n_out=4, name=f"l{li}.ln1.norm",
                                 domain=GQA_DOMAIN, epsilon=eps,
                                 outputs=[f"l{li}.ln1.out", "", "", f"l{li}.resid_in"])[0::3]
        a = blk.attn
        normed = _linmod(b, normed, a.proj_in, f"l{li}.proj_in")  # nn.Identity where the head folds
        (wq, bq), (wk, bk), (wv, bv) = _lin(a.q_proj), _lin(a.k_proj), _lin(a.v_proj)
        qkv = _linear(b, normed, np.concatenate([wq, wk, wv]), f"l{li}.qkv", np.concatenate([bq, bk, bv]))
        pk, pv = f"past_key_{li}", f"past_value_{li}"
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape) for n in (pk, pv)]
        outputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, kv_shape)
                    for n in (f"present_key_{li}", f"present_value_{li}")]
        attn = b.op("GroupQueryAttention",
                    [qkv, "", "", pk, pv, seqlens, total, "", "", "", "", "", "", "", "", "", qlens],
                    name=f"l{li}.attn", domain=GQA_DOMAIN, num_heads=h, kv_num_heads=h, do_rotary=0,
                    outputs=[f"l{li}.attn.out", f"present_key_{li}", f"present_value_{li}"])
        o = _linmod(b, _linmod(b, attn, a.o_proj, f"l{li}.o"), a.proj_out, f"l{li}.proj_out")
        g2, b2 = ln(blk.ln2, f"blocks.{li}.ln2")
        normed, resid = b.op("SkipLayerNormalization", [o, resid, g2, b2], n_out=4, name=f"l{li}.ln2.norm",
                             domain=GQA_DOMAIN, epsilon=eps,
                             outputs=[f"l{li}.ln2.out", "", "", f"l{li}.resid_mid"])[0::3]
        w1, bias1 = _lin(blk.fc1)
        up = b.op("MatMul", [normed, b.init(f"l{li}.fc1.weight", w1.T)], name=f"l{li}.fc1")
        act = b.op("BiasGelu", [up, b.init(f"l{li}.fc1.bias", bias1)], name=f"l{li}.gelu", domain=GQA_DOMAIN)
        pending = _linmod(b, act, blk.fc2, f"l{li}.fc2")
    gf, bf = ln(head.ln_f, "ln_f")
    xn = b.op("SkipLayerNormalization", [pending, resid, gf, bf], name="final.norm", domain=GQA_DOMAIN, epsilon=eps)
    x2 = b.op("Squeeze", [xn, one], name="final.squeeze")  # (B, W)
    wo, bo = _lin(head.out)
    _ = b.op("Add", [b.op("MatMul", [x2, b.init("out.weight", wo.T)], name="out"), b.init("out.bias", bo)],
             name="out.add", outputs=["logits"])
    inputs.append(helper.make_tensor_value_info("pos", TensorProto.INT64, []))
    head_out = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", K])]
    graph = helper.make_graph(b.nodes, "rq_head_ort", inputs, head_out + outputs, initializer=b.inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(GQA_DOMAIN, 1)],
                             ir_version=10, producer_name="unifork-rt")


def _linmod(b: _Builder, x: str, mod, name: str) -> str:
    """x through an nn.Linear (x itself for an nn.Identity)."""
    if not hasattr(mod, "weight"):
        return x
    w, bias = _lin(mod)
    return _linear(b, x, w, name, bias)


def _np(t) -> np.ndarray:
    return t.detach().float().cpu().numpy()


def float_weights_on_kernel(proto) -> int:
    """Rewrite each MatMul whose B is a 2-D float initializer as com.microsoft TransposeMatMul (the same
    product), in place; the count rewritten. For fp32 bundles only: quantizers look for MatMul."""
    from onnx import TensorProto

    weights = {t.name for t in proto.graph.initializer if len(t.dims) == 2 and t.data_type == TensorProto.FLOAT}
    count = 0
    for n in proto.graph.node:
        if n.op_type == "MatMul" and n.domain == "" and n.input[1] in weights:
            n.op_type, n.domain = FLOAT_KERNEL_OP, GQA_DOMAIN
            count += 1
    return count


def export_ort_graph(model, name: str, path, max_seq: int, float_kernel: bool = False) -> None:
    """Write graph NAME (trunk / und_branch / gen_branch / rq_head) of a UniFork model in the
    ORT-optimized form to PATH (float32; quantization, if any, runs on the file afterwards).
    float_kernel: weight MatMuls as TransposeMatMul, for fp32 bundles (float_weights_on_kernel)."""
    if name == "rq_head":
        from .graphs import folded_head

        with folded_head(model):
            proto = build_head_graph(model.head, _np(model.image_tokenizer.codebook))
        if float_kernel:
            float_weights_on_kernel(proto)
        _save(proto, path)
        return
    t = model.cfg.text
    prefix = {"trunk": "trunk.layers", "und_branch": "und.layers", "gen_branch": "gen.layers"}[name]
    weights = {k: v.detach().float().cpu().numpy() for k, v in model.state_dict().items() if k.startswith(prefix)}
    layers = len({k.split(".")[2] for k in weights})
    extra = {}
    if name == "und_branch":
        extra = dict(final_norm=model.norm.weight.detach().float().numpy(),
                     lm_head=model.lm_weight().detach().float().numpy())
    elif name == "gen_branch":
        extra = dict(final_norm=model.norm_gen.weight.detach().float().numpy())
    proto = build_decoder_graph(name, weights, prefix, layers, hidden=t.hidden_size, num_heads=t.num_heads,
                                num_kv_heads=t.num_kv_heads, head_dim=t.head_dim, rope_theta=t.rope_theta,
                                eps=t.rms_norm_eps, max_seq=max_seq, **extra)
    if float_kernel:
        float_weights_on_kernel(proto)
    _save(proto, path)


def _save(proto, path) -> None:
    """PATH, with the weights in PATH.data when they are too large for one protobuf."""
    import onnx

    from .quantize import EXTERNAL_DATA_BYTES

    data = path.parent / (path.name + ".data")
    data.unlink(missing_ok=True)
    external = sum(len(t.raw_data) for t in proto.graph.initializer) > EXTERNAL_DATA_BYTES
    onnx.save(proto, str(path), save_as_external_data=external, all_tensors_to_one_file=True, location=data.name)
