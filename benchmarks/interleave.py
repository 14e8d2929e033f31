"""Ours and the peers round by round: the caption decode at each precision pairing, interleaved, then the
caption prefill beside llama.cpp's.

This host's memory bandwidth moves between states from one minute to the next (about 36 and 63-68 GB/s on
the 2-core EPYC of docs/BENCHMARKS.md, for every buffer at once, for seconds to minutes). Our unit and a
peer's unit of the same precision, timed minutes apart, can each catch either state, so their ratio says as
much about the minutes as about the engines. Here each round times ours right beside each of the pairing's peers
(llama.cpp's llama-bench, onnxruntime-genai), each timing between two bandwidth probes: one caption of ours per
peer, ours before the peer in even rounds and after it in odd ones, the peers in reverse order then:

    even round:  [probe, ours, probe] [probe, llama.cpp, probe]  [probe, ours, probe] [probe, genai, probe]
    odd round:   [probe, genai, probe] [probe, ours, probe]  [probe, llama.cpp, probe] [probe, ours, probe]

Until 0e05be1 a round timed ours once, first or last, so that with two peers the middle one (llama.cpp) was
always next to ours and genai never was: genai's pairs settled less often. bench.json of that format still reads
(ours_timings).

    ours:      `repeats` (1) greedy captions of new_tokens tokens: ms per token after the first
    llama.cpp: llama-bench -p 0 -n NEW_TOKENS -d PROMPT -r REPEATS (its own warm-up run first)
    genai:     a warm-up generation, then `repeats` of new_tokens tokens after the prompt

Short rounds (one run of each side) and many of them: the memory state moves every 10-60 s on the EPYC host,
and only rounds in which ours and a peer saw the same state count toward the verdict.

Per round and peer: ours beside it / the peer, and whether the two saw the same memory state (all four probes,
ours' and the peer's, within 15% of each other; the verdict counts only those rounds: report.targets). Per timing
of ours: its share of the caption step's bandwidth bound at the higher of the two probes beside ours (the report
computes it; a reading aid). A round that fails is recorded and the others stand. The probe is the bench's own
stream probes (roofline.bandwidth_probe: the same buffer, threads and repeats as the run's machine probes, without
the GEMV), and every reading also counts toward the run's best bandwidth, the bound of the report's shares.

Ours is the whole caption pipeline's per-token figure, as in the main table (stages.caption_timed); each peer
runs in a child process per round, its model loaded again each time (page-cached, and outside what it times).

Prefill (issue 16: ours at most llama.cpp's, a target that units minutes apart read 0.49x in one run and 1.29x
in another with the same code): after a pairing's decode rounds, as many rounds of the same order and rule with
llama.cpp alone:

    ours:      `repeats` prefills of the caption sequence (trunk + und_branch over the image and the prompt, after
               the image encode, as the bench's prefill stage: stages.caption), their median
    llama.cpp: llama-bench -p ROWS -n 0 -r REPEATS (ROWS: our sequence's length, checked against the n_prompt it
               reports; its own warm-up run first)
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Callable

import numpy as np

from .measure import CHILD_TIMEOUT_S, run_child

# our precision -> the peers' precision it is compared with (issue 16's pairings; int8-dynamic answers the
# int8 pairing too)
PAIRINGS = {"fp32": {"llamacpp": "f32", "genai": "fp32"}, "int8": {"llamacpp": "q8_0", "genai": "int8"},
            "int8-dynamic": {"llamacpp": "q8_0", "genai": "int8"}, "int4": {"llamacpp": "q4_0", "genai": "int4"}}
SAME_STATE = 1.15  # the four probes beside ours and a peer within this factor of each other: the same memory state


def plan_pairs(units: list[dict]) -> list[dict]:
    """The pairings to interleave, from the bench's unit records: each of our ort-cpu paper units whose caption
    gave a per-token figure (the `--graphs ort` one where both ran, as the report's targets take it; with the
    path of the bundle it ran), with the peers of its pairing whose units gave one (llamacpp, genai)."""
    ran = {(u.get("name"), u.get("precision")) for u in units if u.get("kind") == "peer" and "per_token" in u}
    out, seen = [], set()
    for graphs in ("ort", "portable"):
        for u in units:
            prec = u.get("precision")
            ok = (u.get("kind") == "ours" and u.get("backend") == "ort-cpu" and u.get("preset") == "paper"
                  and u.get("graphs") == graphs and u.get("bundle")
                  and (u.get("caption") or {}).get("pipeline", {}).get("per_token"))
            peers = {n: p for n, p in PAIRINGS.get(prec, {}).items() if (n, p) in ran}
            if not ok or prec in seen or not peers:
                continue
            seen.add(prec)
            out.append({"precision": prec, "graphs": graphs, "bundle": u["bundle"], "peers": peers})
    return out


def interleave(ours: Callable[[], tuple[float, list[int]]], peers: dict[str, Callable[[], float]],
               probe: Callable[[], float], rounds: int) -> list[dict]:
    """`rounds` rounds of each of PEERS (seconds per token) right beside a timing of OURS of its own (seconds per
    token, tokens per caption), each timing between two PROBEs (bytes/s): peer by peer, ours then the peer in even
    rounds; in odd ones the peers in reverse, each before ours. A round that fails is recorded with its error and
    the next one runs."""
    out = []
    for r in range(rounds):
        first = r % 2 == 0
        rec = {"round": r, "ours_first": first, "ours": {}, "peer_s": {}, "peer_bandwidth": {}}

        def time_ours(name):
            before = probe()
            s, tokens = ours()
            rec["ours"][name] = {"s": s, "tokens": tokens, "bandwidth": [before, probe()]}

        def time_peer(name):
            before = probe()
            rec["peer_s"][name] = peers[name]()
            rec["peer_bandwidth"][name] = [before, probe()]

        try:
            for name in (list(peers) if first else list(peers)[::-1]):
                for step in ((time_ours, time_peer) if first else (time_peer, time_ours)):
                    step(name)
        except Exception as e:  # noqa: BLE001 - recorded; the rounds before and after stand
            out.append({"round": r, "error": f"{type(e).__name__}: {e}"[:2000]})
            continue
        rec["ratio"] = {name: rec["ours"][name]["s"] / s for name, s in rec["peer_s"].items()}
        # the same memory state only where all four probes of the pair (ours' and the peer's, before and after)
        # are within SAME_STATE of each other: a state change inside either timing marks the round
        rec["same_state"] = {name: _one_state(rec["ours"][name]["bandwidth"] + bw)
                             for name, bw in rec["peer_bandwidth"].items()}
        out.append(rec)
    return out


def _one_state(bws: list[float]) -> bool:
    return max(bws) <= SAME_STATE * min(bws)


def ours_timings(rnd: dict) -> dict[str | None, dict]:
    """Our timings in a finished round, by the peer each was beside: {s, tokens, bandwidth: [before, after]}. A
    round of the format before this one (e4db9a8 .. 0e05be1: one timing of ours a round) gives it under None."""
    if "ours" in rnd:
        return rnd["ours"]
    return {None: {"s": rnd["ours_s"], "tokens": rnd.get("ours_tokens"),
                   "bandwidth": [rnd["bandwidth_before"], rnd["bandwidth_after"]]}}


def ours_beside(rnd: dict, name: str) -> dict:
    """Our timing that a peer's timing of a round is compared with."""
    timings = ours_timings(rnd)
    return timings.get(name) or timings[None]


