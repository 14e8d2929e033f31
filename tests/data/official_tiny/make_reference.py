"""Recipe for tests/data/official_tiny: a tiny random checkpoint written by the OFFICIAL UniFork
code (tliby/UniFork @ 2c5b757) and reference tensors computed by that same code.

Not part of the package and not run by the tests; it needs the official environment:

    python3 -m venv /work/offvenv
    /work/offvenv/bin/pip install torch==2.13.0 transformers==4.45.0 safetensors numpy pillow
    git clone https://github.com/tliby/UniFork /tmp/UniFork   # or any checkout of 2c5b757
    /work/offvenv/bin/python tests/data/official_tiny/make_reference.py /tmp/UniFork tests/data/official_tiny

What it changes in a scratch copy of the official code (nothing else):
  * rqtransformer/configuration_rqtransformer.py: `block: AttentionBlockConfig = AttentionBlockConfig()`
    becomes `field(default_factory=AttentionBlockConfig)` (Python 3.11 rejects the mutable default;
    OFFICIAL_UNIFORK.md §5);
  * the two hard-coded widths become module constants with the same default, so a tiny model is
    possible: 896 in rqtransformer/attention.py (the depth head's residual width = the LLM width)
    and 1024 in projector.py (the projector's in-width = the codebook width). The maths is untouched;
  * torchvision is stubbed (only the image processor imports it; we feed pixels directly);
  * the decoder's Upsample casts to bfloat16 by hand; the reference is computed in float32, so the
    recipe runs the post-quant conv and the decoder with that cast made a no-op (OFFICIAL.md, dtypes).

Weights are random, rounded to bfloat16 (the official checkpoints are bf16 on disk) and saved by the
official path: a cloned state dict through save_pretrained(safe_serialization=True), so every alias
(lm_head, the four codebook copies, logit_scale/bias) is written separately. The VILA-U-layout tower
folder the model is built from (mm_vision_tower) is saved the same way into a scratch folder and not
kept: tests/test_official.py writes one from the checkpoint's tower tensors (the same layout).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import torch

# tiny sizes: every width differs, so a transposed or misrouted tensor cannot pass unnoticed
LLM = dict(vocab_size=320, hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
           num_key_value_heads=2, rope_theta=1e6, rms_norm_eps=1e-6, tie_word_embeddings=True,
           max_position_embeddings=512, bos_token_id=None, eos_token_id=None)
SIGLIP = dict(hidden_size=32, intermediate_size=48, num_hidden_layers=3, num_attention_heads=2, patch_size=2,
              image_size=8, layer_norm_eps=1e-6, hidden_act="gelu_pytorch_tanh")  # 4x4 native positions
SIGLIP_TEXT = dict(vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=1,
                   num_attention_heads=2, max_position_embeddings=16)
GRID, DEPTH, K = 6, 4, 48  # 12 px images -> 6x6 cells (position table interpolated 4x4 -> 6x6)
# two levels (x2 upsampling, matching the patch size 2); the widths change (32 -> 64) on the way
# out, so a nin_shortcut exists; attention sits at the lowest level as in VILA-U's ddconfig
DDCONFIG = dict(double_z=False, z_channels=16, resolution=12, in_channels=3, out_ch=3, ch=32, ch_mult=[2, 1],
                num_res_blocks=1, attn_resolutions=[6], dropout=0.0)
HEAD = dict(embed_dim=48, n_head=4, n_layer=2)  # attention width 48 (12 per head), residual = LLM width 64

NEGATIVE = ("lowres, bad anatomy, bad hands, text, error, missing fingers, extra digit, fewer digits, cropped, "
            "worst quality, low quality, normal quality, jpeg artifacts, signature, watermark, username, blurry.")
SYSTEM = ("A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
          "detailed, and polite answers to the user's questions.")
QUERY = "What is in the picture?"
PROMPT = "a red circle on a blue square"


def scratch_copy(repo: Path, into: Path) -> Path:
    dst = into / "UniFork"
    dst.mkdir()
    git_dir = repo / ".git" if (repo / ".git").exists() else repo if (repo / "objects").is_dir() else None
    if git_dir is not None:  # a checkout or a bare mirror: the committed tree only
        subprocess.run(f"git --git-dir={git_dir} archive HEAD | tar -x -C {dst}", shell=True, check=True)
    else:
        shutil.copytree(repo, dst, dirs_exist_ok=True)
    enc = dst / "unifork/model/multimodal_encoder/rqvaesigliptransformer"
    _patch(enc / "rqtransformer/configuration_rqtransformer.py",
           [("from dataclasses import dataclass", "from dataclasses import dataclass, field"),
            ("block: AttentionBlockConfig = AttentionBlockConfig()",
             "block: AttentionBlockConfig = field(default_factory=AttentionBlockConfig)")])
    att = enc / "rqtransformer/attention.py"
    src = att.read_text()
    att.write_text(src.replace("from .configuration_rqtransformer", "RESID = 896\nfrom .configuration_rqtransformer", 1)
                   .replace("896", "RESID").replace("RESID = RESID", "RESID = 896"))
    proj = dst / "unifork/model/projector.py"
    proj.write_text(proj.read_text().replace("import re\n", "import re\nPROJ_IN = 1024\n", 1)
                    .replace("nn.Linear(1024,", "nn.Linear(PROJ_IN,"))
    return dst


def _patch(path: Path, pairs):
    s = path.read_text()
    for a, b in pairs:
        assert a in s, (path, a)
        s = s.replace(a, b, 1)
    path.write_text(s)


def stub_torchvision():
    tv = types.ModuleType("torchvision")
    tv.transforms = types.ModuleType("torchvision.transforms")
    tv.transforms.functional = types.ModuleType("torchvision.transforms.functional")
    tv.transforms.InterpolationMode = types.SimpleNamespace(BICUBIC="bicubic")
    sys.modules.update({"torchvision": tv, "torchvision.transforms": tv.transforms,
                        "torchvision.transforms.functional": tv.transforms.functional})


def make_tokenizer(folder: Path):
    """A small byte-level BPE with Qwen2's special tokens, saved as the slow Qwen2Tokenizer saves."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import Qwen2Tokenizer

    text = [SYSTEM, NEGATIVE, QUERY, PROMPT, "USER: ASSISTANT: a photo of a cat, a dog and a red circle.",
            "blue green yellow square triangle picture image the of on in"] * 4
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(text, vocab_size=300, min_frequency=1, show_progress=False)
    raw = folder / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    bpe.save_model(str(raw))
    tok = Qwen2Tokenizer(str(raw / "vocab.json"), str(raw / "merges.txt"), unk_token=None, bos_token=None,
                         eos_token="<|endoftext|>", pad_token="<|endoftext|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>", "<|vision_pad|>",
                                                          "<|video_pad|>"]})
    shutil.rmtree(raw)
    return tok


