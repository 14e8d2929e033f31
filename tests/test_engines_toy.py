"""A toy bundle for the engine tests: seven tiny ONNX graphs that keep the graph contract.

Same names, inputs, outputs, dtypes, dynamic dims and fused KV layout as docs/GRAPHS.md
for the micro preset, with a few cheap ops instead of a model, so the build and backend
plumbing can be tested without torch or an exporter. The outputs depend on every input
(the KV buffer included: h adds the buffer's mean), so a wrong binding or a KV write at the
wrong position changes the numbers. The tests here check the bundle itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest


onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from unifork_rt.config import preset  # noqa: E402
from unifork_rt.runtime.bundle import GRAPHS, config_sha256, load_bundle  # noqa: E402

CFG = preset("micro")
T_, I_, HD = CFG.text, CFG.image, CFG.head
H, V, HKV, DH = T_.hidden_size, T_.vocab_size, T_.num_kv_heads, T_.head_dim
LS, LB = T_.shared_layers, T_.branch_layers
N, D, K, P = I_.num_cells, I_.depth, I_.codebook_size, I_.image_size
LH, HH, HDH = HD.num_layers, HD.num_heads, HD.head_dim
F32, I64 = TensorProto.FLOAT, TensorProto.INT64


def _vi(name, elem, shape):
    return helper.make_tensor_value_info(name, elem, shape)


def _c(name, array):
    return numpy_helper.from_array(np.asarray(array), name)


def _save(path: Path, nodes, inputs, outputs, inits) -> None:
    g = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 18)])
    m.ir_version = 9
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, str(path))


def _kv_step(prefix, x, layers, heads, hd, seq_dim):
    """Nodes: new K/V slices (layers, 2, B, heads, T, hd) from x (B, T, heads*hd) + pos, and
    the buffer's per-row mean (B, 1, 1) that the outputs add (so reading the cache matters)."""
    n = helper.make_node
    nodes = [
        n("Slice", [x, f"{prefix}z", f"{prefix}w", f"{prefix}last"], [f"{prefix}xs"]),         # (B, T, heads*hd)
        n("Reshape", [f"{prefix}xs", f"{prefix}split"], [f"{prefix}xr"]),                       # (B, T, heads, hd)
        n("Transpose", [f"{prefix}xr"], [f"{prefix}xt"], perm=[0, 2, 1, 3]),                  # (B, heads, T, hd)
        n("Unsqueeze", [f"{prefix}xt", f"{prefix}front"], [f"{prefix}xu"]),                    # (1, 1, B, heads, T, hd)
        n("Cast", ["pos"], [f"{prefix}posf"], to=F32),
        n("Add", [f"{prefix}xu", f"{prefix}posf"], [f"{prefix}xp"]),
        n("Mul", [f"{prefix}xp", f"{prefix}scale"], ["kv_new"]),                               # (layers, 2, B, ...)
        n("ReduceMean", ["kv", f"{prefix}rows"], [f"{prefix}m"], keepdims=0),                 # (B,)
        n("Unsqueeze", [f"{prefix}m", f"{prefix}tail"], [f"{prefix}mean"]),                  # (B, 1, 1)
    ]
    inits = [_c(f"{prefix}z", [0]), _c(f"{prefix}w", [heads * hd]), _c(f"{prefix}last", [-1]),
             _c(f"{prefix}split", [0, 0, heads, hd] if seq_dim else [0, 1, heads, hd]),
             _c(f"{prefix}front", [0, 1]), _c(f"{prefix}rows", [0, 1, 3, 4, 5]), _c(f"{prefix}tail", [1, 2]),
             _c(f"{prefix}scale", (1 + np.arange(layers * 2, dtype=np.float32) / 10).reshape(layers, 2, 1, 1, 1, 1))]
    return nodes, inits


def _text_graph(path, name, layers, max_seq):
    n = helper.make_node
    first = "x" if name == "trunk" else "h"
    kv_nodes, kv_inits = _kv_step("k", first, layers, HKV, DH, True)
    nodes = kv_nodes + [
        n("Cast", ["start"], ["startf"], to=F32),
        n("Unsqueeze", ["startf", "tail2"], ["start3"]),                                     # (B, 1, 1)
        n("Add", [first, "kmean"], ["y0"]), n("Add", ["y0", "start3"], ["y1"]), n("Tanh", ["y1"], ["y"]),
    ]
    inits = kv_inits + [_c("tail2", [1, 2])]
    kv_in = _vi("kv", F32, [layers, 2, "batch", HKV, max_seq, DH])
    ins = [_vi(first, F32, ["batch", "seq", H]), kv_in, _vi("pos", I64, []), _vi("start", I64, ["batch"])]
    kv_out = _vi("kv_new", F32, [layers, 2, "batch", HKV, "seq", DH])
    if name == "und_branch":
        nodes += [n("Gather", ["y", "minus1"], ["ylast"], axis=1), n("MatMul", ["ylast", "Wv"], ["logits"])]
        inits += [_c("minus1", np.int64(-1)), _c("Wv", np.linspace(-1, 1, H * V, dtype=np.float32).reshape(H, V))]
        outs = [_vi("logits", F32, ["batch", V]), kv_out]
    else:
        nodes[-1] = n("Tanh", ["y1"], ["h" if name == "trunk" else "hidden"])
        outs = [_vi("h" if name == "trunk" else "hidden", F32, ["batch", "seq", H]), kv_out]
    _save(path, nodes, ins, outs, inits)