def summary(rounds: list[dict]) -> dict:
    """Medians and ranges of the rounds' figures, per peer (the report's rows of a pairing); rounds that failed
    are counted, not summarized. The verdict's figures are over the settled rounds: those whose four probes
    agree (interleave)."""
    done = [r for r in rounds if "error" not in r]
    if not done:
        raise ValueError("no round finished: " + "; ".join(r.get("error", "") for r in rounds)[:2000])
    bws = [b for r in done for t in ours_timings(r).values() for b in t["bandwidth"]]
    per_peer = {}
    for name in done[0]["ratio"]:
        ratios = [r["ratio"][name] for r in done]
        settled = [r["ratio"][name] for r in done if r["same_state"][name]]
        per_peer[name] = {"ratios": ratios, "ratio_median": float(np.median(ratios)), "ratio_min": min(ratios),
                          "ratio_max": max(ratios), "same_state": [r["same_state"][name] for r in done],
                          "settled_ratios": settled,
                          "settled_median": float(np.median(settled)) if settled else None,
                          "ours_s_median": float(np.median([ours_beside(r, name)["s"] for r in done])),
                          "peer_s_median": float(np.median([r["peer_s"][name] for r in done]))}
    return {"by_peer": per_peer,
            "ours_s_median": float(np.median([t["s"] for r in done for t in ours_timings(r).values()])),
            "rounds_failed": len(rounds) - len(done), "bandwidth_min": min(bws), "bandwidth_max": max(bws)}