def randomise(module: torch.nn.Module, gen: torch.Generator):
    """Random weights of a scale that keeps activations near 1 (std 0.02 everywhere would make every
    logit a near-tie), then rounded to bfloat16, the official on-disk dtype."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "embed_tokens" in name:  # wide logits through the tied head: few greedy near-ties
                p.copy_(torch.randn(p.shape, generator=gen))
            elif "norm" in name and p.dim() == 1 and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=gen))
            elif p.dim() == 1:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel() if p.dim() > 1 else p.shape[-1]
                p.copy_(torch.randn(p.shape, generator=gen) / fan_in ** 0.5)
            p.copy_(p.to(torch.bfloat16).float())


def main(repo: str, out: str):
    out = Path(out).resolve()
    work = Path(tempfile.mkdtemp())
    root = scratch_copy(Path(repo).resolve(), work)
    import transformers  # noqa: F401  (imported before the stub: it probes for torchvision at import)

    stub_torchvision()
    sys.path.insert(0, str(root))
    os.chdir(root)  # the official code reads configs/preprocessor_config.json relative to the CWD
    from unifork.model.multimodal_encoder.rqvaesigliptransformer.rqtransformer import attention
    import unifork.model.projector as projector

    attention.RESID = LLM["hidden_size"]
    projector.PROJ_IN = SIGLIP["hidden_size"]
    from transformers import SiglipConfig
    from unifork.constants import IMAGE_TOKEN_INDEX
    from unifork.model import LlavaQwen2ForCausalLM, LlavaConfig
    from unifork.model.multimodal_encoder.rqvaesigliptransformer.modeling_rqvaesigliptransformer import (
        RQVAESIGLIPTransformer, RQVAESIGLIPTransformerConfig)
    from unifork.model.multimodal_encoder.rqvaesigliptransformer.rqvaesiglip import modules

    torch.manual_seed(0)
    gen = torch.Generator().manual_seed(0)
    ckpt, tower_dir, siglip_dir = out / "checkpoint", work / "vision_tower", work / "siglip"
    shutil.rmtree(ckpt, ignore_errors=True)
    SiglipConfig(vision_config=SIGLIP, text_config=SIGLIP_TEXT).save_pretrained(siglip_dir)
    tower_cfg = RQVAESIGLIPTransformerConfig(
        hidden_size=SIGLIP["hidden_size"], architectures=["RQVAESIGLIPTransformer"],
        rqvaesiglip=dict(embed_dim=SIGLIP["hidden_size"], n_embed=K, code_shape=[GRID, GRID, DEPTH],
                         latent_shape=[GRID, GRID, SIGLIP["hidden_size"]], shared_codebook=True,
                         restart_unused_codes=True, decay=0.99, ddconfig=DDCONFIG,
                         pretrained_model=str(siglip_dir), architectures=["RQVAESiglipModel"]),
        rqtransformer=dict(block_size=[GRID, GRID, DEPTH], input_embed_dim_1=SIGLIP["hidden_size"],
                           input_embed_dim_2=LLM["hidden_size"], embed_dim=HEAD["embed_dim"],
                           embed_dim_out=LLM["hidden_size"], vocab_size=K,
                           head=dict(block=dict(n_head=HEAD["n_head"]), n_layer=HEAD["n_layer"]),
                           architectures=["RQTransformer"]))
    tower = RQVAESIGLIPTransformer(tower_cfg).eval()
    randomise(tower, gen)
    with torch.no_grad():  # the padding row is zero, as nn.Embedding(padding_idx) makes it
        tower.rqvaesiglip.quantizer.codebooks[0].weight[-1].zero_()
    _save_cloned(tower, tower_dir)

    tok = make_tokenizer(work / "tok")
    cfg = LlavaConfig(**LLM, mm_vision_tower=str(tower_dir), use_mm_proj=True, image_aspect_ratio="pad",
                      tokenizer_padding_side="right", tokenizer_model_max_length=1350, tune_mm_mlp_adapter=False,
                      mm_use_im_start_end=False, mm_use_im_patch_token=False, pad_token_id=tok.pad_token_id)
    cfg.eos_token_id = cfg.bos_token_id = tok.convert_tokens_to_ids("<|endoftext|>")
    model = LlavaQwen2ForCausalLM(cfg).eval()
    model.get_model().vision_tower.load_model()  # the tower from mm_vision_tower, as training does
    model.eval()
    randomise(model, gen)  # every weight, the tower's too (the trained depth head and the drifted codebook)
    with torch.no_grad():
        model.lm_head.weight = model.get_model().embed_tokens.weight  # tied, as Qwen2.5-0.5B
        model.get_model().vision_tower.vision_tower.rqvaesiglip.quantizer.codebooks[0].weight[-1].zero_()
    model.config.mm_vision_tower = "vila-u-7b-256/vision_tower"  # what every official script writes
    model.config.torch_dtype = "bfloat16"
    _save_cloned(model, ckpt)
    tok.save_pretrained(ckpt)
    model.config.mm_vision_tower = str(tower_dir)

    refs = reference(model, tok, IMAGE_TOKEN_INDEX, modules, gen)
    from safetensors.torch import save_file

    meta = {k: v for k, v in refs.items() if not isinstance(v, torch.Tensor)}
    save_file({k: v.contiguous() for k, v in refs.items() if isinstance(v, torch.Tensor)},
              str(out / "reference.safetensors"))
    (out / "reference.json").write_text(json.dumps(meta, indent=1) + "\n")
    shutil.rmtree(work)
    print("wrote", out)


def _save_cloned(model, folder: Path):
    """The official save path: a state dict of clones (aliases become separate tensors), bf16."""
    state = {k: v.detach().clone().to(torch.bfloat16) for k, v in model.state_dict().items()}
    model.save_pretrained(folder, state_dict=state, safe_serialization=True)


@torch.no_grad()
def reference(model, tok, IMAGE_TOKEN_INDEX, modules, gen):
    vt = model.get_model().vision_tower.vision_tower
    rq, head, proj = vt.rqvaesiglip, vt.rqtransformer, model.get_model().mm_projector
    P = GRID * SIGLIP["patch_size"]
    pixels = (torch.rand(2, 3, P, P, generator=gen) * 2 - 1)
    codes, z_q = rq.encode_image(pixels)  # (2, g, g, D), (2, g, g, C)
    z_q = z_q.reshape(2, GRID * GRID, -1)
    codes = codes.reshape(2, GRID * GRID, DEPTH)
    und_embeds = proj(z_q)  # (2, N + 2, H): BOI, cells, EOI

    # understanding: the vicuna_v1 prompt of infer_mmu.py, <image> replaced by id -200
    before = f"<|im_start|>{SYSTEM} USER: "
    after = f"\n{QUERY} ASSISTANT:"
    ids_before, ids_after = tok(before).input_ids, tok(after).input_ids
    input_ids = torch.tensor([ids_before + [IMAGE_TOKEN_INDEX] + ids_after])
    _, _, _, _, embeds, _ = model.prepare_inputs_labels_for_multimodal(
        input_ids, None, torch.ones_like(input_ids), None, None, pixels[:1])
    out = model(inputs_embeds=embeds, use_cache=True)
    und_logits = out.logits[0]  # (L, V)
    past, tokens = out.past_key_values, []
    nxt = int(und_logits[-1].argmax())
    for _ in range(6):  # greedy, cached decode
        tokens.append(nxt)
        o = model(input_ids=torch.tensor([[nxt]]), past_key_values=past, use_cache=True)
        past, nxt = o.past_key_values, int(o.logits[0, -1].argmax())
    forced = tok(" a red circle on a square").input_ids  # cached decode fed varied tokens
    past, step_logits = model(inputs_embeds=embeds, use_cache=True).past_key_values, []
    for t in forced:
        o = model(input_ids=torch.tensor([[t]]), past_key_values=past, use_cache=True)
        past = o.past_key_values
        step_logits.append(o.logits[0, -1])

    # generation: the infer_t2i prompt, BOI appended, forward_gen; then 5 teacher-forced cells
    gen_ids = tok(f"<|im_start|>USER: {PROMPT} ASSISTANT: ").input_ids
    neg_ids = tok(f"<|im_start|>USER: {NEGATIVE}. ASSISTANT: ").input_ids
    x = torch.cat([model.get_model().embed_tokens(torch.tensor([gen_ids])),
                   proj.token_embedding(torch.zeros(1, 1, dtype=torch.long))], dim=1)
    o = model.forward_gen(inputs_embeds=x, use_cache=True, output_hidden_states=True)
    gen_hidden = [o.hidden_states[-1][0]]  # (P + 1, H): norm_gen output
    past = o.past_key_values
    gen_codes = codes[1, :5]  # (5, D): the second image's first cells
    for cell in range(4):
        feat = rq.get_code_emb_with_depth(gen_codes[cell][None, None])[0].cumsum(-2)[:, :, -1]  # (1, 1, C)
        o = model.forward_gen(inputs_embeds=proj.forward_generate(feat), past_key_values=past, use_cache=True,
                              output_hidden_states=True)
        past = o.past_key_values
        gen_hidden.append(o.hidden_states[-1][0])
    gen_hidden = torch.cat(gen_hidden)  # (P + 5, H)
    head_in = gen_hidden[-5:][None]  # the hidden that predicts each of the 5 cells
    head_logits = head(head_in, gen_codes[None], model_aux=rq)[0]  # (5, D, K), teacher-forced per depth

    # decoding in float32: the official Upsample casts to bf16 by hand, made a no-op here
    real = modules.Upsample.forward

    def upsample_fp32(self, x):
        x = torch.nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        return self.conv(x) if self.with_conv else x

    modules.Upsample.forward = upsample_fp32
    feats = rq.get_code_emb_with_depth(codes)[0].cumsum(-2)[:, :, -1]  # (2, N, C)
    z = feats.reshape(2, GRID, GRID, -1).permute(0, 3, 1, 2)
    decoded = rq.decoder(rq.post_quant_conv(z))  # (2, 3, P', P')
    modules.Upsample.forward = real

    return {
        "pixels": pixels, "codes": codes, "z_q": z_q, "und_embeds": und_embeds,
        "und_input_embeds": embeds[0], "und_logits": und_logits, "step_logits": torch.stack(step_logits),
        "gen_hidden": gen_hidden, "head_logits": head_logits, "decoded": decoded,
        "greedy_tokens": torch.tensor(tokens),
        "caption_prefix": before, "caption_suffix": after, "ids_before": ids_before, "ids_after": ids_after,
        "forced_ids": forced, "gen_prompt": PROMPT, "gen_ids": gen_ids, "neg_ids": neg_ids, "query": QUERY,
    }


if __name__ == "__main__":
    main(*sys.argv[1:3])
