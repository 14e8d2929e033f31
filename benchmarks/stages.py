"""Stage-by-stage and whole-pipeline timings of one runtime (ORT backends or PyTorch eager).

Stages call the backend's graphs directly with the inputs the pipeline builds, in the order
the pipeline runs them; the whole pipeline is then timed through UniForkRuntime itself, so

    chaining overhead = whole image / (image cells x measured per-cell step)

is a ratio of two measurements from the same process.

    caption (B = 1):  image_encode = vision_encoder + connector
                      prefill      = trunk + und_branch over [prefix BOI img EOI prompt]   (T = Q + N + 2 + P)
                      decode_step  = trunk + und_branch at T = 1 (logits of that position)
                      time to first token = image_encode + prefill
    draw (B = 2, classifier-free guidance, n = 1):
                      prefill      = trunk + gen_branch over [prompt BOI] / [pad.. BOI]
                      cell_step    = connector(1 cell) + trunk + gen_branch + D x rq_head   (graphs only)
                      image_decode = vision_decoder(N cells)
                      whole_image  = UniForkRuntime.draw (prefill, N cells with sampling, decode)
    draw --n 4 (B = 8): cell_step_n4 and whole_image_n4, as ratios to n = 1's (does batching pay?)
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .measure import Stats, measure, measure_alternating

DRAW_PROMPT = "a red circle left of a blue square"


@dataclass(frozen=True)
class Plan:
    """How long to measure. repeats: whole-pipeline runs; step_repeats: per-step graph calls."""

    repeats: int = 3
    step_repeats: int = 20
    warmup: int = 1
    new_tokens: int = 32  # caption tokens decoded per pipeline run
    image_budget_s: float = 240.0  # skip the whole-image run when its estimate is longer
    tasks: tuple[str, ...] = ("caption", "draw")


def _d(stats: Stats) -> dict:
    return stats.to_dict()


def caption_timed(rt, image: np.ndarray, new_tokens: int) -> tuple[float, int, float | None]:
    """One greedy caption through the pipeline: (seconds to the first token, tokens, seconds per token after the
    first, None where it stopped at the first)."""
    t0 = time.perf_counter()
    stream = rt.caption_stream([image], max_new_tokens=new_tokens, temperature=0.0)
    next(stream)
    t1 = time.perf_counter()
    n = 1 + sum(1 for _ in stream)
    return t1 - t0, n, (time.perf_counter() - t1) / (n - 1) if n > 1 else None


def random_pixels(rt, seed: int = 0) -> np.ndarray:
    """One random image (1, 3, P, P) in [-1, 1], in the bundle's float type: what the caption timings encode."""
    P = rt.cfg.image.image_size
    return np.random.default_rng(seed).uniform(-1, 1, (1, 3, P, P)).astype(rt.bundle.float_dtype)


def caption_sequence(rt, pixels: np.ndarray) -> np.ndarray:
    """The caption prefill's input: PIXELS encoded, then the pipeline's layout (caption_prefill: the bundle's
    caption prefix, BOI, image, EOI, prompt) around the caption prompt, within the bundle's template where it has
    one, as caption_stream builds it; (1, Q + N + 2 + P, H)."""
    from unifork_rt.runtime.pipeline import CAPTION_PROMPT

    return rt.caption_prefill(encode_image(rt, pixels), rt.caption_prompt_ids(CAPTION_PROMPT))


def encode_image(rt, pixels: np.ndarray) -> np.ndarray:
    """The caption's image encode stage: vision_encoder then connector, PIXELS (B, 3, P, P) -> embeds (B, N, H)."""
    codes = rt.backend.run("vision_encoder", {"pixels": pixels})["codes"]
    return rt.backend.run("connector", {"codes": codes})["embeds"]