def current(inter: dict | None) -> list[dict]:
    """The pairings of INTER that this code reads: those that finished (rounds) in the format since e4db9a8
    (peers, every timing probed). A bench.json of the first version (fc4ff05: llama.cpp only, `gguf`) keeps its
    own bench.md; its pairings are left out here."""
    return [p for p in (inter or {}).get("pairs", []) if "rounds" in p and "peers" in p and "by_peer" in p]


def bandwidths(inter: dict | None) -> list[float]:
    """Every bandwidth the probes of the interleaved rounds read (bytes/s), beside ours and beside the peers, in
    the decode rounds and the prefill ones."""
    rounds = [r for p in current(inter) for r in p["rounds"]]
    rounds += [r for _, q in current_prefill(inter) for r in q["rounds"]]
    return [b for r in rounds if "error" not in r
            for b in [*(b for t in ours_timings(r).values() for b in t["bandwidth"]),
                      *sum(r["peer_bandwidth"].values(), [])]]


def best_bandwidth(inter: dict | None) -> float | None:
    """The highest bandwidth any probe of the interleaved rounds read (None where none ran)."""
    return max(bandwidths(inter), default=None)


def _ours_timer(rt, new_tokens: int, repeats: int) -> Callable[[], tuple[float, list[int]]]:
    """(the median seconds per token after the first, the tokens of each) of `repeats` greedy captions of one random
    image; a caption that stops at its first token (eos) gives no figure and fails the round."""
    from .stages import caption_timed, random_pixels

    image = random_pixels(rt)[0]

    def timed() -> tuple[float, list[int]]:
        runs = [caption_timed(rt, image, new_tokens) for _ in range(repeats)]
        if any(each is None for _, _, each in runs):
            raise RuntimeError("the caption stopped at its first token (eos): no per-token figure")
        return float(np.median([each for _, _, each in runs])), [n for _, n, _ in runs]

    return timed


def _ours_prefill_timer(rt, repeats: int) -> tuple[Callable[[], tuple[float, list[int]]], int]:
    """(timer, rows): the timer gives (the median seconds of `repeats` caption prefills, [rows]): the trunk and
    und_branch over the caption sequence of one random image (after its encode, not timed), as the bench's prefill
    stage times it (stages.caption); rows: that sequence's length."""
    from .stages import caption_sequence, random_pixels

    x = caption_sequence(rt, random_pixels(rt))
    be = rt.backend
    caches, start = (be.new_cache("trunk", 1), be.new_cache("und_branch", 1)), np.zeros(1, dtype=np.int64)

    def timed() -> tuple[float, list[int]]:
        runs = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            rt.step(x, caches, 0, start, "und_branch")
            runs.append(time.perf_counter() - t0)
        return float(np.median(runs)), [x.shape[1]]

    return timed, int(x.shape[1])


