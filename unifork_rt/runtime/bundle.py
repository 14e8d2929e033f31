"""A graph bundle on disk: manifest.json, the ONNX graphs, config, tokenizer, embeddings.

Loading checks every file's sha256 against the manifest, so a truncated or altered file,
or a graph folder from another model, is refused with a message that says what to do.
No code from the bundle is ever executed (no pickle, no custom ops).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from ..config import ModelConfig
from ..errors import ModelFolderError

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
GRAPHS = ("vision_encoder", "connector", "trunk", "und_branch", "gen_branch", "rq_head", "vision_decoder")


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def config_sha256(cfg: ModelConfig) -> str:
    return hashlib.sha256(json.dumps(cfg.to_dict(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class KVSpec:
    layers: int
    kv_heads: int
    max_seq: int
    head_dim: int

    def shape(self, batch: int) -> tuple[int, ...]:
        return (self.layers, 2, batch, self.kv_heads, self.max_seq, self.head_dim)


@dataclass(frozen=True)
class GraphSpec:
    name: str
    path: Path
    sha256: str
    inputs: tuple[dict, ...]
    outputs: tuple[dict, ...]
    kv: KVSpec | None

    def input(self, name: str) -> dict:
        for i in self.inputs:
            if i["name"] == name:
                return i
        raise KeyError(name)


@dataclass(frozen=True)
class Bundle:
    root: Path
    manifest: dict
    config: ModelConfig
    graphs: dict[str, GraphSpec]

    @property
    def max_seq(self) -> int:
        return int(self.manifest["max_seq"])

    @property
    def precision(self) -> str:
        return self.manifest["precision"]

    @property
    def float_dtype(self) -> str:
        return "float16" if self.precision == "fp16" else "float32"

    def file(self, name: str) -> Path:
        return self.root / name


def load_bundle(root: str | Path, verify: bool = True) -> Bundle:
    """Read and check a bundle. verify=False skips the file hashes (not the structure)."""
    root = Path(root)
    mpath = root / MANIFEST
    if not root.is_dir():
        raise ModelFolderError(f"model folder {root} does not exist")
    if not mpath.is_file():
        hint = (" (this looks like a training checkpoint: export it first with `unifork-rt export "
                f"{root}`)") if (root / "model.safetensors").is_file() else ""
        raise ModelFolderError(f"{mpath} is missing: not an exported graph bundle{hint}")
    try:
        m = json.loads(mpath.read_text(encoding="utf-8"))
        if m.get("format") != MANIFEST_FORMAT:
            raise ValueError(f"manifest format {m.get('format')!r}, expected {MANIFEST_FORMAT}")
        cfg = ModelConfig.from_dict(m["config"], source=f"{mpath}: config")
        graphs = {}
        for name in GRAPHS:
            g = m["graphs"][name]
            kv = KVSpec(**g["kv"]) if g.get("kv") else None
            graphs[name] = GraphSpec(name, root / g["file"], g["sha256"], tuple(g["inputs"]), tuple(g["outputs"]), kv)
        files = dict(m["files"])
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError) as e:
        raise ModelFolderError(f"{mpath} is malformed ({type(e).__name__}: {e}); re-export the bundle "
                               "with `unifork-rt export`") from None
    on_disk = ModelConfig.load(root / "config.json")
    if config_sha256(on_disk) != m.get("config_sha256") or on_disk != cfg:
        raise ModelFolderError(f"{root}/config.json does not match the model the graphs were exported from "
                               "(manifest mismatch): re-export this model with `unifork-rt export`")
    if verify:
        for g in graphs.values():
            _check(g.path, g.sha256, root)
            data = m["graphs"][g.name].get("data_file")
            if data:
                _check(root / data, m["graphs"][g.name]["data_sha256"], root)
        for name, digest in files.items():
            _check(root / name, digest, root)
    return Bundle(root, m, cfg, graphs)


def _check(path: Path, digest: str, root: Path) -> None:
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing from the bundle: re-export it with `unifork-rt export`")
    if sha256_file(path) != digest:
        raise ModelFolderError(f"{path} does not match the sha256 in {root / MANIFEST}: the file is truncated, "
                               "altered or from another export; re-export the bundle with `unifork-rt export`")