def _rq_head(path):
    n = helper.make_node
    kv_nodes, kv_inits = _kv_step("q", "hidden3", LH, HH, HDH, False)
    nodes = [n("Unsqueeze", ["hidden", "one"], ["hidden3"])] + kv_nodes + [
        n("Cast", ["codes"], ["codesf"], to=F32), n("ReduceSum", ["codesf", "one"], ["csum"], keepdims=1),  # (B, 1)
        n("MatMul", ["hidden", "Wk"], ["l0"]), n("Add", ["l0", "csum"], ["l1"]),
        n("Squeeze", ["qmean", "two"], ["headmean"]), n("Add", ["l1", "headmean"], ["logits"]),
    ]
    inits = kv_inits + [_c("one", [1]), _c("two", [2]),
                        _c("Wk", np.linspace(-1, 1, H * K, dtype=np.float32).reshape(H, K))]
    ins = [_vi("hidden", F32, ["batch", H]), _vi("codes", I64, ["batch", D]),
           _vi("kv", F32, [LH, 2, "batch", HH, D, HDH]), _vi("pos", I64, [])]
    outs = [_vi("logits", F32, ["batch", K]), _vi("kv_new", F32, [LH, 2, "batch", HH, 1, HDH])]
    _save(path, nodes, ins, outs, inits)


def _vision_encoder(path):
    n = helper.make_node
    nodes = [n("Reshape", ["pixels", "flat"], ["f"]), n("ReduceMean", ["f", "last"], ["m"], keepdims=0),  # (B, N*D)
             n("Mul", ["m", "hundred"], ["m1"]), n("Abs", ["m1"], ["m2"]), n("Floor", ["m2"], ["m3"]),
             n("Cast", ["m3"], ["m4"], to=I64), n("Mod", ["m4", "k"], ["m5"]), n("Reshape", ["m5", "grid"], ["codes"])]
    inits = [_c("flat", [0, N * D, -1]), _c("last", [-1]), _c("hundred", np.float32(100)), _c("k", np.int64(K)),
             _c("grid", [0, N, D])]
    _save(path, nodes, [_vi("pixels", F32, ["batch", 3, P, P])], [_vi("codes", I64, ["batch", N, D])], inits)


def _connector(path):
    n = helper.make_node
    nodes = [n("Gather", ["E", "codes"], ["e"]), n("ReduceSum", ["e", "two"], ["embeds"], keepdims=0)]
    inits = [_c("E", np.linspace(-1, 1, K * H, dtype=np.float32).reshape(K, H)), _c("two", [2])]
    _save(path, nodes, [_vi("codes", I64, ["batch", "cells", D])], [_vi("embeds", F32, ["batch", "cells", H])], inits)


