"""Convert a checkpoint written by the official UniFork code (tliby/UniFork) into our model folder.

    CKPT_DIR (LlavaQwen2ForCausalLM save)          [--vision-tower DIR] (VILA-U layout, no prefix)
      config.json, model.safetensors | index+shards   config.json, model.safetensors: rqvaesiglip.*
      vocab.json, merges.txt, tokenizer_config.json   (SigLIP, codebook, post-quant conv, decoder)
         │  key_map(): official name -> ours; sizes from config.json and the tensors' shapes
         ▼
    MODEL_DIR: config.json (preset "official" or the small sizes found), model.safetensors,
               tokenizer.json (built from the slow tokenizer's files), prompting.json

What comes from where (docs/OFFICIAL.md): the LLM, projector, BOI/EOI, depth head and codebook
always from the checkpoint (official inference reloads the tower from `mm_vision_tower` and so
would drop the trained depth head; training drifts the codebook by EMA). The SigLIP encoder,
post-quant conv and decoder from --vision-tower when given (they are frozen in training, so
equal), else from the checkpoint. Unused tensors (SigLIP's text tower, its last layer, post-LN
and pooling head, logit_scale/bias, EMA buffers, the duplicate codebooks and lm_head) are
checked for presence where the official save writes them and then dropped.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from ..config import HeadConfig, ImageConfig, ModelConfig, TextConfig, TowerConfig
from ..errors import ModelFolderError
from ..io import read_json
from .checkpoint import save_model
from .unifork import UniFork

VT = "model.vision_tower.vision_tower."  # the tower's prefix inside a UniFork checkpoint
SIGLIP = "rqvaesiglip.siglip_model.vision_model."
LAYER = ("self_attn.q_proj.weight", "self_attn.q_proj.bias", "self_attn.k_proj.weight", "self_attn.k_proj.bias",
         "self_attn.v_proj.weight", "self_attn.v_proj.bias", "self_attn.o_proj.weight",
         "mlp.gate_proj.weight", "mlp.up_proj.weight", "mlp.down_proj.weight",
         "input_layernorm.weight", "post_attention_layernorm.weight")
HEAD_BLOCK = {  # official depth-head block name -> ours
    "ln1": "ln1", "ln2": "ln2", "attn_in_proj": "attn.proj_in", "attn_out_proj": "attn.proj_out",
    "attn.query": "attn.q_proj", "attn.key": "attn.k_proj", "attn.value": "attn.v_proj", "attn.proj": "attn.o_proj",
    "mlp.0": "fc1", "mlp.2": "fc2"}
# the official head sizes: the checkpoint stores no head counts, so these give the defaults
SIGLIP_HEAD_DIM, DEPTH_HEAD_DIM, OFFICIAL_GRID = 64, 112, 24
# tensors the official save writes that no inference path reads
# (the codebook copies are read by _codebook; a tower folder's own codebook is not used)
UNUSED_TOWER = re.compile(r"rqvaesiglip\.(siglip_model\.(text_model\.|logit_|vision_model\.(post_layernorm|head)\.)"
                          r"|logit_|quantizer\.codebooks\.\d+\.(weight|cluster_size_ema|embed_ema)$)")

NEGATIVE_PROMPT = ("lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, "
                   "cropped, worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, "
                   "username, blurry.")
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")
# what the official inference scripts do (OFFICIAL_UNIFORK.md §4), carried into the bundle
PROMPTING = {
    "caption_prefix": f"<|im_start|>{SYSTEM} USER: ",  # vicuna_v1, text before <image>
    "caption_suffix": "\n{prompt} ASSISTANT:",  # after the image; no space after the colon
    "draw_template": "<|im_start|>USER: {prompt} ASSISTANT: ",
    "negative_prompt": NEGATIVE_PROMPT + ".",  # fills the unconditional rows: "blurry.." as official
    "image": {"resize": "pad", "pad_fill": [127, 127, 127], "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]},
    "sampling": {"cfg_scale": 4.0, "top_k": 900, "top_p": 0.96, "temperature": 1.0},
}
PROMPTING_FILE = "prompting.json"


class Tensors:
    """Lazy tensors of one model.safetensors or an index with shards; every read is float32."""

    def __init__(self, folder: Path, what: str):
        single, index = folder / "model.safetensors", folder / "model.safetensors.index.json"
        if single.is_file():
            where = None
            files = [single]
        elif index.is_file():
            try:
                where = {k: folder / v for k, v in json.loads(index.read_text())["weight_map"].items()}
            except (json.JSONDecodeError, KeyError, AttributeError, TypeError) as e:
                raise ModelFolderError(f"{index} is malformed ({type(e).__name__}: {e}); "
                                       "it needs a weight_map") from None
            files = sorted(set(where.values()))
        else:
            raise ModelFolderError(f"{folder} has neither model.safetensors nor model.safetensors.index.json: "
                                   f"not a {what} folder (pickled .bin checkpoints are not read)")
        self.handles, self.where = {}, {}
        for f in files:
            try:
                h = safe_open(str(f), framework="pt")
            except (SafetensorError, OSError) as e:
                raise ModelFolderError(f"{f} is not a readable safetensors file ({e})") from None
            self.handles[f] = h
            for k in h.keys():
                if where is None or where.get(k) == f:
                    self.where[k] = f
        if where is not None:
            lost = sorted(set(where) - set(self.where))
            if lost:
                raise ModelFolderError(f"{index} maps {lost[0]!r} to {where[lost[0]].name}, which lacks it")

    def keys(self) -> list[str]:
        return list(self.where)

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(self.handles[self.where[name]].get_slice(name).get_shape())

    def get(self, name: str) -> torch.Tensor:
        return self.handles[self.where[name]].get_tensor(name).float()


@dataclass
class Source:
    """One folder of official tensors and the prefix its tower keys carry."""
    tensors: Tensors
    tower: str  # VT for a UniFork checkpoint, "" for a VILA-U tower folder
    folder: Path

    def need(self, name: str, shape: tuple[int, ...] | None = None) -> torch.Tensor:
        if name not in self.tensors.where:
            raise ModelFolderError(f"{self.folder}: tensor {name!r} is missing"
                                   + (f" (expected shape {shape})" if shape else ""))
        got = self.tensors.shape(name)
        if shape is not None and got != tuple(shape):
            raise ModelFolderError(f"{self.folder}: tensor {name} has shape {got}, expected {tuple(shape)}")
        return self.tensors.get(name)

    def shape(self, name: str) -> tuple[int, ...]:
        if name not in self.tensors.where:
            raise ModelFolderError(f"{self.folder}: tensor {name!r} is missing; it sizes the model")
        return self.tensors.shape(name)


def read_official_config(folder: Path) -> dict:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelFolderError(f"{path} is missing: point --from-unifork at a folder saved by the official "
                               "UniFork trainer (config.json + model.safetensors)")
    hf = read_json(path)
    if not isinstance(hf, dict) or hf.get("model_type") != "llava_qwen2":
        kind = hf.get("model_type") if isinstance(hf, dict) else None
        raise ModelFolderError(f"{path}: model_type is {kind!r}, expected 'llava_qwen2': not an official UniFork "
                               "checkpoint (a Qwen2 folder converts with `unifork-rt init --from-qwen`)")
    return hf


def _count(keys, pattern: str) -> int:
    rx = re.compile(pattern)
    found = {int(m.group(1)) for k in keys if (m := rx.match(k))}
    n = len(found)
    if found != set(range(n)):
        raise ModelFolderError(f"layers matching {pattern!r} are not numbered 0..{n - 1}: found {sorted(found)}")
    return n


def derive_config(hf: dict, ckpt: Source, tower: Source, image_size: int | None = None,
                  siglip_heads: int | None = None, head_heads: int | None = None) -> ModelConfig:
    """Every size from config.json and the tensors' shapes (never from the released sizes)."""
    try:
        L, H = int(hf["num_hidden_layers"]), int(hf["hidden_size"])
        heads = int(hf["num_attention_heads"])
        text = TextConfig(
            vocab_size=ckpt.shape("model.embed_tokens.weight")[0], hidden_size=H, num_layers=L,
            shared_layers=L // 2,  # hard-wired in the official Qwen2Model (num_hidden_layers // 2)
            num_heads=heads, num_kv_heads=int(hf.get("num_key_value_heads", heads)),
            intermediate_size=int(hf["intermediate_size"]), rope_theta=float(hf.get("rope_theta", 10000.0)),
            rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
            tie_word_embeddings=bool(hf.get("tie_word_embeddings", True)), max_seq_len=1024)
    except KeyError as e:
        raise ModelFolderError(f"{ckpt.folder}/config.json lacks the field {e.args[0]!r}") from None
    t = tower.tower
    keys = tower.tensors.keys()
    W, _, p, _ = tower.shape(t + SIGLIP + "embeddings.patch_embedding.weight")
    table = tower.shape(t + SIGLIP + "embeddings.position_embedding.weight")[0]
    G = math.isqrt(table)
    if G * G != table:
        raise ModelFolderError(f"{tower.folder}: the SigLIP position table has {table} rows, not a square grid")
    n_siglip = _count(keys, re.escape(t + SIGLIP) + r"encoder\.layers\.(\d+)\.")
    if n_siglip < 2:
        raise ModelFolderError(f"{tower.folder}: SigLIP has {n_siglip} layer(s); the official tower runs all but the "
                               "last, so it needs at least 2")
    mlp = tower.shape(t + SIGLIP + "encoder.layers.0.mlp.fc1.weight")[0]
    Kp1, C = ckpt.shape(VT + "rqvaesiglip.quantizer.codebooks.0.weight")
    dec = t + "rqvaesiglip.decoder."
    levels = _count(keys, re.escape(dec) + r"up\.(\d+)\.")
    widths = [tower.shape(f"{dec}up.{i}.block.0.conv1.weight")[0] for i in range(levels)]
    ch = math.gcd(*widths)
    blocks = _count(keys, re.escape(dec) + r"up\.0\.block\.(\d+)\.")
    Z = tower.shape(t + "rqvaesiglip.post_quant_conv.weight")[0]
    if siglip_heads is None:
        if W % SIGLIP_HEAD_DIM:
            raise ModelFolderError(f"SigLIP width {W} is not a multiple of SigLIP-large's head size {SIGLIP_HEAD_DIM}; "
                                   "the checkpoint does not store the head count: pass --siglip-heads")
        siglip_heads = W // SIGLIP_HEAD_DIM
    tower_cfg = TowerConfig(width=W, num_layers=n_siglip - 1, num_heads=siglip_heads, mlp_dim=mlp, patch_size=p,
                            pos_grid=G, z_channels=Z, ch=ch, ch_mult=tuple(w // ch for w in widths),
                            res_blocks=blocks - 1)
    r = VT + "rqtransformer."
    D, Wh = ckpt.shape(r + "pos_emb_d")[1:]
    A = ckpt.shape(r + "head_transformer.blocks.0.attn_in_proj.weight")[0]
    if head_heads is None:
        if A % DEPTH_HEAD_DIM:
            raise ModelFolderError(f"depth-head attention width {A} is not a multiple of the official head size "
                                   f"{DEPTH_HEAD_DIM}; the checkpoint does not store the head count: pass --head-heads")
        head_heads = A // DEPTH_HEAD_DIM
    blocks_re = re.escape(r) + r"head_transformer\.blocks\.(\d+)\."
    head = HeadConfig(width=Wh, num_layers=_count(ckpt.tensors.keys(), blocks_re),
                      num_heads=head_heads, attn_width=A,
                      mlp_dim=ckpt.shape(r + "head_transformer.blocks.0.mlp.0.weight")[0], attn_proj=True)
    size = image_size if image_size is not None else OFFICIAL_GRID * p
    if size % p:
        raise ModelFolderError(f"--image-size {size} is not a multiple of the SigLIP patch size {p}")
    image = ImageConfig(image_size=size, grid_size=size // p, depth=D, codebook_size=Kp1 - 1, codebook_dim=C,
                        channels=())
    eos, pad = hf.get("eos_token_id"), hf.get("pad_token_id")
    return ModelConfig(text=text, image=image, head=head, tower=tower_cfg, eos_token_id=0 if eos is None else int(eos),
                       pad_token_id=int(pad if pad is not None else eos or 0), preset="official").validate()


def key_map(cfg: ModelConfig, tower_prefix: str = VT) -> dict[str, str]:
    """Official tensor name -> our state-dict name, for every tensor we load by plain copy.
    (BOI/EOI, the codebook and pos_emb_d are reshaped and handled in convert_official.)"""
    t, S = cfg.text, cfg.text.shared_layers
    m = {"model.embed_tokens.weight": "embed_tokens.weight", "model.norm.weight": "norm.weight",
         "model.norm_gen.weight": "norm_gen.weight",
         **{f"model.mm_projector.linear{i}.{wb}": f"connector.fc{i}.{wb}" for i in (1, 2) for wb in ("weight", "bias")}}
    if not t.tie_word_embeddings:
        m["lm_head.weight"] = "lm_head.weight"
    for i in range(t.num_layers):
        ours = f"trunk.layers.{i}" if i < S else f"und.layers.{i - S}"
        for s in LAYER:
            m[f"model.layers.{i}.{s}"] = f"{ours}.{s}"
    for j in range(t.branch_layers):
        for s in LAYER:
            m[f"model.gen_fork_layers.{j}.{s}"] = f"gen.layers.{j}.{s}"
    r = VT + "rqtransformer."
    for a, b in (("in_mlp_2", "in_hidden"), ("in_mlp_1", "in_code"), ("classifier_mlp.layer_norm", "ln_f"),
                 ("classifier_mlp.linear", "out")):
        for wb in ("weight", "bias"):
            m[f"{r}{a}.{wb}"] = f"head.{b}.{wb}"
    for i in range(cfg.head.num_layers):
        for a, b in HEAD_BLOCK.items():
            for wb in ("weight", "bias"):
                m[f"{r}head_transformer.blocks.{i}.{a}.{wb}"] = f"head.blocks.{i}.{b}.{wb}"
    m.update(tower_map(cfg, tower_prefix))
    return m


def tower_map(cfg: ModelConfig, prefix: str) -> dict[str, str]:
    """The frozen tower parts: SigLIP layers run, post-quant conv, decoder (names kept)."""
    tw = cfg.tower
    s = prefix + SIGLIP
    m = {s + "embeddings.patch_embedding.weight": "image_tokenizer.patch_embedding.weight",
         s + "embeddings.patch_embedding.bias": "image_tokenizer.patch_embedding.bias",
         s + "embeddings.position_embedding.weight": "image_tokenizer.position_embedding"}
    for i in range(tw.num_layers):
        for sub in ("layer_norm1", "layer_norm2", "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                    "self_attn.out_proj", "mlp.fc1", "mlp.fc2"):
            for wb in ("weight", "bias"):
                m[f"{s}encoder.layers.{i}.{sub}.{wb}"] = f"image_tokenizer.layers.{i}.{sub}.{wb}"
    with torch.device("meta"):  # the decoder's names are ours too: read them off an empty one
        from .tower import ConvDecoder

        names = list(ConvDecoder(tw).state_dict())
    for n in names:
        m[f"{prefix}rqvaesiglip.decoder.{n}"] = f"image_tokenizer.decoder.{n}"
    for wb in ("weight", "bias"):
        m[f"{prefix}rqvaesiglip.post_quant_conv.{wb}"] = f"image_tokenizer.post_quant_conv.{wb}"
    return m


def _unused(rest: str, cfg: ModelConfig) -> bool:
    """A tower tensor (name without its prefix) the official save writes that no inference path reads."""
    m = re.fullmatch(r"rqvaesiglip\.siglip_model\.vision_model\.encoder\.layers\.(\d+)\..*", rest)
    if m:
        return int(m.group(1)) >= cfg.tower.num_layers  # the last SigLIP layer: never run
    return bool(UNUSED_TOWER.match(rest))


def convert_official(ckpt_dir: str | Path, vision_tower: str | Path | None = None, image_size: int | None = None,
                     siglip_heads: int | None = None, head_heads: int | None = None) -> UniFork:
    """Our UniFork model with the official checkpoint's weights (float32)."""
    ckpt_dir = Path(ckpt_dir)
    if not ckpt_dir.is_dir():
        raise ModelFolderError(f"UniFork checkpoint folder {ckpt_dir} does not exist")
    hf = read_official_config(ckpt_dir)
    ckpt = Source(Tensors(ckpt_dir, "UniFork checkpoint"), VT, ckpt_dir)
    tower = ckpt
    if vision_tower is not None:
        vdir = Path(vision_tower)
        if not vdir.is_dir():
            raise ModelFolderError(f"--vision-tower {vdir} does not exist")
        tower = Source(Tensors(vdir, "VILA-U vision tower"), "", vdir)
        if not any(k.startswith("rqvaesiglip.") for k in tower.tensors.keys()):
            raise ModelFolderError(f"{vdir} holds no rqvaesiglip.* tensors: not a VILA-U vision tower folder")
    cfg = derive_config(hf, ckpt, tower, image_size, siglip_heads, head_heads)
    model = UniFork(cfg)
    ours = model.state_dict()
    llm_map = {k: v for k, v in key_map(cfg, VT).items() if not k.startswith(VT + "rqvaesiglip.")}
    tmap = tower_map(cfg, tower.tower)
    loaded = set()
    with torch.no_grad():
        for src, names in ((ckpt, llm_map), (tower, tmap)):
            for theirs, mine in names.items():
                ours[mine].copy_(src.need(theirs, tuple(ours[mine].shape)))
                loaded.add(mine)
        H = cfg.text.hidden_size
        tok = ckpt.need("model.mm_projector.token_embedding.weight", (2, H))
        model.boi.copy_(tok[0])
        model.eoi.copy_(tok[1])
        pos = ckpt.need(VT + "rqtransformer.pos_emb_d", (1, cfg.image.depth, cfg.head.width))
        model.head.depth_emb.copy_(pos[0])
        model.image_tokenizer.codebook.copy_(_codebook(ckpt, cfg))
        if cfg.text.tie_word_embeddings and "lm_head.weight" in ckpt.tensors.where:
            if not torch.equal(ckpt.tensors.get("lm_head.weight"), model.embed_tokens.weight):
                raise ModelFolderError(f"{ckpt_dir}: lm_head.weight differs from model.embed_tokens.weight although "
                                       "config.json ties them (tie_word_embeddings true)")
    loaded |= {"boi", "eoi", "head.depth_emb", "image_tokenizer.codebook"}
    missed = sorted(set(ours) - loaded)
    if missed:  # a bug in the map, not in the user's folder
        raise AssertionError(f"converter left {missed[:3]} unset")
    reshaped = {"model.mm_projector.token_embedding.weight", VT + "rqtransformer.pos_emb_d"}
    _check_unknown(ckpt, cfg, set(llm_map) | reshaped
                   | (set(tmap) if tower is ckpt else set()), other_tower=tower is not ckpt)
    if tower is not ckpt:
        _check_unknown(tower, cfg, set(tmap), other_tower=False)
    model.eval()
    return model


def _check_unknown(src: Source, cfg: ModelConfig, mapped: set, other_tower: bool) -> None:
    """Every tensor in the folder is mapped or a known unused one; anything else is named.
    other_tower: the tower comes from --vision-tower, so this checkpoint's copy is not read."""
    for k in src.tensors.keys():
        if k in mapped or k == "lm_head.weight" and cfg.text.tie_word_embeddings:
            continue
        if src.tower == "" and k.startswith("rqtransformer."):
            continue  # VILA-U's own depth head: another architecture, never used (UniFork retrains it)
        if k.startswith(src.tower + "rqvaesiglip.") and (other_tower or _unused(k[len(src.tower):], cfg)):
            continue
        raise ModelFolderError(f"{src.folder}: unexpected tensor {k!r} {src.tensors.shape(k)}: it has no place in "
                               "the official UniFork layout these sizes imply (another architecture, or a damaged "
                               "checkpoint)")


def _codebook(ckpt: Source, cfg: ModelConfig) -> torch.Tensor:
    """The shared codebook (K, C): copy 0 without its padding row; every saved copy must agree."""
    K, C = cfg.image.codebook_size, cfg.image.codebook_dim
    name = VT + "rqvaesiglip.quantizer.codebooks.{}.weight"
    copies = [d for d in range(cfg.image.depth) if name.format(d) in ckpt.tensors.where]
    if not copies:
        raise ModelFolderError(f"{ckpt.folder}: tensor {name.format(0)!r} is missing (expected shape {(K + 1, C)})")
    first = ckpt.need(name.format(copies[0]), (K + 1, C))
    for d in copies[1:]:
        if not torch.equal(ckpt.need(name.format(d), (K + 1, C)), first):
            raise ModelFolderError(f"{ckpt.folder}: {name.format(d)} differs from {name.format(copies[0])}; the "
                                   "official quantizer shares one codebook across depths")
    return first[:K]


# --- tokenizer ----------------------------------------------------------------------------------
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def tokenizer_from_slow(folder: Path):
    """tokenizer.json's Tokenizer from the slow Qwen2Tokenizer's files (vocab.json, merges.txt,
    tokenizer_config.json / added_tokens.json): byte-level BPE, Qwen2's split, NFC."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers

    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    for f in (vocab_file, merges_file):
        if not f.is_file():
            raise ModelFolderError(f"{f} is missing: the official checkpoint folder holds the slow Qwen2 tokenizer's "
                                   "vocab.json and merges.txt (tokenizer.save_pretrained)")
    vocab = read_json(vocab_file)
    merges = []
    for line in merges_file.read_text(encoding="utf-8").splitlines():
        if line.startswith("#version") or not line.strip():
            continue
        parts = line.split(" ")
        if len(parts) != 2:
            raise ModelFolderError(f"{merges_file}: merge line {line!r} is not two tokens")
        merges.append((parts[0], parts[1]))
    tok = Tokenizer(models.BPE(vocab, merges, fuse_unk=False, byte_fallback=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)])
    tok.decoder = decoders.ByteLevel()
    added = {}
    cfg_file = folder / "tokenizer_config.json"
    if cfg_file.is_file():
        for i, spec in (json.loads(cfg_file.read_text(encoding="utf-8")).get("added_tokens_decoder") or {}).items():
            added[int(i)] = (spec["content"], bool(spec.get("special", True)))
    if (folder / "added_tokens.json").is_file():
        for content, i in json.loads((folder / "added_tokens.json").read_text(encoding="utf-8")).items():
            added.setdefault(int(i), (content, True))
    for i in sorted(added):
        content, special = added[i]
        if content in vocab:
            continue
        if i != tok.get_vocab_size():
            raise ModelFolderError(f"{folder}: added token {content!r} has id {i}, but the next free id is "
                                   f"{tok.get_vocab_size()}: the tokenizer files are inconsistent")
        tok.add_special_tokens([AddedToken(content, special=True, normalized=False)]) if special else \
            tok.add_tokens([AddedToken(content, normalized=True)])
    return tok


def convert_to_folder(ckpt_dir: str | Path, out: str | Path, vision_tower: str | Path | None = None,
                      image_size: int | None = None, siglip_heads: int | None = None,
                      head_heads: int | None = None) -> Path:
    """Write MODEL_DIR: config.json, model.safetensors, tokenizer.json, prompting.json."""
    import tempfile

    from ..io import atomic_write_text

    ckpt_dir, out = Path(ckpt_dir), Path(out)
    model = convert_official(ckpt_dir, vision_tower, image_size, siglip_heads, head_heads)
    tok = tokenizer_from_slow(ckpt_dir)
    hf = read_official_config(ckpt_dir)
    # official inference: eos <|im_end|> for captions, pad <|vision_pad|> for left padding
    eos, pad = tok.token_to_id("<|im_end|>"), tok.token_to_id("<|vision_pad|>")
    if eos is not None or pad is not None:
        import dataclasses

        model.cfg = dataclasses.replace(model.cfg, eos_token_id=model.cfg.eos_token_id if eos is None else eos,
                                        pad_token_id=model.cfg.pad_token_id if pad is None else pad).validate()
    with tempfile.TemporaryDirectory() as tmp:
        tok_path = Path(tmp) / "tokenizer.json"
        tok.save(str(tok_path))
        save_model(model, out, tokenizer=tok_path,
                   metadata={"source": "official-unifork", "mm_vision_tower": str(hf.get("mm_vision_tower"))})
    atomic_write_text(out / PROMPTING_FILE, json.dumps(PROMPTING, indent=1) + "\n")
    return out
