"""The bench's interleaved comparison with llama.cpp (benchmarks/interleave.py): the order of a round's
timings and probes, the pairings it takes, the report's rows and shares (by hand), and the worker unit end to
end on the micro bundle with a fake llama-bench (llama.cpp's real build takes 5-20 minutes)."""

from __future__ import annotations

import json
import stat
import sys

import pytest

from unifork_rt.benchmarks import interleave, llamacpp, models, report, roofline
from unifork_rt.config import preset


def test_rounds_alternate_and_probe_beside_ours():
    log = []
    t = {"ours": iter([0.030, 0.020, 0.040]), "llamacpp": iter([0.025, 0.025, 0.050]),
         "genai": iter([0.060, 0.040, 0.080])}
    bws = iter([40e9, 60e9, 36e9, 35e9, 66e9, 65e9])

    def timer(name, it):
        def f():
            log.append(name)
            return next(it)
        return f
    rounds = interleave.interleave(timer("ours", t["ours"]), {n: timer(n, t[n]) for n in ("llamacpp", "genai")},
                                   timer("probe", bws), 3)
    assert log == ["probe", "ours", "probe", "llamacpp", "genai",  # round 0: ours first
                   "llamacpp", "genai", "probe", "ours", "probe",  # round 1: ours last
                   "probe", "ours", "probe", "llamacpp", "genai"]
    assert [r["ours_first"] for r in rounds] == [True, False, True]
    assert [r["ratio"]["llamacpp"] for r in rounds] == pytest.approx([1.2, 0.8, 0.8])
    assert [r["ratio"]["genai"] for r in rounds] == pytest.approx([0.5, 0.5, 0.5])
    assert (rounds[1]["bandwidth_before"], rounds[1]["bandwidth_after"]) == (36e9, 35e9)
    s = interleave.summary(rounds)
    q = s["by_peer"]["llamacpp"]
    assert q["ratio_median"] == pytest.approx(0.8) and (q["ratio_min"], q["ratio_max"]) == pytest.approx((0.8, 1.2))
    assert q["ratios"] == pytest.approx([1.2, 0.8, 0.8]) and q["peer_s_median"] == pytest.approx(0.025)
    assert s["by_peer"]["genai"]["peer_s_median"] == pytest.approx(0.060)
    assert s["ours_s_median"] == pytest.approx(0.030) and (s["bandwidth_min"], s["bandwidth_max"]) == (35e9, 66e9)


def _unit(precision, graphs="ort", **kw):
    return {"kind": "ours", "preset": "paper", "backend": "ort-cpu", "precision": precision, "graphs": graphs,
            "bundle": f"/b/{precision}-{graphs}", **kw}


def _peer(name, precision, **kw):
    return {"kind": "peer", "name": name, "precision": precision, "per_token": {"median": 0.02}, **kw}


def test_pairs_take_the_ort_units_that_ran_and_the_peers_that_ran():
    units = [_unit("fp32", "portable"), _unit("fp32"), _unit("int8", error="boom"), _unit("int8", "portable"),
             _unit("int8-dynamic"), _unit("int4"), {**_unit("int4"), "preset": "micro"},
             _peer("llamacpp", "f32"), _peer("llamacpp", "q8_0"), _peer("genai", "int8"),
             _peer("genai", "fp32", error="oom"), {"kind": "peer", "name": "llamacpp", "precision": "q4_0",
                                                   "skipped": "not built"}]
    pairs = interleave.plan_pairs(units)
    assert [(p["precision"], p["graphs"], p["bundle"], p["peers"]) for p in pairs] == [
        ("fp32", "ort", "/b/fp32-ort", {"llamacpp": "f32"}),  # genai fp32 failed
        ("int8-dynamic", "ort", "/b/int8-dynamic-ort", {"llamacpp": "q8_0", "genai": "int8"}),
        ("int8", "portable", "/b/int8-portable", {"llamacpp": "q8_0", "genai": "int8"})]  # its ort unit failed
    # int4: neither peer ran; without peers there is nothing to pair
    assert interleave.plan_pairs([u for u in units if u["kind"] == "ours"]) == []


