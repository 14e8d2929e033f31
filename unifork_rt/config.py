"""Model configuration: one frozen dataclass per component, presets in one registry.

No torch here: the runtime reads the same config.json that training writes.

Letters used in shape comments across the package:
    B batch, T new tokens this step, S max_seq (KV buffer length), H hidden size,
    Hq query heads, Hkv key/value heads, Dh head dim, L layers, V vocab,
    N image cells (grid*grid), D codes per cell (RQ depth), K codebook size, C codebook dim.
"""

from __future__ import annotations

import dataclasses
import json
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError, ModelFolderError
from .io import probe, read_json

CONFIG_FORMAT = 1
# The instruction after the image in an understanding sequence: <BOI> image <EOI> CAPTION_PROMPT answer <eos>
CAPTION_PROMPT = "Provide a one-sentence caption for the image:"


@dataclass(frozen=True)
class TextConfig:
    """The Qwen2 backbone, split into a shared trunk and two branches.

    Layers [0, shared_layers) form the trunk; each branch has num_layers - shared_layers
    layers. shared_layers == num_layers is the fully shared baseline (empty branches);
    shared_layers == 0 gives two experts that share only the embeddings.
    """

    vocab_size: int = 384
    hidden_size: int = 64
    num_layers: int = 4  # on one task's path: trunk + one branch
    shared_layers: int = 2
    num_heads: int = 4
    num_kv_heads: int = 2  # grouped-query attention: num_heads % num_kv_heads == 0
    intermediate_size: int = 128  # SwiGLU width
    rope_theta: float = 10000.0
    rms_norm_eps: float = 1e-6
    tie_word_embeddings: bool = True  # lm_head shares the input embedding, as in Qwen2.5-0.5B
    max_seq_len: int = 64  # default KV buffer length for export and the runtime

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads

    @property
    def branch_layers(self) -> int:
        return self.num_layers - self.shared_layers

    def validate(self) -> None:
        _positive(self, "vocab_size", "hidden_size", "num_layers", "num_heads", "num_kv_heads",
                  "intermediate_size", "max_seq_len")
        if self.hidden_size % self.num_heads:
            raise ConfigError(f"text.hidden_size={self.hidden_size} is not divisible by "
                              f"text.num_heads={self.num_heads}: pick a head count that divides it")
        if self.num_heads % self.num_kv_heads:
            raise ConfigError(f"text.num_heads={self.num_heads} is not a multiple of "
                              f"text.num_kv_heads={self.num_kv_heads} (grouped-query attention)")
        if self.head_dim % 2:
            raise ConfigError(f"text head_dim={self.head_dim} is odd; rotary embeddings need an even head_dim")
        if not 0 <= self.shared_layers <= self.num_layers:
            raise ConfigError(f"text.shared_layers={self.shared_layers} must be in [0, num_layers="
                              f"{self.num_layers}]")
        if self.rope_theta <= 0 or self.rms_norm_eps <= 0:
            raise ConfigError("text.rope_theta and text.rms_norm_eps must be positive")


