"""The bench's interleaved comparison with the peers (benchmarks/interleave.py): the order of a round's
timings and probes, the pairings it takes, one worker unit per pairing, the report's rows, shares and table
(by hand), the genai child's entry point, and the worker unit end to end on the micro bundle with a fake
llama-bench and a stand-in genai child (llama.cpp's real build takes 5-20 minutes; genai needs its models)."""

from __future__ import annotations

import json
import stat
import sys
from pathlib import Path

import numpy as np
import pytest

from unifork_rt.benchmarks import interleave, llamacpp, models, report, roofline
from unifork_rt.config import preset


def test_rounds_time_ours_beside_each_peer_alternating_and_probe_beside_each():
    log = []
    # ours in the order taken: beside llama.cpp then genai in round 0, genai then llama.cpp in round 1, ...
    t = {"ours": iter([0.030, 0.036, 0.020, 0.024, 0.040, 0.048]), "llamacpp": iter([0.025, 0.025, 0.050]),
         "genai": iter([0.060, 0.040, 0.080])}
    # the probes in the order they are taken, two around each timing
    bws = iter([58e9, 60e9, 58e9, 55e9, 36e9, 37e9, 36e9, 36e9,   # round 0: ours, llama.cpp, ours, genai
                36e9, 35e9, 37e9, 36e9, 36e9, 35e9, 36e9, 35e9,   # round 1: genai, ours, llama.cpp, ours
                66e9, 65e9, 64e9, 66e9, 65e9, 64e9, 65e9, 50e9])  # round 2: the state moved during genai's timing

    def timer(name, it):
        def f():
            log.append(name)
            return next(it)
        return f
    ours = timer("ours", t["ours"])
    rounds = interleave.interleave(lambda: (ours(), [32, 32]), {n: timer(n, t[n]) for n in ("llamacpp", "genai")},
                                   timer("probe", bws), 3)
    p = "probe"
    assert log == [p, "ours", p, p, "llamacpp", p, p, "ours", p, p, "genai", p,  # round 0: ours before each peer
                   p, "genai", p, p, "ours", p, p, "llamacpp", p, p, "ours", p,  # round 1: reversed, ours after
                   p, "ours", p, p, "llamacpp", p, p, "ours", p, p, "genai", p]
    assert [r["ours_first"] for r in rounds] == [True, False, True]
    # each peer against the timing of ours beside it
    assert [r["ratio"]["llamacpp"] for r in rounds] == pytest.approx([0.030 / 0.025, 0.024 / 0.025, 0.8])
    assert [r["ratio"]["genai"] for r in rounds] == pytest.approx([0.6, 0.5, 0.6])
    assert rounds[0]["ours"]["llamacpp"] == {"s": 0.030, "tokens": [32, 32], "bandwidth": [58e9, 60e9]}
    assert [r["ours"]["genai"]["s"] for r in rounds] == [0.036, 0.020, 0.048]
    assert rounds[0]["ours"]["genai"]["bandwidth"] == [36e9, 37e9]
    assert rounds[1]["ours"]["genai"]["bandwidth"] == [37e9, 36e9]
    assert rounds[0]["peer_bandwidth"] == {"llamacpp": [58e9, 55e9], "genai": [36e9, 36e9]}
    # the same state: all four probes of a peer and the timing of ours beside it within 15%; in round 0 genai
    # saw the state of ours beside it (36-37), not that of ours beside llama.cpp (58-60); in round 2 genai's
    # after-probe dropped to 50
    assert [r["same_state"] for r in rounds] == [{"llamacpp": True, "genai": True}, {"llamacpp": True, "genai": True},
                                                 {"llamacpp": True, "genai": False}]
    s = interleave.summary(rounds)
    q = s["by_peer"]["llamacpp"]
    assert q["ratio_median"] == pytest.approx(0.96) and (q["ratio_min"], q["ratio_max"]) == pytest.approx((0.8, 1.2))
    assert q["ratios"] == pytest.approx([1.2, 0.96, 0.8]) and q["peer_s_median"] == pytest.approx(0.025)
    assert q["ours_s_median"] == pytest.approx(0.030)  # of 0.030 0.024 0.040, ours beside llama.cpp
    g = s["by_peer"]["genai"]
    assert g["same_state"] == [True, True, False] and g["settled_ratios"] == pytest.approx([0.6, 0.5])
    assert g["settled_median"] == pytest.approx(0.55) and g["ours_s_median"] == pytest.approx(0.036)
    assert q["settled_ratios"] == pytest.approx([1.2, 0.96, 0.8]) and q["settled_median"] == pytest.approx(0.96)
    # the pairing's: every timing of ours, and the probes beside ours only
    assert s["ours_s_median"] == pytest.approx(0.033) and (s["bandwidth_min"], s["bandwidth_max"]) == (35e9, 66e9)
    inter = {"pairs": [{"rounds": rounds, "peers": {}, "by_peer": {}}, {"error": "boom"}]}
    assert interleave.best_bandwidth(inter) == 66e9 and len(interleave.bandwidths(inter)) == 24
    assert interleave.best_bandwidth({"pairs": [{"error": "boom"}]}) is None
    with pytest.raises(ValueError):
        interleave.summary([])


