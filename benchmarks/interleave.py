"""Ours and the peers round by round: the caption decode at each precision pairing, interleaved.

This host's memory bandwidth moves between states from one minute to the next (about 36 and 63-68 GB/s on
the 2-core EPYC of docs/BENCHMARKS.md, for every buffer at once, for seconds to minutes). Our unit and a
peer's unit of the same precision, timed minutes apart, can each catch either state, so their ratio says as
much about the minutes as about the engines. Here each round times ours and the pairing's peers (llama.cpp's
llama-bench, onnxruntime-genai) one right after the other, with a bandwidth probe just before and just after
our timing; ours goes first in even rounds and last in odd ones:

    round r:  probe, ours (captions of new_tokens tokens: ms per token after the first), probe
              llama-bench decode at the prompt's depth (its own warm-up run, then `repeats` runs)
              onnxruntime-genai: prompt, then new_tokens tokens (a warm-up generation, then `repeats`)

Per round and peer: ours / the peer (ms per token); and our figure's share of its bandwidth bound at the
higher of the two probes beside it (the report computes it; a higher bandwidth would lower the share, so the
choice never flatters it). The report gives the medians over the rounds, and each round.

Ours is the whole caption pipeline's per-token figure, as in the main table (the decode steps, the sampling,
the embedding lookups); the peers' are their units' own measurements (llama-bench `-p 0 -n 64 -d PROMPT`;
genai's generate_next_token after the prompt, as peers.run_genai). Runs in a worker process of its own
(benchmarks/worker.py), after the peers: one of our runtimes loaded at a time; each peer a child process per
round (its model loaded again each time: page-cached, and outside what it times).
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

# our precision -> the peers' precision it is compared with (issue 16's pairings; int8-dynamic answers the
# int8 pairing too)
PAIRINGS = {"fp32": {"llamacpp": "f32", "genai": "fp32"}, "int8": {"llamacpp": "q8_0", "genai": "int8"},
            "int8-dynamic": {"llamacpp": "q8_0", "genai": "int8"}, "int4": {"llamacpp": "q4_0", "genai": "int4"}}


def plan_pairs(units: list[dict]) -> list[dict]:
    """The pairings to interleave, from the bench's unit records: each of our ort-cpu paper units that finished
    (the `--graphs ort` one where both ran, as the report's targets take it; with the path of the bundle it ran),
    with the peers of its pairing whose units finished (llamacpp, genai)."""
    ran = {(u.get("name"), u.get("precision")) for u in units
           if u.get("kind") == "peer" and "per_token" in u and "error" not in u}
    out, seen = [], set()
    for graphs in ("ort", "portable"):
        for u in units:
            prec = u.get("precision")
            ok = (u.get("kind") == "ours" and u.get("backend") == "ort-cpu" and u.get("preset") == "paper"
                  and u.get("graphs") == graphs and "error" not in u and "skipped" not in u and u.get("bundle"))
            peers = {n: p for n, p in PAIRINGS.get(prec, {}).items() if (n, p) in ran}
            if not ok or prec in seen or not peers:
                continue
            seen.add(prec)
            out.append({"precision": prec, "graphs": graphs, "bundle": u["bundle"], "peers": peers})
    return out


def interleave(ours: Callable[[], float], peers: dict[str, Callable[[], float]], probe: Callable[[], float],
               rounds: int) -> list[dict]:
    """`rounds` rounds of OURS and each of PEERS (seconds per token), OURS first in even rounds and last in odd
    ones, with PROBE (bytes/s) just before and just after each OURS."""
    out = []
    for r in range(rounds):
        rec = {"round": r, "ours_first": r % 2 == 0, "peer_s": {}}

        def time_ours():
            rec["bandwidth_before"] = probe()
            rec["ours_s"] = ours()
            rec["bandwidth_after"] = probe()

        def time_peer(name, fn):
            rec["peer_s"][name] = fn()

        steps = [functools.partial(time_peer, name, fn) for name, fn in peers.items()]
        for step in ([time_ours, *steps] if r % 2 == 0 else [*steps, time_ours]):
            step()
        rec["ratio"] = {name: rec["ours_s"] / s for name, s in rec["peer_s"].items()}
        out.append(rec)
    return out


def summary(rounds: list[dict]) -> dict:
    """Medians and ranges of the rounds' figures, per peer (the report's rows of a pairing)."""
    bws = [b for r in rounds for b in (r["bandwidth_before"], r["bandwidth_after"])]
    per_peer = {}
    for name in rounds[0]["ratio"]:
        ratios = [r["ratio"][name] for r in rounds]
        per_peer[name] = {"ratios": ratios, "ratio_median": float(np.median(ratios)), "ratio_min": min(ratios),
                          "ratio_max": max(ratios),
                          "peer_s_median": float(np.median([r["peer_s"][name] for r in rounds]))}
    return {"by_peer": per_peer, "ours_s_median": float(np.median([r["ours_s"] for r in rounds])),
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


def _child_timer(cmd: list[str], parse: Callable[[str], float]) -> Callable[[], float]:
    """A peer timed in a child process: CMD's stdout through PARSE (seconds per token)."""
    def once() -> float:
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
        return parse(proc.stdout)

    return once