@dataclass(frozen=True)
class ImageConfig:
    """The residual-quantized image tokenizer (VILA-U style RQ-VAE).

    image_size px -> grid x grid cells -> `depth` residual codes per cell from ONE shared
    codebook of codebook_size vectors of codebook_dim.
    """

    image_size: int = 64
    grid_size: int = 4
    depth: int = 2
    codebook_size: int = 64
    codebook_dim: int = 16
    channels: tuple[int, ...] = (16, 32, 32, 32)  # conv width per down-sampling stage
    # local: every cell's codes see only that cell's pixels and decode only to them (2x2/stride-2
    # convolutions and 1x1 mixing). Objects then change only the cells they cover, so in reading
    # order the generator decides an object's colour where it draws it. Overlapping 4x4/3x3
    # convolutions (local=False) let background codes describe their neighbours.
    local: bool = False

    @property
    def num_cells(self) -> int:
        return self.grid_size * self.grid_size

    @property
    def num_stages(self) -> int:
        return (self.image_size // self.grid_size).bit_length() - 1

    def validate(self, conv_encoder: bool = True) -> None:
        """conv_encoder False: a SigLIP tower (TowerConfig) replaces the conv encoder/decoder,
        so `channels` is unused and only the sizes are checked here."""
        _positive(self, "image_size", "grid_size", "depth", "codebook_size", "codebook_dim")
        if not conv_encoder:
            return
        ratio, rem = divmod(self.image_size, self.grid_size)
        if rem or ratio & (ratio - 1):
            raise ConfigError(f"image.image_size={self.image_size} / image.grid_size={self.grid_size} "
                              "must be a power of two (each encoder stage halves the size)")
        if len(self.channels) != self.num_stages:
            raise ConfigError(f"image.channels has {len(self.channels)} entries but "
                              f"{self.image_size}px -> {self.grid_size} cells needs {self.num_stages} stages")
        if any(not 0 < c <= MAX_SIZE for c in self.channels):
            raise ConfigError(f"image.channels must all be positive integers up to {MAX_SIZE:,}")


@dataclass(frozen=True)
class HeadConfig:
    """The RQ depth head: a small causal transformer over the D codes of one cell.

    attn_width > width projects into a wider attention (width -> attn_width, full
    attention at attn_width, then back), as in the paper's released 0.40B head.
    """

    width: int = 64
    num_layers: int = 1
    num_heads: int = 4
    attn_width: int = 64
    mlp_dim: int = 128
    # in/out projections around the attention even when attn_width == width (the official
    # UniFork head always has them; ours adds them only when the widths differ)
    attn_proj: bool = False

    @property
    def head_dim(self) -> int:
        return self.attn_width // self.num_heads

    @property
    def has_attn_proj(self) -> bool:
        return self.attn_proj or self.attn_width != self.width

    @property
    def folds_attn_proj(self) -> bool:
        """Whether the exported rq_head folds proj_in into q/k/v and o_proj into proj_out (linear
        maps compose: model/heads.py FoldedHeadAttention). Per block the head then reads 4·W·A
        weights instead of 2·W·A + 4·A²: fewer whenever width < 2 · attn_width (paper: 12.8M instead of
        57.8M per block)."""
        return self.has_attn_proj and self.width < 2 * self.attn_width

    def validate(self) -> None:
        _positive(self, "width", "num_layers", "num_heads", "attn_width", "mlp_dim")
        if self.attn_width % self.num_heads:
            raise ConfigError(f"head.attn_width={self.attn_width} is not divisible by "
                              f"head.num_heads={self.num_heads}")


@dataclass(frozen=True)
class TowerConfig:
    """The official UniFork image tokenizer: VILA-U's SigLIP tower, RQ, post-quant conv + conv decoder.

    Encoder: patch conv (patch_size) -> + position table (pos_grid x pos_grid, bicubic-resized to
    the image grid when that is larger) -> num_layers pre-LN SigLIP layers (the official code runs
    layers 0..22 of SigLIP-large's 24, no post-LN) -> raw features of image.codebook_dim = width.
    Decoder (taming/VQGAN layout): 1x1 post-quant conv width -> z_channels, conv_in, mid (res,
    attn, res), len(ch_mult) levels of res_blocks + 1 ResBlocks (attention after each at the
    lowest level), nearest x2 upsampling between levels, GroupNorm(32) + SiLU, conv_out.
    """

    width: int = 1024
    num_layers: int = 23
    num_heads: int = 16
    mlp_dim: int = 4096
    patch_size: int = 16
    pos_grid: int = 16  # SigLIP-large-256's native 16x16 position table
    ln_eps: float = 1e-6
    z_channels: int = 256
    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4)
    res_blocks: int = 2  # + 1 per level, as in the taming decoder

    def validate(self, image: ImageConfig) -> None:
        _positive(self, "width", "num_layers", "num_heads", "mlp_dim", "patch_size", "pos_grid",
                  "z_channels", "ch", "res_blocks")
        if self.width % self.num_heads:
            raise ConfigError(f"tower.width={self.width} is not divisible by tower.num_heads={self.num_heads}")
        if image.codebook_dim != self.width:
            raise ConfigError(f"image.codebook_dim={image.codebook_dim} must equal tower.width={self.width}: "
                              "the codebook quantizes the raw SigLIP features")
        if image.image_size != image.grid_size * self.patch_size:
            raise ConfigError(f"image.image_size={image.image_size} must be image.grid_size x tower.patch_size "
                              f"= {image.grid_size * self.patch_size}")
        if not self.ch_mult or len(self.ch_mult) > 16 or any(not 0 < m <= 1024 for m in self.ch_mult):
            raise ConfigError("tower.ch_mult must be a non-empty list of at most 16 positive integers up to 1024")
        if any((self.ch * m) % 32 for m in self.ch_mult) or self.z_channels <= 0:
            raise ConfigError(f"tower.ch={self.ch} x ch_mult {list(self.ch_mult)} must all be multiples of 32 "
                              "(GroupNorm with 32 groups)")

    @property
    def upsampling(self) -> int:
        return 2 ** (len(self.ch_mult) - 1)