def test_one_peer_alternates_sides():
    log = []
    rounds = interleave.interleave(lambda: log.append("ours") or (0.01, [8]),
                                   {"llamacpp": lambda: log.append("llamacpp") or 0.02}, lambda: 50e9, 3)
    assert log == ["ours", "llamacpp", "llamacpp", "ours", "ours", "llamacpp"]
    assert [list(r["ours"]) for r in rounds] == [["llamacpp"]] * 3


def test_a_round_of_the_format_before_reads_as_one_timing_of_ours():
    """Rounds of e4db9a8 .. 0e05be1 (one caption of ours a round, beside all peers) still summarize."""
    old = {"round": 0, "ours_first": True, "bandwidth_before": 50e9, "bandwidth_after": 52e9, "ours_s": 0.02,
           "ours_tokens": [32], "peer_s": {"llamacpp": 0.025}, "peer_bandwidth": {"llamacpp": [51e9, 50e9]},
           "ratio": {"llamacpp": 0.8}, "same_state": {"llamacpp": True}}
    assert interleave.ours_timings(old) == {None: {"s": 0.02, "tokens": [32], "bandwidth": [50e9, 52e9]}}
    assert interleave.ours_beside(old, "llamacpp")["s"] == 0.02
    s = interleave.summary([old])
    assert s["by_peer"]["llamacpp"]["ours_s_median"] == 0.02 and (s["bandwidth_min"], s["bandwidth_max"]) == (
        50e9, 52e9)
    assert interleave.bandwidths({"pairs": [{"rounds": [old], "peers": {}, "by_peer": {}}]}) == [50e9, 52e9, 51e9,
                                                                                                  50e9]


def test_a_round_that_fails_is_recorded_and_the_others_stand():
    calls = iter([0.02, RuntimeError("llama-bench failed (status 1)"), 0.02])

    def peer():
        v = next(calls)
        if isinstance(v, Exception):
            raise v
        return v
    rounds = interleave.interleave(lambda: (0.01, [32]), {"llamacpp": peer}, lambda: 50e9, 3)
    assert [("error" in r) for r in rounds] == [False, True, False]
    assert rounds[1] == {"round": 1, "error": "RuntimeError: llama-bench failed (status 1)"}
    s = interleave.summary(rounds)
    assert s["rounds_failed"] == 1 and s["by_peer"]["llamacpp"]["ratios"] == pytest.approx([0.5, 0.5])
    with pytest.raises(ValueError, match="no round finished"):
        interleave.summary([rounds[1]])


def _unit(precision, graphs="ort", per_token=0.01, **kw):
    return {"kind": "ours", "preset": "paper", "backend": "ort-cpu", "precision": precision, "graphs": graphs,
            "bundle": f"/b/{precision}-{graphs}", "caption": {"pipeline": {"per_token": {"median": per_token}}},
            **kw}


def _peer(name, precision, **kw):
    return {"kind": "peer", "name": name, "precision": precision, "per_token": {"median": 0.02}, **kw}