def _child_timer(cmd: list[str], parse: Callable[[str], float], timeout: float = CHILD_TIMEOUT_S) -> Callable[[], float]:
    """A peer timed in a child process: CMD's stdout through PARSE (seconds per token). A child past TIMEOUT
    seconds is killed with anything it started, and its round recorded as failed."""
    def once() -> float:
        proc = run_child(cmd, timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed (status {proc.returncode}):\n{proc.stderr[-2000:]}")
        return parse(proc.stdout)

    return once


def _llama_seconds(stdout: str, kind: str = "decode", n_prompt: int | None = None) -> float:
    """llama-bench's JSON -> the median seconds of its one test of KIND (decode: per token; prefill: the prompt,
    which must be N_PROMPT tokens where given)."""
    from .llamacpp import parse_bench_json

    (test,) = [t for t in parse_bench_json(stdout) if t["kind"] == kind]
    if n_prompt is not None and test["n_prompt"] != n_prompt:
        raise RuntimeError(f"llama-bench prefilled {test['n_prompt']} tokens where ours has {n_prompt}: not the same "
                           "length")
    return float(np.median(test["seconds"]))


def genai_cmd(model_dir: Path, prompt_len: int, new_tokens: int, repeats: int) -> list[str]:
    """This module as a child process: onnxruntime-genai's median seconds per token (peers.run_genai), as JSON."""
    return [sys.executable, "-m", "unifork_rt.benchmarks.interleave", "genai", str(model_dir), str(prompt_len),
            str(new_tokens), str(repeats)]


def peer_commands(spec: dict, peers: dict[str, str], echo=print) -> dict[str, list[str]]:
    """The command line of each peer of a pairing (name -> precision), at the spec's prompt, tokens and repeats."""
    from . import llamacpp

    work, cmds = Path(spec["work"]), {}
    for name, prec in peers.items():
        if name == "llamacpp":
            tools, model = _llama_model(spec, prec, echo)
            cmds[name] = llamacpp.decode_cmd(tools, model, spec["threads"], spec["repeats"], spec["prompt_len"],
                                             tokens=spec["new_tokens"])
        elif name == "genai":
            cmds[name] = genai_cmd(work / f"peer-genai-{prec}", spec["prompt_len"], spec["new_tokens"],
                                   spec["repeats"])
        else:
            raise ValueError(f"no interleaved timing for peer {name!r}; valid: llamacpp, genai")
    return cmds


def _llama_model(spec: dict, prec: str, echo=print):
    """(llama.cpp's tools, the GGUF of PREC): built or converted into the spec's work folder where missing."""
    from . import llamacpp, models

    work = Path(spec["work"])
    tools = llamacpp.ensure_built(work, echo=echo)
    return tools, llamacpp.ensure_gguf(work, tools, models.peer_qwen_folder(work), prec, spec["threads"])


def prefill_command(spec: dict, gguf: str, rows: int, echo=print) -> list[str]:
    """llama-bench's prefill of a ROWS-token prompt (-p ROWS -n 0) of the GGUF type GGUF: as many tokens as our
    caption sequence has rows."""
    from . import llamacpp

    tools, model = _llama_model(spec, gguf, echo)
    return llamacpp.prefill_cmd(tools, model, spec["threads"], spec["repeats"], rows)


PARSERS = {"llamacpp": _llama_seconds, "genai": lambda text: float(json.loads(text.strip().splitlines()[-1]))}


def run_unit(spec: dict, echo=print) -> dict:
    """The worker's `interleave` unit, one pairing: SPEC has pair (plan_pairs), rounds, work, prompt_len,
    new_tokens, repeats (per round: our captions, llama-bench's -r, genai's generations), warmup, threads (the
    peers'), probe (bandwidth_probe's keywords: the run's machine probes'), pool (our runtime's ORT pool)."""
    from unifork_rt.runtime.pipeline import UniForkRuntime

    from . import roofline

    pair = spec["pair"]
    cmds = peer_commands(spec, pair["peers"], echo)
    peers = {name: _child_timer(cmd, PARSERS[name]) for name, cmd in cmds.items()}
    probe = roofline.bandwidth_probe(**spec["probe"])
    rt = UniForkRuntime(pair["bundle"], backend="ort-cpu", verify=False, pool=spec.get("pool", "shared"))
    try:
        ours = _ours_timer(rt, spec["new_tokens"], spec["repeats"])
        for _ in range(spec["warmup"]):
            ours()
        echo(f"[interleave] {pair['precision']} / {', '.join(f'{n} {p}' for n, p in pair['peers'].items())}: "
             f"{spec['rounds']} rounds")
        rounds = interleave(ours, peers, probe, spec["rounds"])
        # issue 16's prefill target, with llama.cpp's prefill right beside ours
        prefill = _prefill_rounds(spec, rt, probe, echo) if "llamacpp" in pair["peers"] else None
    finally:
        rt.close()
    return {**pair, "commands": {name: " ".join(cmd) for name, cmd in cmds.items()}, "rounds": rounds,
            **summary(rounds), **({"prefill": prefill} if prefill else {})}


def _prefill_rounds(spec: dict, rt, probe: Callable[[], float], echo=print) -> dict:
    """The pairing's prefill rounds beside llama-bench's prefill of as many tokens as our caption sequence has
    rows (prefill_record), or {peers, error} where they could not start: the decode rounds stand either way."""
    pair = spec["pair"]
    gguf = pair["peers"]["llamacpp"]
    try:
        ours, rows = _ours_prefill_timer(rt, spec["repeats"])
        cmd = prefill_command(spec, gguf, rows, echo)
        echo(f"[interleave] {pair['precision']} prefill ({rows} tokens) / llama.cpp {gguf}: {spec['rounds']} rounds")
        for _ in range(spec["warmup"]):
            ours()
        llama = _child_timer(cmd, lambda out: _llama_seconds(out, "prefill", n_prompt=rows))
        return prefill_record(interleave(ours, {"llamacpp": llama}, probe, spec["rounds"]), gguf, cmd)
    except Exception as e:  # noqa: BLE001 - recorded; the pairing's decode rounds stand
        return {"peers": {"llamacpp": gguf}, "error": f"{type(e).__name__}: {e}"[:2000]}


def prefill_record(rounds: list[dict], gguf: str, cmd: list[str]) -> dict:
    """A pairing's interleaved prefill rounds (ours: seconds for the caption sequence; llama.cpp: its prefill of
    as many tokens), with their summary, or the error where no round finished."""
    out = {"peers": {"llamacpp": gguf}, "commands": {"llamacpp": " ".join(cmd)}, "rounds": rounds}
    try:
        out.update(summary(rounds))
    except ValueError as e:
        out["error"] = str(e)
    return out


def prefill_rows(pre: dict) -> int:
    """The rows (tokens) of our caption sequence in a finished prefill record: those of its first finished round."""
    return next(r["ours"]["llamacpp"]["tokens"][0] for r in pre["rounds"] if "error" not in r)


def current_prefill(inter: dict | None) -> list[tuple[dict, dict]]:
    """(pairing, its prefill record) for the pairings of INTER (current) whose interleaved prefill finished."""
    return [(p, p["prefill"]) for p in current(inter) if "by_peer" in p.get("prefill", {})]


REPEATS = 1  # timed runs of each side per round: short rounds, so that more of them fall in one memory state


def run_all(results: dict, run, rounds: int, work: Path, prompt_len: int, new_tokens: int, warmup: int,
            threads: int, repeats: int = REPEATS) -> dict | None:
    """The bench's interleaved comparison: one worker unit per pairing (RUN: cli.Runner), so that a pairing
    that fails or times out leaves the others, each saved as it finishes (run.save_partial). Each round times
    `repeats` runs of each side (after the warm-ups: ours in the unit, llama-bench's own, genai's child's); the
    medians are over the rounds. None where there is nothing to pair; a note in RESULTS says why."""
    pairs = plan_pairs(results["units"]) if rounds else []
    if not pairs:
        if rounds:
            results["notes"].append("interleaved rounds not run: no ort-cpu paper unit with a caption figure and a "
                                    "llamacpp or genai peer of its pairing that gave one")
        return None
    machine = results["machine_probes"][0]
    out = {"pairs": [], "rounds": rounds, "new_tokens": new_tokens, "prompt_len": prompt_len, "repeats": repeats,
           "probe": {"threads": machine["threads"], "mib": machine["buffer_mib"]}}
    results["interleave"] = out
    for pair in pairs:
        spec = {"unit": "interleave", "pair": pair, "rounds": rounds, "work": str(work), "prompt_len": prompt_len,
                "new_tokens": new_tokens, "repeats": repeats, "warmup": warmup, "threads": threads,
                "probe": out["probe"]}
        res = run(spec, f"interleave {pair['precision']} / {', '.join(f'{n} {p}' for n, p in pair['peers'].items())}")
        out["pairs"].append(res if "by_peer" in res else {**pair, "error": res.get("error") or res.get("skipped")})
        run.save_partial()
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["genai"] and len(argv) == 5:
        from .peers import run_genai

        res = run_genai(Path(argv[1]), int(argv[2]), int(argv[3]), int(argv[4]), warmup=1)
        if "per_token" not in res:
            print("onnxruntime-genai stopped at its first token in every run: no per-token figure", file=sys.stderr)
            return 1
        print(json.dumps(res["per_token"]["median"]))
        return 0
    print("usage: python -m unifork_rt.benchmarks.interleave genai MODEL_DIR PROMPT_LEN NEW_TOKENS REPEATS",
          file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
