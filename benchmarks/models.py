"""Random-weight models and bundles for the benchmarks, built once and reused from a work folder.

There are no pretrained UniFork weights: latency depends on shapes, not on values, so every
preset is benchmarked with random weights (seed 0). Layout of the work folder:

    WORK/PRESET/model/               config.json, model.safetensors, tokenizer.json (+ built.json)
    WORK/PRESET/bundle-PRECISION/    the exported graphs (docs/GRAPHS.md)
    WORK/peer-qwen2/                 a random Qwen2.5-0.5B-shaped Hugging Face folder for the peers

A folder is rebuilt only when it is missing or was built from a different config (built.json
records the config hash and the weights' sha256, the bundle manifest records the same).
Everything here needs torch (the `train` extra) and runs in a worker process.
"""

from __future__ import annotations

import json
from pathlib import Path

# The peer model: Qwen2.5-0.5B's published shape (24 layers, tied 151936-token head).
PEER_QWEN = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                 num_attention_heads=14, num_key_value_heads=2, max_position_embeddings=32768,
                 rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True, bos_token_id=151643,
                 eos_token_id=151643)


def train_tokenizer(path: Path) -> Path:
    """A small byte-level BPE (320 ids) over ShapesWorld's text: valid for every preset's vocabulary."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    from unifork_rt.data.shapes_world import text_corpus
    from unifork_rt.runtime.pipeline import CAPTION_PROMPT

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=["<|endoftext|>"], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(text_corpus() + [CAPTION_PROMPT], trainer)
    path.parent.mkdir(parents=True, exist_ok=True)
    tok.save(str(path))
    return path


def model_folder(preset_name: str, work: Path) -> Path:
    """WORK/PRESET/model with random weights (seed 0); built on first use."""
    import torch

    from unifork_rt.config import preset
    from unifork_rt.model.checkpoint import WEIGHTS, save_model
    from unifork_rt.model.unifork import UniFork
    from unifork_rt.runtime.bundle import config_sha256, sha256_file

    cfg = preset(preset_name)
    folder = work / preset_name / "model"
    marker = folder / "built.json"
    if marker.is_file() and json.loads(marker.read_text()).get("config_sha256") == config_sha256(cfg):
        return folder
    tok = train_tokenizer(work / preset_name / "tokenizer.json")
    torch.manual_seed(0)
    with torch.no_grad():
        model = UniFork(cfg)
    save_model(model, folder, tokenizer=tok)
    del model
    marker.write_text(json.dumps({"config_sha256": config_sha256(cfg),
                                  "weights_sha256": sha256_file(folder / WEIGHTS), "seed": 0}) + "\n")
    return folder


def ort_decoder_rewritten(manifest: dict) -> bool:
    """Whether an ort bundle's manifest says its image decoder went through export/ort_image.py: the rewrite's
    counts are recorded (since session 45), or, in a manifest from before that record, no ConvTranspose is left.
    A recorded decoder counts as rewritten even where a ConvTranspose of a shape the rewrite does not take is left,
    so such a bundle is not exported again on every bench run."""
    decoder = (manifest.get("graphs") or {}).get("vision_decoder") or {}
    return "ort_rewrites" in decoder or "ConvTranspose" not in decoder.get("ops", [])


def bundle_folder(preset_name: str, key: str, work: Path) -> Path:
    """WORK/PRESET/bundle-KEY exported from the random model; built on first use. KEY: a precision
    (the portable graphs) or PRECISION-ort (`unifork-rt export --graphs ort`)."""
    from unifork_rt.export.onnx_export import export_bundle
    from unifork_rt.config import ModelConfig
    from unifork_rt.export.quantize import describe_scheme, precision_and_block
    from unifork_rt.runtime.bundle import legacy_ort_head
    from unifork_rt.runtime.qmatmul import FLOAT_KERNEL_OP

    model = model_folder(preset_name, work)
    out = work / preset_name / f"bundle-{key}"
    variant = "ort" if key.endswith("-ort") else "portable"
    precision, block = precision_and_block(key.removesuffix("-ort"))  # int4-b32: int4 in blocks of 32
    built = json.loads((model / "built.json").read_text())
    manifest = out / "manifest.json"
    if manifest.is_file():
        m = json.loads(manifest.read_text())
        # the scheme too: an `int8` bundle from before int8 meant MatMulNBits was dynamic int8, an
        # `int4` one from before int4's blocks were 128 had blocks of 32
        # and the depth head's form: a bundle from before the export folded its projections reads 3x its weights
        # and, in an ort bundle, the depth head's ORT form (since 12-04: its K/V written in place)
        folded = ModelConfig.load(model / "config.json").head.folds_attn_proj
        if (m.get("weights_sha256") == built["weights_sha256"] and m.get("precision") == precision
                and m.get("quantization") == describe_scheme(precision, block)
                and m.get("variant", "portable") == variant
                and m.get("graphs", {}).get("rq_head", {}).get("folded_attn_proj", False) == folded
                and not legacy_ort_head(m)
                # an fp32 ort bundle from before its weight MatMuls were TransposeMatMul (our float kernel)
                and not (variant == "ort" and precision == "fp32"
                         and FLOAT_KERNEL_OP not in m.get("graphs", {}).get("trunk", {}).get("ops", []))
                and not (variant == "ort" and not ort_decoder_rewritten(m))):
            return out
    return export_bundle(model, out, precision=precision, progress=False, variant=variant, block_size=block)


def peer_qwen_folder(work: Path) -> Path:
    """A random Qwen2ForCausalLM of Qwen2.5-0.5B's shape, saved as a local Hugging Face folder."""
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    folder = work / "peer-qwen2"
    marker = folder / "built.json"
    if marker.is_file() and json.loads(marker.read_text()).get("config") == PEER_QWEN:
        return folder
    cfg = Qwen2Config(**PEER_QWEN)
    torch.manual_seed(0)
    model = Qwen2ForCausalLM(cfg).eval()
    model.save_pretrained(folder)
    del model
    tok_file = train_tokenizer(folder / "bpe.json")
    tok = PreTrainedTokenizerFast(tokenizer_file=str(tok_file), eos_token="<|endoftext|>",
                                  pad_token="<|endoftext|>")
    tok.save_pretrained(folder)
    marker.write_text(json.dumps({"config": PEER_QWEN, "seed": 0}) + "\n")
    return folder