def test_pairs_take_the_ort_units_that_ran_and_the_peers_that_ran():
    units = [_unit("fp32", "portable"), _unit("fp32"), _unit("int8", error="boom") | {"caption": {}},
             _unit("int8", "portable"), _unit("int8-dynamic"), _unit("int4"), {**_unit("int4"), "preset": "micro"},
             _peer("llamacpp", "f32"), _peer("llamacpp", "q8_0"), _peer("genai", "int8"),
             {"kind": "peer", "name": "genai", "precision": "fp32", "error": "oom"},
             {"kind": "peer", "name": "llamacpp", "precision": "q4_0", "skipped": "not built"}]
    pairs = interleave.plan_pairs(units)
    assert [(p["precision"], p["graphs"], p["bundle"], p["peers"]) for p in pairs] == [
        ("fp32", "ort", "/b/fp32-ort", {"llamacpp": "f32"}),  # genai fp32 failed
        ("int8-dynamic", "ort", "/b/int8-dynamic-ort", {"llamacpp": "q8_0", "genai": "int8"}),
        ("int8", "portable", "/b/int8-portable", {"llamacpp": "q8_0", "genai": "int8"})]  # its ort unit failed
    # int4: neither peer ran; a draw-only unit (no caption figure) and no peers: nothing to pair
    assert interleave.plan_pairs([{**u, "caption": {}} for u in units]) == []
    assert interleave.plan_pairs([u for u in units if u["kind"] == "ours"]) == []


def test_run_all_one_unit_per_pairing_a_failure_kept_and_saved():
    units = [_unit("fp32"), _unit("int4"), _peer("llamacpp", "f32"), _peer("llamacpp", "q4_0")]
    results = {"units": units, "notes": [], "machine_probes": [{"threads": 2, "buffer_mib": 512}]}
    calls, saved = [], []

    def run(spec, title):
        calls.append((spec, title))
        if spec["pair"]["precision"] == "int4":
            return {"error": "timed out after 60 s", "wall_s": 60}
        return {**spec["pair"], "rounds": [{"x": 1}], "commands": {}, "by_peer": {}}
    run.save_partial = lambda: saved.append(len(results["interleave"]["pairs"]))
    out = interleave.run_all(results, run, 3, Path("/w"), 297, 32, 1, 2)
    assert [c[1] for c in calls] == ["interleave fp32 / llamacpp f32", "interleave int4 / llamacpp q4_0"]
    spec = calls[0][0]
    assert (spec["unit"], spec["rounds"], spec["prompt_len"], spec["new_tokens"], spec["repeats"], spec["warmup"],
            spec["threads"]) == ("interleave", 3, 297, 32, 1, 1, 2)  # one run of each side a round
    assert spec["probe"] == {"threads": 2, "mib": 512}  # the run's machine probes'
    assert results["interleave"] is out and saved == [1, 2]
    assert out["pairs"][1] == {**calls[1][0]["pair"], "error": "timed out after 60 s"}
    # nothing to pair: a note, no unit
    results = {"units": units[:2], "notes": [], "machine_probes": []}
    assert interleave.run_all(results, run, 3, Path("/w"), 297, 32, 1, 2) is None
    assert "interleaved rounds not run" in results["notes"][0] and "interleave" not in results
    assert interleave.run_all({"units": units, "notes": []}, run, 0, Path("/w"), 297, 32, 1, 2) is None


def _round(r, bw_ours, ours_s, peers, same=True, old=False):
    """A finished round: ours beside each peer at OURS_S between the probes BW_OURS (OLD: the format before
    this one, one timing of ours a round)."""
    rec = {"round": r, "ours_first": r % 2 == 0, "peer_s": peers, "peer_bandwidth": {n: list(bw_ours) for n in peers},
           "ratio": {n: ours_s / v for n, v in peers.items()}, "same_state": {n: same for n in peers}}
    if old:
        return {**rec, "bandwidth_before": bw_ours[0], "bandwidth_after": bw_ours[1], "ours_s": ours_s}
    return {**rec, "ours": {n: {"s": ours_s, "tokens": [32], "bandwidth": list(bw_ours)} for n in peers}}


