"""PyTorch eager as a runtime backend: the model's own entry points with fused KV buffers.

The benchmark compares backends on identical work, so the PyTorch reference runs under the
same pipeline (UniForkRuntime's caption/draw loops, the same numpy sampling) and only the
graphs differ: each graph name calls the entry point it was exported from (export/graphs.py),
under torch.no_grad, with a preallocated KV buffer written in place at `pos`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from unifork_rt.export.graphs import GRAPH_DEFS
from unifork_rt.model.checkpoint import load_model
from unifork_rt.runtime.backend import Backend
from unifork_rt.runtime.bundle import Bundle
from unifork_rt.runtime.pipeline import UniForkRuntime


class TorchKV:
    """A fused KV buffer as a torch tensor (layers, 2, B, kv_heads, S, head_dim), allocated once."""

    def __init__(self, shape: tuple[int, ...]):
        self.buf = torch.zeros(shape, dtype=torch.float32)

    def write(self, pos: int, new: torch.Tensor) -> None:
        self.buf[:, :, :, :, pos:pos + new.shape[4]] = new


class TorchBackend(Backend):
    name = "torch-eager"

    def __init__(self, bundle: Bundle, model):
        super().__init__(bundle)
        self.model = model.eval()

    def load(self) -> "TorchBackend":
        return self

    @property
    def providers(self) -> list[str]:
        return [f"torch {torch.__version__} eager, {torch.get_num_threads()} threads"]

    def new_cache(self, graph: str, batch: int) -> TorchKV:
        spec = self.bundle.graphs[graph].kv
        if spec is None:
            raise ValueError(f"graph {graph} has no KV cache")
        return TorchKV(spec.shape(batch))

    @torch.no_grad()
    def _run(self, graph: str, feeds: dict[str, np.ndarray], cache) -> dict[str, np.ndarray]:
        g = GRAPH_DEFS[graph]
        t = {k: torch.from_numpy(np.require(v, requirements=["C", "W"])) for k, v in feeds.items()}
        args = [cache.buf if name == "kv" else t[name] for name in g.inputs]
        out = g.fn(self.model, *args)
        out = out if isinstance(out, tuple) else (out,)
        res = dict(zip(g.outputs, out))
        if cache is not None:
            cache.write(int(feeds["pos"]), res.pop("kv_new"))
        return {k: v.numpy() for k, v in res.items()}


class TorchRuntime(UniForkRuntime):
    """UniForkRuntime whose graphs are the PyTorch model (the bundle gives tokenizer, embeddings, shapes)."""

    def __init__(self, bundle_dir: str | Path, model_dir: str | Path):
        from safetensors.numpy import load_file
        from tokenizers import Tokenizer

        from unifork_rt.runtime.bundle import load_bundle

        self.bundle = load_bundle(bundle_dir, verify=False)
        if self.bundle.precision != "fp32":
            raise ValueError(f"the PyTorch reference runs fp32; {bundle_dir} is {self.bundle.precision}")
        self.cfg = self.bundle.config
        self.backend = TorchBackend(self.bundle, load_model(model_dir)).load()
        self.tokenizer = Tokenizer.from_file(str(self.bundle.file("tokenizer.json")))
        emb = load_file(str(self.bundle.file("embeddings.safetensors")))
        self.embed, self.boi, self.eoi = emb["embed_tokens.weight"], emb["boi"], emb["eoi"]
