"""The peers: what a user would otherwise run for the caption decode path, on the same machine.

All three run a random Qwen2.5-0.5B-shaped model (24 layers, tied 151936-token head) from a
local folder (models.peer_qwen_folder), batch 1, greedy, with a prompt as long as our `paper`
caption prefill, so the decode steps see the same context length:

    transformers   Qwen2ForCausalLM.generate() in PyTorch eager (default attention), fp32
    genai          onnxruntime-genai: its model builder on that folder, fp32 / int8 / int4, CPU
    optimum        optimum-onnx's ORTModelForCausalLM export; it pins transformers<4.58, so it
                   usually lives in another environment and is skipped here with a message
    llamacpp       llama.cpp's llama-bench on GGUF f32 / q8_0 / q4_0 of the same folder, built
                   from source once into the work folder (benchmarks/llamacpp.py)

Figures: time to first token (prefill + first sample) and the per-token decode time (the mean
over the tokens after the first, one sample per run), median and spread over the runs.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from .measure import Stats

PEERS = ("transformers", "genai", "optimum", "llamacpp")
GENAI_PRECISIONS = ("fp32", "int8", "int4")
# what each peer imports, and how to get it
NEEDS = {
    "transformers": ("transformers", "pip install 'unifork-rt[bench]' (transformers)"),
    "genai": ("onnxruntime_genai", "pip install 'unifork-rt[bench]' (onnxruntime-genai and onnx-ir)"),
    "optimum": ("optimum.onnxruntime",
                "optimum-onnx requires transformers<4.58: install it in its own virtual environment "
                "(pip install optimum-onnx onnxruntime) and run the bench there"),
}


def missing(peer: str, work: Path | None = None) -> str | None:
    """None when the peer's package is importable, else a message saying what to install.
    llamacpp: its tools, or what building them needs (a finished build in `work` needs none)."""
    if peer == "llamacpp":
        from . import llamacpp

        return llamacpp.missing(work)
    module, how = NEEDS[peer]
    top = module.split(".")[0]
    try:
        found = importlib.util.find_spec(top) is not None and (top == module or importlib.util.find_spec(module))
    except (ImportError, ValueError):
        found = False
    if not found:
        return f"peer {peer} skipped: {module} is not installed; {how}"
    if peer == "genai" and importlib.util.find_spec("onnx_ir") is None:
        return "peer genai skipped: its model builder needs onnx_ir beside it (pip install onnx-ir)"
    return None


def prompt_ids(n: int, seed: int = 0) -> np.ndarray:
    """n random token ids below the tokenizer's 320 (any ids do: the weights are random)."""
    return np.random.default_rng(seed).integers(1, 320, size=n, dtype=np.int64)


def _summary(ttft: list[float], per_token: list[float], tokens: list[int], warmup: int) -> dict:
    out = {"ttft": Stats.of(ttft, warmup).to_dict(), "tokens": tokens}
    if per_token:
        out["per_token"] = Stats.of(per_token, warmup).to_dict()
        out["tokens_per_s"] = 1.0 / out["per_token"]["median"]
    return out


class _Clock:
    """A generate() streamer that timestamps every put(): the prompt first, then each new token."""

    def __init__(self):
        self.times = []

    def put(self, value):
        self.times.append(time.perf_counter())

    def end(self):
        pass


def _generate_timed(model, ids, new_tokens: int, repeats: int, warmup: int) -> dict:
    import torch

    x = torch.from_numpy(ids)[None]
    mask = torch.ones_like(x)
    ttft, per_token, tokens = [], [], []
    for r in range(warmup + repeats):
        clock = _Clock()
        t0 = time.perf_counter()
        with torch.inference_mode():
            model.generate(input_ids=x, attention_mask=mask, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                           do_sample=False, streamer=clock, pad_token_id=0)
        t = clock.times[1:]  # times[0] is the prompt
        if r >= warmup:
            ttft.append(t[0] - t0)
            tokens.append(len(t))
            if len(t) > 1:
                per_token.append((t[-1] - t[0]) / (len(t) - 1))
    return _summary(ttft, per_token, tokens, warmup)


def run_transformers(folder: Path, prompt_len: int, new_tokens: int, repeats: int, warmup: int) -> dict:
    import torch
    import transformers
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    res = _generate_timed(model, prompt_ids(prompt_len), new_tokens, repeats, warmup)
    return {**res, "precision": "fp32", "engine": f"transformers {transformers.__version__}, torch {torch.__version__} "
            f"eager, attention {model.config._attn_implementation}, {torch.get_num_threads()} threads"}


def build_genai(folder: Path, out: Path, precision: str, cache: Path) -> Path:
    """onnxruntime-genai's model builder on the local folder (offline), last-token lm_head."""
    if (out / "genai_config.json").is_file():
        return out
    cmd = [sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(folder), "-o", str(out),
           "-p", precision, "-e", "cpu", "-c", str(cache), "--extra_options", "prune_lm_head=true"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not (out / "genai_config.json").is_file():
        raise RuntimeError(f"onnxruntime-genai's builder failed ({' '.join(cmd)}):\n{proc.stderr[-2000:]}")
    return out


def run_genai(model_dir: Path, prompt_len: int, new_tokens: int, repeats: int, warmup: int) -> dict:
    import onnxruntime_genai as og

    model = og.Model(str(model_dir))
    ids = prompt_ids(prompt_len)
    ttft, per_token, tokens = [], [], []
    for r in range(warmup + repeats):
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=prompt_len + new_tokens, do_sample=False)
        gen = og.Generator(model, params)
        t0 = time.perf_counter()
        gen.append_tokens(ids)  # prefill
        gen.generate_next_token()  # the first new token
        times = [time.perf_counter()]
        while not gen.is_done() and len(times) < new_tokens:
            gen.generate_next_token()
            times.append(time.perf_counter())
        del gen
        if r >= warmup:
            ttft.append(times[0] - t0)
            tokens.append(len(times))
            if len(times) > 1:
                per_token.append((times[-1] - times[0]) / (len(times) - 1))
    return {**_summary(ttft, per_token, tokens, warmup), "engine": f"onnxruntime-genai {og.__version__}"}


def run_optimum(folder: Path, prompt_len: int, new_tokens: int, repeats: int, warmup: int) -> dict:
    """optimum-onnx's ORT export of the same folder (runs only where optimum-onnx is installed)."""
    from optimum.onnxruntime import ORTModelForCausalLM

    model = ORTModelForCausalLM.from_pretrained(folder, export=True, use_cache=True)
    res = _generate_timed(model, prompt_ids(prompt_len), new_tokens, repeats, warmup)
    return {**res, "precision": "fp32", "engine": "optimum-onnx ORTModelForCausalLM"}