def _llama_seconds(stdout: str) -> float:
    from .llamacpp import parse_bench_json

    (dec,) = [t for t in parse_bench_json(stdout) if t["kind"] == "decode"]
    return float(np.median(dec["seconds"]))


def genai_cmd(model_dir: Path, prompt_len: int, new_tokens: int, repeats: int) -> list[str]:
    """This module as a child process: onnxruntime-genai's median seconds per token (peers.run_genai), as JSON."""
    return [sys.executable, "-m", "unifork_rt.benchmarks.interleave", "genai", str(model_dir), str(prompt_len),
            str(new_tokens), str(repeats)]


def run_unit(spec: dict, echo=print) -> dict:
    """The worker's `interleave` unit: SPEC has pairs (plan_pairs), rounds, work, prompt_len, new_tokens,
    repeats (per round: our captions, llama-bench's -r, genai's generations), warmup, threads."""
    from unifork_rt.runtime.pipeline import UniForkRuntime

    from . import roofline

    work = Path(spec["work"])
    probe = roofline.bandwidth_probe(threads=spec["threads"])
    commands = {}
    out = []
    for pair in spec["pairs"]:
        peers, cmds = {}, {}
        for name, prec in pair["peers"].items():
            if name == "llamacpp":
                from . import llamacpp, models

                tools = llamacpp.ensure_built(work, echo=echo)
                model = llamacpp.ensure_gguf(work, tools, models.peer_qwen_folder(work), prec, spec["threads"])
                cmds[name] = llamacpp.decode_cmd(tools, model, spec["threads"], spec["repeats"], spec["prompt_len"])
                peers[name] = _child_timer(cmds[name], _llama_seconds)
            elif name == "genai":
                cmds[name] = genai_cmd(work / f"peer-genai-{prec}", spec["prompt_len"], spec["new_tokens"],
                                       spec["repeats"])
                peers[name] = _child_timer(cmds[name], lambda text: json.loads(text.strip().splitlines()[-1]))
            commands[f"{name} {prec}"] = " ".join(cmds[name])
        rt = UniForkRuntime(pair["bundle"], backend="ort-cpu", verify=False, pool="shared")
        try:
            ours = _ours_timer(rt, spec["new_tokens"], spec["repeats"])
            for _ in range(spec["warmup"]):
                ours()
            echo(f"[interleave] {pair['precision']} / {', '.join(f'{n} {p}' for n, p in pair['peers'].items())}: "
                 f"{spec['rounds']} rounds")
            rounds = interleave(ours, peers, probe, spec["rounds"])
        finally:
            rt.close()
        out.append({**pair, "rounds": rounds, **summary(rounds)})
    return {"pairs": out, "commands": commands, "new_tokens": spec["new_tokens"], "prompt_len": spec["prompt_len"],
            "threads": spec["threads"], "repeats": spec["repeats"]}


def main(argv: list[str]) -> int:
    if argv[:1] == ["genai"] and len(argv) == 5:
        from .peers import run_genai

        res = run_genai(Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]), warmup=1)
        print(json.dumps(res["per_token"]["median"]))
        return 0
    print("usage: python -m unifork_rt.benchmarks.interleave genai MODEL_DIR PROMPT_LEN NEW_TOKENS REPEATS",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