def caption(rt, plan: Plan) -> dict:
    from unifork_rt.runtime.pipeline import CAPTION_PROMPT

    be, cfg = rt.backend, rt.cfg
    dt = rt.bundle.float_dtype
    pixels = random_pixels(rt)

    x = caption_sequence(rt, pixels)  # (1, Q + N + 2 + P, H): the pipeline's own layout
    H = x.shape[2]
    prefill_len = x.shape[1]
    caches = (be.new_cache("trunk", 1), be.new_cache("und_branch", 1))
    start = np.zeros(1, dtype=np.int64)
    pos = np.array(prefill_len, dtype=np.int64)
    stages = {"image_encode": measure(lambda: encode_image(rt, pixels), plan.repeats, plan.warmup),
              "prefill": measure(lambda: rt.step(x, caches, 0, start, "und_branch"), plan.repeats, plan.warmup)}
    logits = rt.step(x, caches, 0, start, "und_branch")
    tok = np.argmax(logits, -1)
    xt = np.ascontiguousarray(rt.embed[tok][:, None].astype(dt))  # (1, 1, H)
    h = be.run("trunk", {"x": xt, "pos": pos, "start": start}, caches[0])["h"]
    # decode at the first generated position, as a caption's steps begin (the portable graphs read the whole
    # max_seq buffer, the same at any position; the ort graphs the slots in use)
    stages["trunk_step"] = measure(lambda: be.run("trunk", {"x": xt, "pos": pos, "start": start}, caches[0]),
                                   plan.step_repeats, plan.warmup)
    stages["und_branch_step"] = measure(lambda: be.run("und_branch", {"h": h, "pos": pos, "start": start},
                                                       caches[1]), plan.step_repeats, plan.warmup)
    stages["decode_step"] = measure(lambda: rt.step(xt, caches, int(pos), start, "und_branch"),
                                    plan.step_repeats, plan.warmup)
    stages["sample_greedy"] = measure(lambda: np.argmax(logits, -1), plan.step_repeats, plan.warmup)

    # the whole pipeline, greedy: first token, then the rest
    ttft, per_token, tokens = [], [], []
    for r in range(plan.warmup + plan.repeats):
        first, n, each = caption_timed(rt, pixels[0], plan.new_tokens)
        if r >= plan.warmup:
            ttft.append(first)
            tokens.append(n)
            if each is not None:
                per_token.append(each)
    pipe = {"ttft": _d(Stats.of(ttft, plan.warmup)), "tokens": tokens}
    if per_token:
        pipe["per_token"] = _d(Stats.of(per_token, plan.warmup))
        pipe["tokens_per_s"] = 1.0 / pipe["per_token"]["median"]
    else:
        pipe["note"] = "every run stopped at the first token (eos): no per-token figure"
    return {
        "batch": 1, "image_cells": cfg.image.num_cells, "prompt_tokens": len(rt.caption_prompt_ids(CAPTION_PROMPT)),
        "prefill_tokens": prefill_len,
        "max_seq": rt.bundle.max_seq, "hidden": H, "new_tokens": plan.new_tokens,
        "stages": {k: _d(v) for k, v in stages.items()},
        "ttft_stages_s": stages["image_encode"].median + stages["prefill"].median,
        "tokens_per_s_stages": 1.0 / stages["decode_step"].median,
        "pipeline": pipe,
    }


N4 = 4  # the batched draw the issue compares with --n 1 (images per prompt)