def _vision_decoder(path):
    n = helper.make_node
    per = 3 * P * P // (N * D)
    nodes = [n("Gather", ["E", "codes"], ["e"]), n("Reshape", ["e", "img"], ["r"]), n("Tanh", ["r"], ["pixels"])]
    inits = [_c("E", np.linspace(-2, 2, K * per, dtype=np.float32).reshape(K, per)), _c("img", [0, 3, P, P])]
    _save(path, nodes, [_vi("codes", I64, ["batch", N, D])], [_vi("pixels", F32, ["batch", 3, P, P])], inits)


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_toy_bundle(folder: str | Path, max_seq: int = T_.max_seq_len, extra_node=None) -> Path:
    """Write a toy bundle; extra_node: an onnx NodeProto appended to trunk.onnx's graph."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    makers = {"vision_encoder": _vision_encoder, "connector": _connector, "rq_head": _rq_head,
              "vision_decoder": _vision_decoder,
              "trunk": lambda p: _text_graph(p, "trunk", LS, max_seq),
              "und_branch": lambda p: _text_graph(p, "und_branch", LB, max_seq),
              "gen_branch": lambda p: _text_graph(p, "gen_branch", LB, max_seq)}
    graphs = {}
    for name in GRAPHS:
        path = folder / f"{name}.onnx"
        makers[name](path)
        if extra_node is not None and name == "trunk":
            m = onnx.load(str(path))
            m.graph.node.append(extra_node)
            onnx.save(m, str(path))
        proto = onnx.load(str(path))

        def io(values):
            return [{"name": v.name, "dtype": onnx.helper.tensor_dtype_to_np_dtype(v.type.tensor_type.elem_type).name,
                     "shape": [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]} for v in values]

        kv = None
        if name in ("trunk", "und_branch", "gen_branch"):
            kv = {"layers": LS if name == "trunk" else LB, "kv_heads": HKV, "max_seq": max_seq, "head_dim": DH}
        elif name == "rq_head":
            kv = {"layers": LH, "kv_heads": HH, "max_seq": D, "head_dim": HDH}
        graphs[name] = {"file": path.name, "sha256": _sha(path), "data_file": None, "kv": kv,
                        "inputs": io(proto.graph.input), "outputs": io(proto.graph.output)}
    (folder / "tokenizer.json").write_text("{}")
    (folder / "embeddings.safetensors").write_bytes(b"toy")
    CFG.save(folder / "config.json")
    manifest = {"format": 1, "max_seq": max_seq, "precision": "fp32", "opset": 18, "exporter": "engine tests (toy)",
                "config": CFG.to_dict(), "config_sha256": config_sha256(CFG), "weights_sha256": "0" * 64,
                "files": {n: _sha(folder / n) for n in ("tokenizer.json", "embeddings.safetensors", "config.json")},
                "graphs": graphs}
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return folder


def toy_feeds(name: str, batch: int, tokens: int, pos: int, seed: int = 0) -> dict[str, np.ndarray]:
    """Inputs for one graph call (without kv), as the pipeline would pass them."""
    rng = np.random.default_rng(seed)
    f = {"trunk": {"x": rng.standard_normal((batch, tokens, H), np.float32)},
         "und_branch": {"h": rng.standard_normal((batch, tokens, H), np.float32)},
         "gen_branch": {"h": rng.standard_normal((batch, tokens, H), np.float32)},
         "rq_head": {"hidden": rng.standard_normal((batch, H), np.float32),
                     "codes": rng.integers(0, K, (batch, D)).astype(np.int64)},
         "connector": {"codes": rng.integers(0, K, (batch, tokens, D)).astype(np.int64)},
         "vision_encoder": {"pixels": rng.uniform(-1, 1, (batch, 3, P, P)).astype(np.float32)},
         "vision_decoder": {"codes": rng.integers(0, K, (batch, N, D)).astype(np.int64)}}[name]
    if name in ("trunk", "und_branch", "gen_branch", "rq_head"):
        f["pos"] = np.array(pos, dtype=np.int64)
    if name in ("trunk", "und_branch", "gen_branch"):
        f["start"] = np.array([0] + [1] * (batch - 1), dtype=np.int64)
    return f


class OrtReference:
    """The toy graphs on ONNX Runtime CPU with host KV buffers: the expected numbers."""

    def __init__(self, bundle):
        import onnxruntime as ort

        from unifork_rt.runtime.backend import KVCache

        self.bundle, self.KVCache = bundle, KVCache
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        self.sessions = {n: ort.InferenceSession(str(s.path), opts, providers=["CPUExecutionProvider"])
                         for n, s in bundle.graphs.items()}

    def new_cache(self, graph, batch):
        return self.KVCache(self.bundle.graphs[graph].kv, batch, "float32")

    def run(self, graph, feeds, cache=None):
        sess = self.sessions[graph]
        if cache is not None:
            feeds = {**feeds, "kv": cache.buf}
        names = [o.name for o in sess.get_outputs()]
        out = dict(zip(names, sess.run(names, feeds)))
        if cache is not None:
            cache.write(int(feeds["pos"]), out.pop("kv_new"))
        return out


# --- the toy bundle keeps the contract ----------------------------------------------------------
def test_toy_bundle_loads_and_passes_opcheck(tmp_path):
    from unifork_rt.engines import opcheck

    bundle = load_bundle(make_toy_bundle(tmp_path / "toy"))
    assert set(bundle.graphs) == set(GRAPHS) and bundle.max_seq == T_.max_seq_len
    assert bundle.graphs["trunk"].kv.shape(2) == (LS, 2, 2, HKV, T_.max_seq_len, DH)
    assert all(r.ok and not r.problems for r in opcheck.check_bundle(bundle).values())


def test_toy_graphs_run_and_read_their_cache(tmp_path):
    pytest.importorskip("onnxruntime")
    bundle = load_bundle(make_toy_bundle(tmp_path / "toy"))
    ref = OrtReference(bundle)
    for name in GRAPHS:
        cache = ref.new_cache(name, 2) if bundle.graphs[name].kv else None
        out = ref.run(name, toy_feeds(name, 2, 3 if name != "rq_head" else 1, 0), cache)
        want = [o["name"] for o in bundle.manifest["graphs"][name]["outputs"] if o["name"] != "kv_new"]
        assert list(out) == want
    cache = ref.new_cache("trunk", 2)
    first = ref.run("trunk", toy_feeds("trunk", 2, 4, 0), cache)["h"]
    assert np.abs(cache.buf[:, :, :, :, :4]).sum() > 0 and not cache.buf[:, :, :, :, 4:].any()
    again = ref.run("trunk", toy_feeds("trunk", 2, 4, 0), ref.new_cache("trunk", 2))["h"]
    np.testing.assert_array_equal(first, again)
    ref.run("trunk", toy_feeds("trunk", 2, 1, 4), cache)
    filled = ref.run("trunk", toy_feeds("trunk", 2, 4, 0), cache)["h"]  # same feeds, fuller cache
    assert np.abs(filled - first).max() > 1e-4
