"""Interleaved A/B of one decode step: our paper caption step against the peers, round-robin.

On a machine shared with a training run, figures taken minutes apart are not comparable; steps
taken alternately, engine after engine in every round, see the same load. This measures only
the batch-1 decode step (no prefill): ours = trunk + und_branch at T = 1 on raw ORT sessions
(the bundle's graphs, whole KV buffer read); genai = one generate_next_token after a short
prompt; transformers = one cached forward of the 24-layer model. The KV context differs (a short
prompt for the peers, our max_seq buffer), which is < 1% of the bytes a step reads.

    python -m unifork_rt.benchmarks.decode_ab --work runs/bench --rounds 15 --out runs/bench/ab.json

Ours runs at every precision whose bundle the bench has built in WORK/PRESET/bundle-PRECISION
(fp32, int8-dynamic, int8, int4); the others are skipped with a message.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
import numpy as np


def _ours(bundle_dir: Path):
    import onnxruntime as ort

    from unifork_rt.runtime.bundle import load_bundle

    from .profile import decode_feeds

    bundle = load_bundle(bundle_dir, verify=False)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = {g: ort.InferenceSession(str(bundle.graphs[g].path), sess_options=opts, providers=["CPUExecutionProvider"])
            for g in ("trunk", "und_branch")}
    ft, fu = decode_feeds(bundle, "trunk"), decode_feeds(bundle, "und_branch")

    def step():
        h = sess["trunk"].run(["h"], ft)[0]
        sess["und_branch"].run(["logits"], {**fu, "h": h})
    return step


def _bundle(folder: Path) -> Path:
    if not (folder / "manifest.json").is_file():
        raise FileNotFoundError(f"no bundle in {folder}: build it with unifork-rt bench (--backends ort-cpu:PRECISION)")
    return folder


def _genai(model_dir: Path, prompt: int, max_len: int):
    import onnxruntime_genai as og

    model = og.Model(str(model_dir))
    state = {}

    def reset():
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=max_len, do_sample=False)
        state["g"] = og.Generator(model, params)
        state["g"].append_tokens(np.arange(1, prompt + 1, dtype=np.int64))

    reset()

    def step():
        if state["g"].is_done():
            reset()
        state["g"].generate_next_token()
    return step


def _transformers(folder: Path, prompt: int):
    import torch
    from transformers import Qwen2ForCausalLM

    model = Qwen2ForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    ids = torch.arange(1, prompt + 1)[None]
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
    state = {"past": out.past_key_values, "tok": out.logits[:, -1:].argmax(-1)}

    def step():
        with torch.inference_mode():
            o = model(input_ids=state["tok"], past_key_values=state["past"], use_cache=True)
        state["past"], state["tok"] = o.past_key_values, o.logits[:, -1:].argmax(-1)
    return step


OURS = ("fp32", "int8-dynamic", "int8", "int4")


@click.command()
@click.option("--work", type=click.Path(path_type=Path), default=Path("runs/bench"))
@click.option("--preset", default="paper", show_default=True, help="Our bundles: WORK/PRESET/bundle-PRECISION.")
@click.option("--rounds", type=int, default=15)
@click.option("--prompt", type=int, default=16)
@click.option("--out", type=click.Path(path_type=Path), default=None)
def main(work, preset, rounds, prompt, out):
    engines = {
        **{f"ours ort-cpu {p}": (lambda p=p: _ours(_bundle(work / preset / f"bundle-{p}"))) for p in OURS},
        "genai fp32": lambda: _genai(work / "peer-genai-fp32", prompt, prompt + rounds + 8),
        "genai int8": lambda: _genai(work / "peer-genai-int8", prompt, prompt + rounds + 8),
        "genai int4": lambda: _genai(work / "peer-genai-int4", prompt, prompt + rounds + 8),
        "transformers fp32": lambda: _transformers(work / "peer-qwen2", prompt),
    }
    steps = {}
    for name, make in engines.items():
        try:
            steps[name] = make()
            steps[name]()  # warm-up
        except (ImportError, FileNotFoundError, RuntimeError) as e:
            click.echo(f"{name} skipped: {e}", err=True)
    times = {n: [] for n in steps}
    for r in range(rounds):
        for name, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[name].append(time.perf_counter() - t0)
        click.echo(f"round {r + 1}/{rounds}", err=True)
    res = {n: {"median_ms": float(np.median(t)) * 1e3, "p10_ms": float(np.percentile(t, 10)) * 1e3,
               "p90_ms": float(np.percentile(t, 90)) * 1e3, "n": len(t)} for n, t in times.items()}
    from .measure import machine_info

    doc = {"machine": machine_info(), "rounds": rounds, "peer_prompt": prompt, "steps": res}
    text = json.dumps(doc, indent=1)
    if out:
        from unifork_rt.io import atomic_write_text

        atomic_write_text(out, text + "\n")
    for n, r in res.items():
        click.echo(f"{n:26s} {r['median_ms']:8.1f} ms  (p10 {r['p10_ms']:.1f}, p90 {r['p90_ms']:.1f})")


if __name__ == "__main__":
    main()