def draw(rt, plan: Plan) -> dict:
    from unifork_rt.runtime.pipeline import DrawRequest, DrawSettings
    from unifork_rt.runtime.sampling import Sampling, cfg_mix, sample

    be, cfg = rt.backend, rt.cfg
    s = DrawSettings.for_bundle(rt.bundle)
    sampling = Sampling(s.temperature, s.top_k, s.top_p)
    rng = np.random.default_rng(0)
    im = cfg.image
    N, D = im.num_cells, im.depth
    guided = s.cfg_scale != 1.0

    def rows(n: int):
        """The cell step of a draw of n images: the pipeline's own rows (n cond + n uncond when guided)."""
        x, start = rt.draw_prefill([DrawRequest(DRAW_PROMPT, s, n)])
        # the prompt's slots as the pipeline lays them out (its draw template and negative prompt, where the bundle
        # has them; rows padded to the longer), then BOI: the cells go where a draw writes them
        B, P = len(x), x.shape[1] - 1
        caches = (be.new_cache("trunk", B), be.new_cache("gen_branch", B))
        head_cache = be.new_cache("rq_head", B)
        hidden = rt.step(x, caches, 0, start, "gen_branch")[:, -1]
        cell_codes = np.ones((B, D), dtype=np.int64)

        def cell_step():
            e = be.run("connector", {"codes": cell_codes[:, None]})["embeds"]
            rt.step(e, caches, P + 1, start, "gen_branch")
            for d in range(D):
                be.run("rq_head", {"hidden": hidden, "codes": cell_codes, "pos": np.array(d, dtype=np.int64)},
                       head_cache)
        return B, x, start, caches, head_cache, hidden, cell_codes, cell_step

    B, x, start, caches, head_cache, hidden, cell_codes, cell_step = rows(1)
    P = x.shape[1] - 1
    stages = {"prefill": measure(lambda: rt.step(x, caches, 0, start, "gen_branch"), plan.repeats, plan.warmup)}
    pos = P + 1
    p = np.array(pos, dtype=np.int64)
    emb = be.run("connector", {"codes": cell_codes[:, None]})["embeds"]
    h = be.run("trunk", {"x": emb, "pos": p, "start": start}, caches[0])["h"]

    logits = be.run("rq_head", {"hidden": hidden, "codes": cell_codes, "pos": np.array(0, dtype=np.int64)},
                    head_cache)["logits"]
    codes = np.ones((1, N, D), dtype=np.int64)
    r, w = plan.step_repeats, plan.warmup
    stages["connector"] = measure(lambda: be.run("connector", {"codes": cell_codes[:, None]}), r, w)
    stages["trunk_step"] = measure(lambda: be.run("trunk", {"x": emb, "pos": p, "start": start}, caches[0]), r, w)
    stages["gen_branch_step"] = measure(lambda: be.run("gen_branch", {"h": h, "pos": p, "start": start}, caches[1]),
                                        r, w)
    stages["rq_head_step"] = measure(lambda: be.run("rq_head", {"hidden": hidden, "codes": cell_codes,
                                                                "pos": np.array(1, dtype=np.int64)}, head_cache), r, w)
    B4, *_, cell_step_n4 = rows(N4)  # batching: --n 4 runs all its rows through each graph at once
    # in turn, step for step: the ratio of the two from the same minutes (the host's speed moves by ±30%)
    stages["cell_step"], stages["cell_step_n4"] = measure_alternating([cell_step, cell_step_n4], r, w)
    stages["sample_depth"] = measure(lambda: sample(cfg_mix(logits, s.cfg_scale) if guided else logits, sampling, rng),
                                     r, w)
    stages["image_decode"] = measure(lambda: be.run("vision_decoder", {"codes": codes}), plan.repeats, w)

    step = stages["cell_step"].median
    graphs_s = stages["prefill"].median + N * step + stages["image_decode"].median
    out = {
        "batch": B, "cfg_scale": s.cfg_scale, "sampling": {"temperature": s.temperature, "top_k": s.top_k,
                                                          "top_p": s.top_p},
        "prompt_tokens": P, "cells": N, "depth": D, "max_seq": rt.bundle.max_seq,
        "stages": {k: _d(v) for k, v in stages.items()},
        "image_tokens_x_step_s": N * step, "graphs_estimate_s": graphs_s,
        "n4_batch": B4, "ratio_n4_vs_n1_cell_step": stages["cell_step_n4"].median / step,
    }
    n_runs = min(plan.repeats, int(plan.image_budget_s // max(graphs_s, 1e-9)))
    if n_runs < 1:
        out["whole_image_skipped"] = (f"estimated {graphs_s:.0f} s per image > --image-budget "
                                      f"{plan.image_budget_s:.0f} s: not run")
        return out
    # sessions and shapes are warm from the stages above, so no separate warm-up image. --n 1 and --n 4
    # images are drawn in turn, so that both medians come from the same minutes of a host whose speed moves
    # (one --n 4 image after all the --n 1 ones read 1.96x in a run where the cell steps said 1.37x)
    ones, fours, skip4 = [], [], None
    for _ in range(n_runs):
        ones.append(measure(lambda: rt.draw([DRAW_PROMPT], n=1, seed=0), 1, warmup=0).median)
        estimate = ones[0] * out["ratio_n4_vs_n1_cell_step"]
        if estimate > plan.image_budget_s:
            skip4 = f"estimated {estimate:.0f} s > --image-budget {plan.image_budget_s:.0f} s: not run"
        else:
            fours.append(measure(lambda: rt.draw([DRAW_PROMPT], n=N4, seed=0), 1, warmup=0).median)
    whole = Stats.of(ones, 0)
    out["whole_image"] = _d(whole)
    out["ratio_whole_vs_steps"] = whole.median / (N * step)
    out["ratio_whole_vs_graphs"] = whole.median / graphs_s
    if fours:
        whole4 = Stats.of(fours, 0)
        out["whole_image_n4"] = _d(whole4)
        out["ratio_n4_vs_n1_whole"] = whole4.median / whole.median
    else:
        out["whole_image_n4_skipped"] = skip4
    return out


def run(rt, plan: Plan) -> dict:
    out = {}
    if "caption" in plan.tasks:
        out["caption"] = caption(rt, plan)
    if "draw" in plan.tasks:
        out["draw"] = draw(rt, plan)
    return out
