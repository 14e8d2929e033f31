"""The PyTorch model as a runtime Backend: each graph name calls the entry point it is exported from.

Every decode path then runs under the one pipeline (UniForkRuntime's caption and draw loops,
the numpy sampler with its seeded generator): `unifork-rt eval` on an exported bundle, the
training-time monitors on an in-memory model, and the eager benchmark differ only in what
executes the graphs.

    rt = torch_runtime(model, tokenizer)            # training: no files at all
    rt = torch_runtime_for_bundle(bundle, model_dir)   # bench: a bundle's tokenizer/embeddings, eager graphs
    rt.caption([...]), rt.draw_codes(...)           # the runtime's own loops

Each call runs under torch.no_grad with a preallocated KV buffer written in place at `pos`,
the contract of export/graphs.py. model/reference.py (the cache-free loops of the parity
tests) stays separate on purpose: it checks this path rather than sharing it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..model.unifork import UniFork
from ..runtime.backend import Backend
from ..runtime.bundle import MANIFEST_FORMAT, Bundle, GraphSpec, expected_signatures, load_bundle
from ..runtime.pipeline import UniForkRuntime
from .graphs import GRAPH_DEFS


class TorchKV:
    """A fused KV buffer as a torch tensor (layers, 2, B, kv_heads, S, head_dim), allocated once."""

    def __init__(self, shape: tuple[int, ...], device: torch.device):
        self.buf = torch.zeros(shape, dtype=torch.float32, device=device)

    def write(self, pos: int, new: torch.Tensor) -> None:
        self.buf[:, :, :, :, pos:pos + new.shape[4]] = new


class TorchBackend(Backend):
    name = "torch-eager"

    def __init__(self, bundle: Bundle, model: UniFork):
        super().__init__(bundle)
        if bundle.precision != "fp32":
            raise ValueError(f"the PyTorch backend runs fp32; this bundle is {bundle.precision}")
        self.model = model.eval()
        self.device = model.boi.device

    def load(self) -> "TorchBackend":
        return self

    @property
    def providers(self) -> list[str]:
        return [f"torch {torch.__version__} eager, {torch.get_num_threads()} threads"]

    def new_cache(self, graph: str, batch: int) -> TorchKV:
        spec = self.bundle.graphs[graph].kv
        if spec is None:
            raise ValueError(f"graph {graph} has no KV cache")
        return TorchKV(spec.shape(batch), self.device)

    @torch.no_grad()
    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        g = GRAPH_DEFS[graph]
        t = {k: torch.from_numpy(np.require(v, requirements=["C", "W"])).to(self.device) for k, v in feeds.items()}
        args = [cache.buf if name == "kv" else t[name] for name in g.inputs]
        out = g.fn(self.model, *args)
        res = dict(zip(g.outputs, out if isinstance(out, tuple) else (out,)))
        if cache is not None:
            cache.write(int(feeds["pos"]), res.pop("kv_new"))
        return {k: v.cpu().numpy() for k, v in res.items()}


def model_bundle(model: UniFork, max_seq: int | None = None) -> Bundle:
    """The graph contract of an fp32 export of `model`, in memory: what a bundle's manifest would
    say (signatures, KV layouts, max_seq), without graphs or files."""
    cfg = model.cfg
    max_seq = max_seq or cfg.text.max_seq_len

    def io(entries) -> tuple[dict, ...]:
        return tuple({"name": n, "dtype": d, "shape": s} for n, d, s in entries)

    graphs = {name: GraphSpec(name, Path(f"{name}.onnx"), "", io(inputs), io(outputs), kv)
              for name, (inputs, outputs, kv) in expected_signatures(cfg, max_seq, "float32").items()}
    manifest = {"format": MANIFEST_FORMAT, "max_seq": max_seq, "precision": "fp32", "graphs": {}, "files": {}}
    return Bundle(Path("<in-memory>"), manifest, cfg, graphs)


def torch_runtime(model: UniFork, tokenizer, max_seq: int | None = None) -> UniForkRuntime:
    """The runtime over an in-memory model (a training run's monitors): the same loops and sampler
    as `unifork-rt caption/draw/eval` on its exported bundle. tokenizer: a tokenizers.Tokenizer."""
    bundle = model_bundle(model, max_seq)
    with torch.no_grad():
        embeddings = tuple(t.detach().float().cpu().numpy().copy()
                           for t in (model.embed_tokens.weight, model.boi, model.eoi))
    return UniForkRuntime.from_parts(bundle, tokenizer, embeddings, TorchBackend(bundle, model).load())


def torch_runtime_for_bundle(bundle_dir: str | Path, model_dir: str | Path) -> UniForkRuntime:
    """A bundle's tokenizer, embeddings and shapes, with its graphs run by the PyTorch model it was
    exported from (the eager benchmark)."""
    from ..model.checkpoint import load_model
    from ..runtime.bundle import load_embeddings, load_tokenizer

    bundle = load_bundle(bundle_dir, verify=False)
    backend = TorchBackend(bundle, load_model(model_dir)).load()
    return UniForkRuntime.from_parts(bundle, load_tokenizer(bundle), load_embeddings(bundle), backend)