@pytest.mark.parametrize("old", [False, True], ids=["ours-beside-each-peer", "one-ours-a-round"])
def test_report_rows_shares_and_table(old):
    u = _unit("int4", caption={"prefill_tokens": 297, "max_seq": 512, "pipeline": {"per_token": {"median": 0.01}}})
    rounds = [_round(0, (40e9, 60e9), 0.010, {"llamacpp": 0.0125, "genai": 0.02}, old=old),
              _round(1, (36e9, 35e9), 0.012, {"llamacpp": 0.010, "genai": 0.015}, same=False, old=old),
              _round(2, (66e9, 64e9), 0.008, {"llamacpp": 0.009, "genai": 0.0125}, old=old),
              _round(3, (50e9, 50e9), 0.009, {"llamacpp": 0.010, "genai": 0.010}, old=old)]
    pair = {"precision": "int4", "graphs": "ort", "bundle": u["bundle"], "peers": {"llamacpp": "q4_0", "genai": "int4"},
            "commands": {"llamacpp": "llama-bench -m q4.gguf -p 0 -n 32 -d 297 -r 2", "genai": "python -m x genai"},
            "rounds": rounds, **interleave.summary(rounds)}
    failed = {"precision": "fp32", "graphs": "ort", "bundle": "/b/fp32-ort", "peers": {"llamacpp": "f32"},
              "error": "boom"}
    results = {"options": {"tasks": ["caption"]}, "units": [u], "interleave": {
        "pairs": [pair, failed], "new_tokens": 32, "prompt_len": 297, "repeats": 2}}
    for p in results["interleave"]["pairs"]:
        report._interleaved_shares(results, p)
    step = roofline.caption_decode_step(preset("paper"), "int4", 298)["total"].bytes  # ort graphs: prefill + 1
    each = [step / 60e9 / 0.010, step / 36e9 / 0.012, step / 66e9 / 0.008, step / 50e9 / 0.009]
    # a share per timing of ours: one beside each of the two peers, or one a round in the format before
    assert pair["shares"] == pytest.approx(each if old else [x for x in each for _ in range(2)])
    # a pairing with only 2 rounds in one memory state: not settled
    shaky = [_round(i, (50e9, 50e9), 0.01, {"llamacpp": 0.02}, same=i < 2, old=old) for i in range(4)]
    results["interleave"]["pairs"].append({"precision": "int8", "graphs": "ort", "bundle": "/b/int8-ort",
                                           "peers": {"llamacpp": "q8_0"}, "commands": {"llamacpp": "x"},
                                           "rounds": shaky, **interleave.summary(shaky)})
    rows = {t["target"]: t for t in report.targets(results)}
    # llama.cpp: 0.80 1.20* 0.89 0.90: the same-state rounds 0.80 0.89 0.90, all within: met at their median
    r = rows["int4_vs_llamacpp_q4_0_interleaved"]
    assert r["value"] == pytest.approx(0.8 / 0.9) and r["status"] == "met"
    assert "(3 of 4; 3 of them <= 1.0; all 4: median 0.89" in r["what"]
    # genai: 0.50 0.80* 0.64 0.90 at genai's 0.75: 0.50 0.64 0.90 count, 2 of 3 within: missed
    g = rows["int4_vs_genai_int4_interleaved"]
    assert g["limit"] == 0.75 and g["value"] == pytest.approx(0.64) and g["status"] == "missed"
    assert "(3 of 4; 2 of them <= 0.75" in g["what"]
    assert rows["int8_vs_llamacpp_q8_0_interleaved"]["status"] == "not settled"
    assert "value" not in rows["int8_vs_llamacpp_q8_0_interleaved"]
    assert not [t for t in rows if "paired" in t or t.startswith("fp32_vs_llamacpp_f32_inter")]  # aids, errors
    md = "\n".join(report._interleave_lines(results))
    print(md)
    assert ("| int4 (ort graphs) | llama.cpp (llama-bench) q4_0 | 4 | 9.5 | 10.0 | 0.80 1.20* 0.89 0.90 | 0.89 (3) | "
            "0.89 | 35.0-66.0 |") in md
    assert ("| int4 (ort graphs) | onnxruntime-genai int4 | 4 | 9.5 | 13.8 | 0.50 0.80* 0.64 0.90 | 0.64 (3) | "
            "0.72 |") in md
    assert "llamacpp q4_0: `llama-bench -m q4.gguf -p 0 -n 32 -d 297 -r 2`" in md
    assert "| fp32 (ort graphs) | llama.cpp (llama-bench) f32 | error: boom |" in md
    # the interleaved probes count toward the run's range in the header
    results.update(machine_probes=[{"bandwidth": 45e9}, {"bandwidth": 50e9}])
    # 4 rounds x 8 probes (4 x 6 in the format before), and 4 x 4 of the int8 pairing
    assert report._probe_range(results) == (f"the 2 probes, 45.0-50.0 GB/s; and {40 if old else 48} beside the "
                                            "interleaved rounds, 35.0-66.0 GB/s")


