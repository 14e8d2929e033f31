"""Build a UniFork checkpoint from a local Hugging Face Qwen2 / Qwen2.5 folder.

trunk = layers [0, N); both branches = copies of layers [N, L); norm_gen = copy of norm;
connector, depth head, BOI/EOI and image tokenizer are freshly initialised. Reads
config.json, model.safetensors (or sharded with model.safetensors.index.json) and
tokenizer.json; never downloads anything and never unpickles.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..config import HeadConfig, ImageConfig, ModelConfig, TextConfig
from ..errors import ConfigError, ModelFolderError
from ..io import read_json
from .checkpoint import save_model
from .unifork import UniFork

LAYER_TENSORS = (
    "self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
    "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
    "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
    "input_layernorm.weight", "post_attention_layernorm.weight",
)


def read_qwen_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing: point --from-qwen at a Hugging Face Qwen2 folder")
    hf = read_json(path)
    if hf.get("model_type") not in ("qwen2",):
        raise ModelFolderError(f"{path}: model_type is {hf.get('model_type')!r}; only Qwen2/Qwen2.5 ('qwen2') "
                               "folders can be converted")
    return hf


def text_config_from_qwen(hf: dict, shared_layers: int | None, source: str) -> TextConfig:
    try:
        L = int(hf["num_hidden_layers"])
        rope = hf.get("rope_theta") or (hf.get("rope_parameters") or {}).get("rope_theta", 10000.0)
        heads = int(hf["num_attention_heads"])
        hidden = int(hf["hidden_size"])
        cfg = TextConfig(
            vocab_size=int(hf["vocab_size"]), hidden_size=hidden, num_layers=L,
            shared_layers=L // 2 if shared_layers is None else int(shared_layers),
            num_heads=heads, num_kv_heads=int(hf.get("num_key_value_heads", heads)),
            intermediate_size=int(hf["intermediate_size"]), rope_theta=float(rope),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
            max_seq_len=min(int(hf.get("max_position_embeddings", 512)), 512),
        )
    except KeyError as e:
        raise ModelFolderError(f"{source}/config.json lacks the field {e.args[0]!r}") from None
    if "head_dim" in hf and hf["head_dim"] is not None and int(hf["head_dim"]) != cfg.head_dim:
        raise ConfigError(f"{source}/config.json: head_dim={hf['head_dim']} differs from hidden_size/num_heads="
                          f"{cfg.head_dim}; such models are not supported")
    if shared_layers is not None and not 0 <= shared_layers <= L:
        raise ConfigError(f"--shared-layers {shared_layers} is outside [0, {L}] for a {L}-layer model")
    cfg.validate()
    return cfg


class _Tensors:
    """Lazy access to the tensors of a single or sharded safetensors checkpoint."""

    def __init__(self, folder: Path):
        single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
        if single.is_file():
            self.where = None
            self.files = {single}
        elif index.is_file():
            try:
                self.where = {k: folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
            except (json.JSONDecodeError, KeyError) as e:
                raise ModelFolderError(f"{index} is malformed ({e})") from None
            self.files = set(self.where.values())
        else:
            raise ModelFolderError(f"{folder} has neither model.safetensors nor model.safetensors.index.json "
                                   "(pickled .bin checkpoints are not read: re-save with safe_serialization=True)")
        self.handles = {}
        for f in self.files:
            try:
                self.handles[f] = safe_open(str(f), framework="pt")
            except (SafetensorError, OSError) as e:
                raise ModelFolderError(f"{f} is not a readable safetensors file ({e})") from None

    def get(self, name: str) -> torch.Tensor:
        if self.where is not None:
            f = self.where.get(name)
            if f is None:
                raise ModelFolderError(f"tensor {name!r} is missing from the index of the Qwen folder")
            return self.handles[f].get_tensor(name)
        (f, h), = self.handles.items()
        if name not in h.keys():
            raise ModelFolderError(f"tensor {name!r} is missing from {f}")
        return h.get_tensor(name)

    def has(self, name: str) -> bool:
        if self.where is not None:
            return name in self.where
        return any(name in h.keys() for h in self.handles.values())


def convert_qwen(folder: str | Path, shared_layers: int | None = None,
                 image: ImageConfig | None = None, head: HeadConfig | None = None,
                 seed: int = 0) -> tuple[UniFork, Path]:
    """Return (model, tokenizer path). Fails with a clear error on anything missing."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"Qwen folder {folder} does not exist")
    hf = read_qwen_config(folder)
    text = text_config_from_qwen(hf, shared_layers, str(folder))
    tok = folder / "tokenizer.json"
    if not tok.is_file():
        raise ModelFolderError(f"{tok} is missing: the converted model needs the Qwen tokenizer.json")
    eos = hf.get("eos_token_id", 0)
    eos = eos[0] if isinstance(eos, list) else eos
    pad = hf.get("pad_token_id")
    head = head or HeadConfig()
    if head.width != text.hidden_size:  # the head's residual width follows the backbone's
        wide = head.attn_width != head.width
        head = dataclasses.replace(head, width=text.hidden_size,
                                   attn_width=head.attn_width if wide else text.hidden_size)
    cfg = ModelConfig(text=text, image=image or ImageConfig(), head=head,
                      eos_token_id=int(eos or 0), pad_token_id=int(eos or 0) if pad is None else int(pad),
                      preset="qwen2")
    cfg.validate()
    torch.manual_seed(seed)
    model = UniFork(cfg)
    t = _Tensors(folder)
    N, L = text.shared_layers, text.num_layers
    with torch.no_grad():
        _copy(model.embed_tokens.weight, t.get("model.embed_tokens.weight"), "model.embed_tokens.weight")
        _copy(model.norm.weight, t.get("model.norm.weight"), "model.norm.weight")
        _copy(model.norm_gen.weight, t.get("model.norm.weight"), "model.norm.weight")
        if model.lm_head is not None:
            name = "lm_head.weight" if t.has("lm_head.weight") else "model.embed_tokens.weight"
            _copy(model.lm_head.weight, t.get(name), name)
        for i in range(L):
            targets = [model.trunk.layers[i]] if i < N else [model.und.layers[i - N], model.gen.layers[i - N]]
            for suffix in LAYER_TENSORS:
                name = f"model.layers.{i}.{suffix}"
                src = t.get(name)
                for layer in targets:
                    _copy(layer.get_parameter(suffix), src, name)
    return model, tok


def _copy(dst: torch.Tensor, src: torch.Tensor, name: str) -> None:
    if tuple(dst.shape) != tuple(src.shape):
        raise ModelFolderError(f"Qwen tensor {name} has shape {tuple(src.shape)}, expected {tuple(dst.shape)} "
                               "from its config.json")
    dst.copy_(src.to(dst.dtype))


def init_from_qwen(folder: str | Path, out: str | Path, shared_layers: int | None = None,
                   image: ImageConfig | None = None, head: HeadConfig | None = None, seed: int = 0) -> Path:
    model, tok = convert_qwen(folder, shared_layers, image, head, seed)
    return save_model(model, out, tokenizer=tok, metadata={"source": "qwen2"})