def test_report_gives_each_rounds_share_at_its_probes_and_the_median_ratios():
    u = _unit("int4", caption={"prefill_tokens": 297, "max_seq": 512})
    rounds = [{"round": 0, "ours_first": True, "bandwidth_before": 40e9, "bandwidth_after": 60e9, "ours_s": 0.010,
               "peer_s": {"llamacpp": 0.0125, "genai": 0.02}},
              {"round": 1, "ours_first": False, "bandwidth_before": 36e9, "bandwidth_after": 35e9, "ours_s": 0.012,
               "peer_s": {"llamacpp": 0.010, "genai": 0.015}},
              {"round": 2, "ours_first": True, "bandwidth_before": 66e9, "bandwidth_after": 64e9, "ours_s": 0.008,
               "peer_s": {"llamacpp": 0.009, "genai": 0.0125}}]
    for r in rounds:
        r["ratio"] = {n: r["ours_s"] / s for n, s in r["peer_s"].items()}
    pair = {"precision": "int4", "graphs": "ort", "bundle": u["bundle"], "peers": {"llamacpp": "q4_0", "genai": "int4"},
            "rounds": rounds, **interleave.summary(rounds)}
    results = {"options": {"tasks": ["caption"]}, "units": [u], "interleave": {
        "pairs": [pair], "new_tokens": 32, "prompt_len": 297, "repeats": 2}}
    report._interleaved_shares(results, pair)
    step = roofline.caption_decode_step(preset("paper"), "int4", 298)["total"].bytes  # ort graphs: prefill + 1
    assert pair["shares"] == pytest.approx([step / 60e9 / 0.010, step / 36e9 / 0.012, step / 66e9 / 0.008])
    assert pair["share_median"] == pytest.approx(sorted(pair["shares"])[1])
    rows = {t["target"]: t for t in report.targets(results)}
    r = rows["int4_vs_llamacpp_q4_0_interleaved"]
    assert r["value"] == pytest.approx(0.8 / 0.9) and r["status"] == "met" and "2 of 3 rounds <= 1.0" in r["what"]
    g = rows["int4_vs_genai_int4_interleaved"]  # genai's limit is 0.75: 0.5, 0.8, 0.64
    assert g["limit"] == 0.75 and g["value"] == pytest.approx(0.64) and "2 of 3 rounds <= 0.75" in g["what"]
    f = rows["bound_fraction_int4_issue16_paired"]
    assert f["limit"] == 0.5 and f["direction"] == ">=" and f["value"] == pytest.approx(pair["share_median"])
    md = "\n".join(report._interleave_lines(results))
    print(md)
    assert ("| int4 (ort graphs) | llama.cpp (llama-bench) q4_0 | 3 | 10.0 | 10.0 | 0.80 1.20 0.89 | **0.89** | "
            "35.0-66.0 |") in md
    assert "| int4 (ort graphs) | onnxruntime-genai int4 | 3 | 10.0 | 15.0 | 0.50 0.80 0.64 | **0.64** |" in md
    assert "-p 0 -n 64 -d 297 -r 2" in md
    # a unit that failed says so instead of a table
    assert "Not measured: boom" in "\n".join(report._interleave_lines({"interleave": {"error": "boom"}}))


FAKE_BENCH = """#!{python}
import sys
assert sys.argv[sys.argv.index("-d") + 1] == "{depth}" and sys.argv[sys.argv.index("-r") + 1] == "2"
print({decode!r})
"""
DECODE = json.dumps([{"n_prompt": 0, "n_gen": 64, "n_depth": 20, "samples_ns": [64e6, 128e6], "build_commit": "x",
                      "n_threads": 2, "type_k": "f16", "type_v": "f16", "flash_attn": -1}])


def test_the_worker_unit_runs_our_runtime_against_llama_bench(micro_bundle, tmp_path, monkeypatch):
    """The `interleave` worker unit end to end: the micro bundle through the runtime, a fake llama-bench
    (1.5 ms a token: the median of 1 and 2) at the depth asked, a stand-in for genai's child, a real bandwidth
    probe."""
    tools = llamacpp.tool_paths(tmp_path / "work")
    tools.bench.parent.mkdir(parents=True)
    tools.bench.write_text(FAKE_BENCH.format(python=sys.executable, depth=20, decode=DECODE))
    tools.bench.chmod(tools.bench.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setattr(llamacpp, "ensure_built", lambda work, echo=print: tools)
    monkeypatch.setattr(models, "peer_qwen_folder", lambda work: tmp_path)
    monkeypatch.setattr(llamacpp, "ensure_gguf", lambda work, tools, folder, name, threads: tmp_path / f"{name}.gguf")
    # onnxruntime-genai's child: what it prints last is its median seconds per token
    genai = []
    monkeypatch.setattr(interleave, "genai_cmd", lambda *a: genai.append(a) or [
        sys.executable, "-c", "print('loading'); print(0.003)"])
    spec = {"pairs": [{"precision": "fp32", "graphs": "portable", "peers": {"llamacpp": "f32", "genai": "fp32"},
                       "bundle": str(micro_bundle)}],
            "rounds": 2, "work": str(tmp_path / "work"), "prompt_len": 20, "new_tokens": 4, "repeats": 2,
            "warmup": 1, "threads": 2}
    out = interleave.run_unit(spec, echo=lambda m: None)
    (pair,) = out["pairs"]
    print(json.dumps(pair, indent=1))
    assert len(pair["rounds"]) == 2 and [r["ours_first"] for r in pair["rounds"]] == [True, False]
    for r in pair["rounds"]:
        assert r["peer_s"] == {"llamacpp": pytest.approx(0.0015), "genai": pytest.approx(0.003)} and 0 < r["ours_s"] < 5
        assert r["ratio"]["llamacpp"] == pytest.approx(r["ours_s"] / 0.0015)
        assert r["bandwidth_before"] > 1e8 and r["bandwidth_after"] > 1e8
    assert f"-m {tmp_path / 'f32.gguf'} -p 0 -n 64 -d 20 -t 2 -r 2" in out["commands"]["llamacpp f32"]
    assert genai == [(tmp_path / "work" / "peer-genai-fp32", 20, 4, 2)]  # its model, prompt, tokens, repeats