FAKE_BENCH = """#!{python}
import sys
arg = lambda a: sys.argv[sys.argv.index(a) + 1]
assert arg("-r") == "2"
if arg("-n") == "0":  # prefill: -p ROWS -n 0, reporting the ROWS it was asked
    assert "-d" not in sys.argv
    print({prefill!r}.replace('"n_prompt": 0', '"n_prompt": ' + arg("-p")))
else:
    assert arg("-d") == "{depth}"
    print({decode!r})
"""
DECODE = json.dumps([{"n_prompt": 0, "n_gen": 4, "n_depth": 20, "samples_ns": [4e6, 8e6], "build_commit": "x",
                      "n_threads": 2, "type_k": "f16", "type_v": "f16", "flash_attn": -1}])
PREFILL = json.dumps([{"n_prompt": 0, "n_gen": 0, "n_depth": 0, "samples_ns": [1e8, 3e8], "build_commit": "x",
                       "n_threads": 2, "type_k": "f16", "type_v": "f16", "flash_attn": -1}])


def test_the_worker_unit_runs_our_runtime_against_llama_bench(micro_bundle, tmp_path, monkeypatch):
    """The `interleave` worker unit end to end: the micro bundle through the runtime, a fake llama-bench
    (1.5 ms a token: the median of 1 and 2) at the depth asked, a stand-in for genai's child, a real bandwidth
    probe."""
    tools = llamacpp.tool_paths(tmp_path / "work")
    tools.bench.parent.mkdir(parents=True)
    tools.bench.write_text(FAKE_BENCH.format(python=sys.executable, depth=20, decode=DECODE, prefill=PREFILL))
    tools.bench.chmod(tools.bench.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(llamacpp, "ensure_built", lambda work, echo=print: tools)
    monkeypatch.setattr(models, "peer_qwen_folder", lambda work: tmp_path)
    monkeypatch.setattr(llamacpp, "ensure_gguf", lambda work, tools, folder, name, threads: tmp_path / f"{name}.gguf")
    # onnxruntime-genai's child: what it prints last is its median seconds per token
    genai = []
    monkeypatch.setattr(interleave, "genai_cmd", lambda *a: genai.append(a) or [
        sys.executable, "-c", "print('loading'); print(0.003)"])
    # ORT's pool per session: a shared one would stay for the rest of this test process
    spec = {"pair": {"precision": "fp32", "graphs": "portable", "peers": {"llamacpp": "f32", "genai": "fp32"},
                     "bundle": str(micro_bundle)}, "pool": "session", "probe": {"threads": 2, "mib": 8},
            "rounds": 2, "work": str(tmp_path / "work"), "prompt_len": 20, "new_tokens": 4, "repeats": 2,
            "warmup": 1, "threads": 2}
    pair = interleave.run_unit(spec, echo=lambda m: None)
    print(json.dumps(pair, indent=1))
    assert len(pair["rounds"]) == 2 and [r["ours_first"] for r in pair["rounds"]] == [True, False]
    for r in pair["rounds"]:
        assert r["peer_s"] == {"llamacpp": pytest.approx(0.0015), "genai": pytest.approx(0.003)}
        assert set(r["ours"]) == {"llamacpp", "genai"}  # a caption of ours beside each peer
        for name, peer_s in r["peer_s"].items():
            assert r["ratio"][name] == pytest.approx(r["ours"][name]["s"] / peer_s)
            # the micro model's caption tokens take well under a second each here (0 < x, not a speed test)
            assert 0 < r["ours"][name]["s"] < 1 and r["ours"][name]["tokens"][0] >= 2
            for bw in (*r["ours"][name]["bandwidth"], *r["peer_bandwidth"][name]):
                assert bw > 1e8
    # the same decode length as ours: -n is our new tokens
    assert f"-m {tmp_path / 'f32.gguf'} -p 0 -n 4 -d 20 -t 2 -r 2" in pair["commands"]["llamacpp"]
    assert genai == [(tmp_path / "work" / "peer-genai-fp32", 20, 4, 2)]  # its model, prompt, tokens, repeats
    # then the prefill, beside llama.cpp's (0.2 s: the median of 0.1 and 0.3) of as many tokens as our caption
    # sequence has rows (the image's cells, BOI, EOI, the prompt), in as many rounds
    from unifork_rt.runtime.pipeline import CAPTION_PROMPT, UniForkRuntime

    rt = UniForkRuntime(micro_bundle, backend="ort-cpu", verify=False, pool="session")
    rows = len(rt.caption_prefix_ids) + rt.cfg.image.num_cells + 2 + len(rt.encode_text(CAPTION_PROMPT))
    rt.close()
    pre = pair["prefill"]
    assert pre["peers"] == {"llamacpp": "f32"} and f"-m {tmp_path / 'f32.gguf'} -p {rows} -n 0 -t 2 -r 2" in \
        pre["commands"]["llamacpp"]
    assert len(pre["rounds"]) == 2 and [r["ours_first"] for r in pre["rounds"]] == [True, False]
    for r in pre["rounds"]:
        assert r["peer_s"] == {"llamacpp": pytest.approx(0.2)} and set(r["ours"]) == {"llamacpp"}
        assert r["ours"]["llamacpp"]["tokens"] == [rows] and 0 < r["ours"]["llamacpp"]["s"] < 5
        assert r["ratio"]["llamacpp"] == pytest.approx(r["ours"]["llamacpp"]["s"] / 0.2)
    assert pre["by_peer"]["llamacpp"]["peer_s_median"] == pytest.approx(0.2)


def test_prefill_that_cannot_start_leaves_the_decode_rounds(micro_bundle, tmp_path, monkeypatch):
    """Where the prefill rounds cannot start (here: llama.cpp's model), the pairing keeps its decode rounds and
    records the prefill's error; a pairing without llama.cpp has no prefill rounds."""
    def no_gguf(*args):
        raise RuntimeError("no gguf")

    monkeypatch.setattr(interleave, "_llama_model", no_gguf)
    monkeypatch.setattr(interleave, "peer_commands", lambda spec, peers, echo: {n: ["x"] for n in peers})
    monkeypatch.setattr(interleave, "_child_timer", lambda cmd, parse: lambda: 0.01)
    spec = {"pair": {"precision": "fp32", "graphs": "portable", "peers": {"llamacpp": "f32"},
                     "bundle": str(micro_bundle)}, "pool": "session", "probe": {"threads": 2, "mib": 8},
            "rounds": 2, "work": str(tmp_path), "prompt_len": 20, "new_tokens": 4, "repeats": 1, "warmup": 0,
            "threads": 2}
    pair = interleave.run_unit(spec, echo=lambda m: None)
    assert len(pair["rounds"]) == 2 and "by_peer" in pair  # the decode rounds stand
    assert pair["prefill"] == {"peers": {"llamacpp": "f32"}, "error": "RuntimeError: no gguf"}
    assert interleave.current_prefill({"pairs": [pair]}) == []
    md = "\n".join(report._prefill_lines({"pairs": [pair], "repeats": 1}))
    assert "| fp32 | llama.cpp f32 | error: RuntimeError: no gguf |||||||" in md
    spec["pair"]["peers"] = {"genai": "fp32"}
    assert "prefill" not in interleave.run_unit(spec, echo=lambda m: None)


def test_llama_benchs_prefill_must_be_as_long_as_ours():
    out = PREFILL.replace('"n_prompt": 0', '"n_prompt": 20')
    assert interleave._llama_seconds(out, "prefill", n_prompt=20) == pytest.approx(0.2)
    with pytest.raises(RuntimeError, match="prefilled 20 tokens where ours has 57"):
        interleave._llama_seconds(out, "prefill", n_prompt=57)


def test_prefill_rounds_give_their_own_target_and_table():
    """The interleaved prefill: a target by the decode's rule (the median of the same-state rounds, at least 3,
    3 in 4 within), a table of its own, and its probes count toward the run's best bandwidth; a prefill whose
    rounds all failed is shown as an error and gives no target."""
    u = _unit("fp32", caption={"prefill_tokens": 297, "max_seq": 512, "pipeline": {"per_token": {"median": 0.08}}})
    dec = [_round(i, (40e9, 40e9), 0.08, {"llamacpp": 0.1}) for i in range(3)]
    pre = [_round(0, (40e9, 41e9), 0.9, {"llamacpp": 1.0}), _round(1, (30e9, 70e9), 1.4, {"llamacpp": 1.0}, same=False),
           _round(2, (42e9, 40e9), 1.1, {"llamacpp": 1.0}), _round(3, (40e9, 40e9), 0.8, {"llamacpp": 1.0})]
    for r in pre:
        r["ours"]["llamacpp"]["tokens"] = [297]
    cmd = ["llama-bench", "-m", "f32.gguf", "-p", "297", "-n", "0", "-r", "1"]
    pair = {"precision": "fp32", "graphs": "ort", "bundle": u["bundle"], "peers": {"llamacpp": "f32"},
            "commands": {"llamacpp": "x"}, "rounds": dec, **interleave.summary(dec),
            "prefill": interleave.prefill_record(pre, "f32", cmd)}
    failed = {"precision": "int4", "graphs": "ort", "bundle": "/b/int4-ort", "peers": {"llamacpp": "q4_0"},
              "commands": {"llamacpp": "y"}, "rounds": dec, **interleave.summary(dec),
              "prefill": interleave.prefill_record([{"round": 0, "error": "RuntimeError: boom"}], "q4_0", cmd)}
    assert "boom" in failed["prefill"]["error"] and "by_peer" not in failed["prefill"]
    results = {"options": {"tasks": ["caption"]}, "units": [u], "interleave": {
        "pairs": [pair, failed], "new_tokens": 32, "prompt_len": 297, "repeats": 1}}
    rows = {t["target"]: t for t in report.targets(results)}
    # 0.90 1.40* 1.10 0.80: the same-state rounds 0.90 1.10 0.80, median 0.90, but 2 of 3 within: missed
    r = rows["fp32_prefill_vs_llamacpp_f32_interleaved"]
    assert r["value"] == pytest.approx(0.9) and r["limit"] == 1.0 and r["status"] == "missed"
    assert "caption prompt prefill (297 tokens" in r["what"] and "(3 of 4; 2 of them <= 1.0" in r["what"]
    assert "int4_prefill_vs_llamacpp_q4_0_interleaved" not in rows
    # 3 of 3 within once the slow round is faster
    pre[2]["ratio"]["llamacpp"] = 0.95
    pair["prefill"] = interleave.prefill_record(pre, "f32", cmd)
    assert {t["target"]: t for t in report.targets(results)}["fp32_prefill_vs_llamacpp_f32_interleaved"]["status"] \
        == "met"
    md = "\n".join(report._interleave_lines(results))
    print(md)
    assert "## Interleaved with llama.cpp: caption prefill, round by round" in md
    assert "| fp32 (ort graphs) | llama.cpp f32 | 4 | 1000.0 | 1000.0 | 0.90 1.40* 0.95 0.80 | 0.90 (3) |" in md
    assert "| int4 (ort graphs) | llama.cpp q4_0 | error: no round finished: RuntimeError: boom |" in md
    assert "llama.cpp f32: `llama-bench -m f32.gguf -p 297 -n 0 -r 1`" in md and "(297 rows" in md
    # the prefill's probes (70 GB/s in round 1) count toward the run's best, the decode's read 40
    assert interleave.best_bandwidth(results["interleave"]) == 70e9
    assert len(interleave.bandwidths(results["interleave"])) == 2 * 3 * 4 + 4 * 4


def test_the_genai_child_prints_its_median_or_says_why_not(monkeypatch, capsys):
    from unifork_rt.benchmarks import peers

    got = []
    monkeypatch.setattr(peers, "run_genai", lambda *a, **kw: got.append((a, kw)) or {"per_token": {"median": 0.0123}})
    assert interleave.main(["genai", "/m", "297", "32", "2"]) == 0
    assert capsys.readouterr().out.strip() == "0.0123" and got == [((Path("/m"), 297, 32, 2), {"warmup": 1})]
    assert interleave.PARSERS["genai"]("a warning\n0.0123\n") == 0.0123
    monkeypatch.setattr(peers, "run_genai", lambda *a, **kw: {"ttft": {}})
    assert interleave.main(["genai", "/m", "297", "32", "2"]) == 1 and "first token" in capsys.readouterr().err
    assert interleave.main([]) == 2 and "usage" in capsys.readouterr().err


def test_the_probes_keep_their_keys_and_the_short_probe_reads_the_same_ones():
    """measure_machine's bandwidth is the best of its probes (read, copy, GEMV and, where our library runs, the
    4-stream read); bandwidth_probe takes the same stream probes (no GEMV) on a buffer of its own."""
    m = roofline.measure_machine(mib=8, repeats=1)
    assert {"read_bytes_per_s", "copy_bytes_per_s", "gemv_bytes_per_s"} <= set(m["probes"])
    assert m["bandwidth"] == max(m["probes"].values()) and (m["threads"], m["buffer_mib"]) == (2, 8)
    a = np.ones(8 * 2**18, dtype=np.float32)
    keys = set(roofline._stream_probes(a, np.empty_like(a), 2, 1, roofline._read_streams_fn()))
    assert keys == set(m["probes"]) - {"gemv_bytes_per_s"}
    assert roofline.bandwidth_probe(mib=8, repeats=1)() > 1e8


def test_the_runs_bound_takes_the_rounds_best_probe_where_it_read_more():
    from unifork_rt.benchmarks.cli import run_bound

    probes = [{"bandwidth": 45e9, "gemm_flops_per_s": 1e11}, {"bandwidth": 60e9, "gemm_flops_per_s": 2e11}]
    r = [{"ours": {"llamacpp": {"s": 0.01, "bandwidth": [50e9, 66e9]}}, "peer_bandwidth": {"llamacpp": [61e9, 62e9]}}]
    inter = {"pairs": [{"rounds": r, "peers": {"llamacpp": "f32"}, "by_peer": {}}]}
    best = run_bound(probes, inter)
    assert best["bandwidth"] == 66e9 and best["machine_probe_bandwidth"] == 60e9 and best["gemm_flops_per_s"] == 2e11
    r[0]["ours"]["llamacpp"]["bandwidth"][1], r[0]["peer_bandwidth"] = 55e9, {"llamacpp": [59e9, 58e9]}  # all < 60
    assert run_bound(probes, inter) is probes[1] and run_bound(probes, None) is probes[1]


def test_a_first_version_report_still_reads():
    """bench.json of the interleave's first version (fc4ff05: llama.cpp only, one probe pair per round) is still
    analysed and rendered: its pairings are listed, not read."""
    results = json.loads((Path(__file__).parents[1] / "docs/results/bench/2026-12-05-interleave/full1/bench.json")
                         .read_text())
    report.analyse(results)
    md = report.markdown(results)
    assert "written by an earlier version of the bench" in md
    assert not [t for t in results["targets"] if t["target"].endswith("_interleaved")]


def test_each_peers_row_shows_ours_beside_it():
    """The table's ours column is the median of the timings of ours beside that peer, not of the round's."""
    rounds = [{"round": i, "ours_first": i % 2 == 0, "peer_s": {"llamacpp": 0.02, "genai": 0.04},
               "ours": {"llamacpp": {"s": 0.010 + i * 1e-3, "tokens": [32], "bandwidth": [50e9, 50e9]},
                        "genai": {"s": 0.030 + i * 1e-3, "tokens": [32], "bandwidth": [50e9, 50e9]}},
               "peer_bandwidth": {"llamacpp": [50e9, 50e9], "genai": [50e9, 50e9]}} for i in range(3)]
    for r in rounds:
        r["ratio"] = {n: r["ours"][n]["s"] / v for n, v in r["peer_s"].items()}
        r["same_state"] = {n: True for n in r["peer_s"]}
    pair = {"precision": "int4", "graphs": "ort", "bundle": "/b/int4-ort", "peers": {"llamacpp": "q4_0", "genai": "int4"},
            "commands": {"llamacpp": "x", "genai": "y"}, "rounds": rounds, **interleave.summary(rounds)}
    md = "\n".join(report._interleave_lines({"interleave": {"pairs": [pair], "new_tokens": 32, "prompt_len": 297,
                                                                 "repeats": 1}}))
    assert "| int4 (ort graphs) | llama.cpp (llama-bench) q4_0 | 3 | 11.0 | 20.0 | 0.50 0.55 0.60 |" in md
    assert "| int4 (ort graphs) | onnxruntime-genai int4 | 3 | 31.0 | 40.0 | 0.75 0.78 0.80 |" in md
    assert "right beside a caption of ours of its own" in md and "ours ms/token beside it (median)" in md


def test_a_report_of_the_format_before_keeps_its_own_wording_and_figures():
    """full4 (0e05be1's code: one caption of ours a round) re-analysed: the same rows as its own bench.md, and the
    text says how those rounds were taken."""
    here = Path(__file__).parents[1] / "docs/results/bench/2026-12-05-interleave/full4"
    results = json.loads((here / "bench.json").read_text())
    report.analyse(results)
    md = "\n".join(report._interleave_lines(results))
    own = (here / "bench.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| fp32") or line.startswith("| int")]
    # the same-state median was bold in tables before session 39 (bold reads "missed" elsewhere in the docs)
    assert len(rows) >= 4 and all(row in own.replace("**", "") for row in rows)
    assert "one right after the other (ours first in even rounds, last in odd ones)" in md
    assert "beside each peer" not in md and "ours ms/token (median)" in md