@dataclass(frozen=True)
class ModelConfig:
    text: TextConfig = field(default_factory=TextConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    head: HeadConfig = field(default_factory=HeadConfig)
    tower: TowerConfig | None = None  # set: the official SigLIP tower instead of the conv RQ-VAE
    eos_token_id: int = 0
    pad_token_id: int = 0
    preset: str = "custom"  # informational: the preset this config started from

    def validate(self) -> "ModelConfig":
        self.text.validate()
        self.image.validate(conv_encoder=self.tower is None)
        self.head.validate()
        if self.tower is not None:
            self.tower.validate(self.image)
        for name in ("eos_token_id", "pad_token_id"):
            value = getattr(self, name)
            if not 0 <= value < self.text.vocab_size:
                raise ConfigError(f"{name}={value} is outside the vocabulary [0, {self.text.vocab_size})")
        return self

    def replace(self, **sections) -> "ModelConfig":
        """Copy with fields changed: replace(text={"shared_layers": 6}, eos_token_id=3)."""
        changes = {}
        for key, value in sections.items():
            part = getattr(self, key)
            changes[key] = dataclasses.replace(part, **value) if isinstance(value, dict) else value
        return dataclasses.replace(self, **changes).validate()

    # --- serialisation -------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["image"]["channels"] = list(self.image.channels)
        if not self.image.local:  # added later: left out when off, so earlier configs, bundles and hashes stay valid
            del d["image"]["local"]
        if not self.head.attn_proj:  # likewise
            del d["head"]["attn_proj"]
        if self.tower is None:
            del d["tower"]
        else:
            d["tower"]["ch_mult"] = list(self.tower.ch_mult)
        return {"model_type": "unifork", "format": CONFIG_FORMAT, **d}

    @classmethod
    def from_dict(cls, d: dict, source: str = "config") -> "ModelConfig":
        if not isinstance(d, dict) or d.get("model_type") != "unifork":
            raise ConfigError(f"{source}: not a unifork config (model_type is "
                              f"{d.get('model_type') if isinstance(d, dict) else type(d).__name__!r}, "
                              "expected 'unifork'); convert a Qwen2 folder with `unifork-rt init --from-qwen`")
        if d.get("format") != CONFIG_FORMAT:
            raise ConfigError(f"{source}: config format {d.get('format')!r} is not supported (expected {CONFIG_FORMAT})")
        parts = {}
        for name, kind in (("text", TextConfig), ("image", ImageConfig), ("head", HeadConfig)):
            sub = d.get(name)
            if not isinstance(sub, dict):
                raise ConfigError(f"{source}: section '{name}' is missing or not an object")
            parts[name] = _build(kind, sub, f"{source}: {name}")
        if d.get("tower") is not None:
            if not isinstance(d["tower"], dict):
                raise ConfigError(f"{source}: section 'tower' is not an object")
            parts["tower"] = _build(TowerConfig, d["tower"], f"{source}: tower")
        top = {k: v for k, v in d.items() if k not in ("model_type", "format", "text", "image", "head", "tower")}
        return _build(cls, {**top, **parts}, source).validate()

    def save(self, path: str | Path) -> None:
        from .io import atomic_write_text

        atomic_write_text(Path(path), json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        st = probe(path)
        if st is None or not stat.S_ISREG(st.st_mode):
            raise ModelFolderError(f"{path} is missing: a model folder needs config.json "
                                   "(create one with `unifork-rt init` or `unifork-rt train`)")
        data = read_json(path, "restore it from the checkpoint it came with")
        return cls.from_dict(data, source=str(path))


# Upper bounds, far above any real model (Qwen2.5-72B: vocabulary 152,064, width 8,192, MLP 29,568,
# 80 layers): a damaged config must fail here, not in an allocation of terabytes or a loop of 10^9 layers.
MAX_SIZE = 1 << 20
MAX_LAYERS = 1024
_LAYER_COUNTS = ("num_layers", "res_blocks")


def _positive(obj, *names: str) -> None:
    section = type(obj).__name__.replace("Config", "").lower()
    for name in names:
        value = getattr(obj, name)
        if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise ConfigError(f"{section}.{name}={value!r} must be a positive integer")
        cap = MAX_LAYERS if name in _LAYER_COUNTS else MAX_SIZE
        if value > cap:
            raise ConfigError(f"{section}.{name}={value} is above {cap:,}, far beyond any real model: the config "
                              "is damaged; restore it from the checkpoint it came with")


def _build(kind, values: dict, source: str):
    known = {f.name: f for f in dataclasses.fields(kind)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(f"{source}: unknown field(s) {', '.join(unknown)}; valid fields: {', '.join(known)}")
    values = dict(values)
    for name in ("channels", "ch_mult"):
        if name in values and isinstance(values[name], list):
            values[name] = tuple(values[name])
    for name, value in values.items():
        default = known[name].default
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            values[name] = float(value)
        elif default is not dataclasses.MISSING and type(default) in (int, bool, float, str) \
                and type(values[name]) is not type(default):
            raise ConfigError(f"{source}.{name}={value!r} should be a {type(default).__name__}")
    return kind(**values)


# Parameter counts (from `unifork-rt info --preset NAME`) are in the comments.
PRESETS: dict[str, ModelConfig] = {
    # micro: seconds on CPU, for tests. 0.44M parameters in all (0.14M of them the image tokenizer);
    # 0.17M active for understanding, 0.19M for generation.
    "micro": ModelConfig(preset="micro"),
    # shapes: the shipped ShapesWorld model, trains on 2 CPU cores in about an hour.
    # Width 192, trunk 3 + branches 3+3; 4x4 cells x 2 codes from a 256-entry codebook. A code
    # cell is exactly one world cell (16 px, cell-local convolutions), so each object is drawn
    # at one position and its colour is decided once: with 8x8 cells an object spanned four
    # code cells sampled one by one, and drawings came out as patchworks of colours.
    # 4.84M parameters in all (0.47M image tokenizer; 0.69M depth head); active 2.44M (und), 3.06M (gen).
    "shapes": ModelConfig(
        text=TextConfig(vocab_size=384, hidden_size=192, num_layers=6, shared_layers=3, num_heads=6,
                        num_kv_heads=2, intermediate_size=512, max_seq_len=128),
        image=ImageConfig(image_size=64, grid_size=4, depth=2, codebook_size=256, codebook_dim=64,
                          channels=(64, 128, 128, 128), local=True),
        head=HeadConfig(width=192, num_layers=2, num_heads=4, attn_width=192, mlp_dim=384),
        preset="shapes",
    ),
    # paper: Qwen2.5-0.5B dims split 12/12 (14.91M per layer), 256px -> 16x16x4 codes from a
    # 16384x1024 codebook, the released 0.40B depth head (attention at 3584, 32 heads of 112).
    # Understanding active ~0.49B, generation active ~0.76B (see `unifork-rt info`).
    "paper": ModelConfig(
        text=TextConfig(vocab_size=151936, hidden_size=896, num_layers=24, shared_layers=12, num_heads=14,
                        num_kv_heads=2, intermediate_size=4864, rope_theta=1e6, rms_norm_eps=1e-6,
                        tie_word_embeddings=True, max_seq_len=512),
        image=ImageConfig(image_size=256, grid_size=16, depth=4, codebook_size=16384, codebook_dim=1024,
                          channels=(128, 256, 256, 512)),
        head=HeadConfig(width=896, num_layers=6, num_heads=32, attn_width=3584, mlp_dim=3584),
        eos_token_id=151643, pad_token_id=151643,
        preset="paper",
    ),
    # official: exactly the architecture of the official UniFork code (tliby/UniFork), so its
    # checkpoints convert (`unifork-rt convert`): 384px -> 24x24x4 codes; VILA-U's SigLIP-large
    # tower, layers 0..22, its 16x16 position table bicubic-resized to 24x24; one 16384x1024
    # codebook for all depths; 1x1 post-quant conv 1024->256 and the VILA-U conv decoder; the
    # 0.40B depth head. eos is <|im_end|> (151645) and pad <|vision_pad|> (151654), as official
    # inference sets them. `unifork-rt info --preset official`: embeddings 136.13M, trunk 178.95M,
    # und 178.95M, gen 178.95M, connector 1.72M, depth head 401.94M, image tokenizer 350.25M
    # (SigLIP layers 0..22 + patch/positions 290.76M, codebook 16.78M, post-quant conv 0.26M,
    # decoder 42.45M); active 494.03M (und), 759.84M (gen). The official checkpoint's own groups
    # follow those counts (docs/OFFICIAL.md).
    "official": ModelConfig(
        text=TextConfig(vocab_size=151936, hidden_size=896, num_layers=24, shared_layers=12, num_heads=14,
                        num_kv_heads=2, intermediate_size=4864, rope_theta=1e6, rms_norm_eps=1e-6,
                        tie_word_embeddings=True, max_seq_len=1024),
        image=ImageConfig(image_size=384, grid_size=24, depth=4, codebook_size=16384, codebook_dim=1024,
                          channels=()),
        head=HeadConfig(width=896, num_layers=6, num_heads=32, attn_width=3584, mlp_dim=3584, attn_proj=True),
        tower=TowerConfig(),
        eos_token_id=151645, pad_token_id=151654,
        preset="official",
    ),
}


def preset(name: str) -> ModelConfig:
    """The named preset; an unknown name lists the valid ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ConfigError(f"unknown preset {name!r}; valid presets: {', '.join(PRESETS)}") from None
