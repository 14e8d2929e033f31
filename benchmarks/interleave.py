"""Ours and llama.cpp round by round: the caption decode at each precision pairing, interleaved.

This host's memory bandwidth moves between states from one minute to the next (36 and 66 GB/s on the
2-core EPYC of docs/BENCHMARKS.md, for every buffer at once, for seconds to minutes). Our unit and
llama.cpp's unit of the same precision, timed minutes apart, can each catch either state, so their
ratio says as much about the minutes as about the engines. Here each round times both, one right after
the other (which goes first alternates from round to round), with a bandwidth probe just before and
just after our timing:

    round r:  probe, ours (captions of new_tokens tokens: ms per token after the first), probe
              llama-bench decode at the prompt's depth (its own warm-up run, then `peer_repeats` runs)

Per round: ours / llama.cpp (ms per token), and our figure's share of its bandwidth bound at the higher
of the two probes beside it (the report computes both; a higher bandwidth would lower the share, so
the probe never flatters it). The report gives their medians over the rounds and each round.

Ours is the whole caption pipeline's per-token figure, as in the main table (the decode steps, the
sampling, the embedding lookups); llama.cpp's is llama-bench's `-p 0 -n 64 -d PROMPT`, as its unit.
Runs in a worker process of its own (benchmarks/worker.py), after the peers: one of our runtimes loaded
at a time, llama-bench a child process.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Callable

import numpy as np

# our precision -> the llama.cpp type it is compared with (issue 16's pairings; int8-dynamic answers q8_0 too)
PAIRINGS = {"fp32": "f32", "int8": "q8_0", "int8-dynamic": "q8_0", "int4": "q4_0"}


def plan_pairs(units: list[dict], llamacpp_types: list[str]) -> list[dict]:
    """The pairings to interleave: each of our ort-cpu paper units (the `--graphs ort` one where both ran, as the
    report's targets take it) that finished, whose llama.cpp type was run (the bench's unit records, with the
    path of the bundle each ran)."""
    out, seen = [], set()
    for graphs in ("ort", "portable"):
        for u in units:
            prec = u.get("precision")
            ok = (u.get("kind") == "ours" and u.get("backend") == "ort-cpu" and u.get("preset") == "paper"
                  and u.get("graphs") == graphs and "error" not in u and "skipped" not in u)
            if not ok or prec in seen or PAIRINGS.get(prec) not in llamacpp_types or not u.get("bundle"):
                continue
            seen.add(prec)
            out.append({"precision": prec, "graphs": graphs, "gguf": PAIRINGS[prec], "bundle": u["bundle"]})
    return out


def interleave(ours: Callable[[], float], peer: Callable[[], float], probe: Callable[[], float],
               rounds: int) -> list[dict]:
    """`rounds` rounds of OURS and PEER (seconds per token each), OURS first in even rounds and PEER first in
    odd ones, with PROBE (bytes/s) just before and just after each OURS."""
    out = []
    for r in range(rounds):
        rec = {"round": r, "first": "ours" if r % 2 == 0 else "peer"}

        def time_ours():
            rec["bandwidth_before"] = probe()
            rec["ours_s"] = ours()
            rec["bandwidth_after"] = probe()

        def time_peer():
            rec["peer_s"] = peer()
        for step in ((time_ours, time_peer) if r % 2 == 0 else (time_peer, time_ours)):
            step()
        rec["ratio"] = rec["ours_s"] / rec["peer_s"]
        out.append(rec)
    return out


def summary(rounds: list[dict]) -> dict:
    """Medians and ranges of the rounds' figures (the report's row of a pairing)."""
    ratios = [r["ratio"] for r in rounds]
    bws = [b for r in rounds for b in (r["bandwidth_before"], r["bandwidth_after"])]
    return {"ratio_median": float(np.median(ratios)), "ratio_min": min(ratios),
            "ratio_max": max(ratios), "rounds_at_most_1": sum(x <= 1.0 for x in ratios),
            "ours_s_median": float(np.median([r["ours_s"] for r in rounds])),
            "peer_s_median": float(np.median([r["peer_s"] for r in rounds])),
            "bandwidth_min": min(bws), "bandwidth_max": max(bws)}


def _ours_timer(rt, new_tokens: int, repeats: int) -> Callable[[], float]:
    """Seconds per token after the first of `repeats` greedy captions of one random image (the median)."""
    dt = rt.bundle.float_dtype
    P = rt.cfg.image.image_size
    pixels = np.random.default_rng(0).uniform(-1, 1, (3, P, P)).astype(dt)

    def once() -> float:
        stream = rt.caption_stream([pixels], max_new_tokens=new_tokens, temperature=0.0)
        next(stream)
        t1 = time.perf_counter()
        n = 1 + sum(1 for _ in stream)
        if n < 2:
            raise RuntimeError("the caption stopped at its first token (eos): no per-token figure")
        return (time.perf_counter() - t1) / (n - 1)

    return lambda: float(np.median([once() for _ in range(repeats)]))


def _peer_timer(cmd: list[str]) -> Callable[[], float]:
    from .llamacpp import parse_bench_json

    def once() -> float:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
        (dec,) = [t for t in parse_bench_json(proc.stdout) if t["kind"] == "decode"]
        return float(np.median(dec["seconds"]))

    return once


def run_unit(spec: dict, echo=print) -> dict:
    """The worker's `interleave` unit: SPEC has pairs (plan_pairs), rounds, work, prompt_len, new_tokens,
    repeats (ours and llama-bench's -r per round), warmup, threads."""
    from unifork_rt.runtime.pipeline import UniForkRuntime

    from . import llamacpp, models, roofline

    work = Path(spec["work"])
    tools = llamacpp.ensure_built(work, echo=echo)
    folder = models.peer_qwen_folder(work)
    probe = roofline.bandwidth_probe(threads=spec["threads"])
    out = []
    for pair in spec["pairs"]:
        model = llamacpp.ensure_gguf(work, tools, folder, pair["gguf"], spec["threads"])
        cmd = llamacpp.decode_cmd(tools, model, spec["threads"], spec["repeats"], spec["prompt_len"])
        rt = UniForkRuntime(pair["bundle"], backend="ort-cpu", verify=False, pool="shared")
        try:
            ours = _ours_timer(rt, spec["new_tokens"], spec["repeats"])
            for _ in range(spec["warmup"]):
                ours()
            echo(f"[interleave] {pair['precision']} / llama.cpp {pair['gguf']}: {spec['rounds']} rounds")
            rounds = interleave(ours, _peer_timer(cmd), probe, spec["rounds"])
        finally:
            rt.close()
        out.append({**pair, "peer_command": " ".join(cmd), "rounds": rounds, **summary(rounds)})
    return {"pairs": out, "new_tokens": spec["new_tokens"], "prompt_len": spec["prompt_len"],
            "threads": spec["threads"], "repeats": spec["repeats"]}
