"""Optimization profiles and memory estimates for synthetic manifest entries (pure functions)."""

from __future__ import annotations

import pytest

from unifork_rt.config import preset
from unifork_rt.engines import profiles as P
from unifork_rt.errors import InputError, ModelFolderError, UniforkError
from unifork_rt.runtime.bundle import GraphSpec, KVSpec

H, S, L, HKV, DH, N, D = 64, 64, 2, 2, 16, 16, 2
KV = {"layers": L, "kv_heads": HKV, "max_seq": S, "head_dim": DH}


def io(name, dtype, shape):
    return {"name": name, "dtype": dtype, "shape": shape}


def entry(name):
    """Manifest entries shaped like the exporter's for the micro preset (docs/GRAPHS.md)."""
    kv_in = io("kv", "float32", [L, 2, "batch", HKV, S, DH])
    text = [io("x" if name == "trunk" else "h", "float32", ["batch", "seq", H]), kv_in, io("pos", "int64", []),
            io("start", "int64", ["batch"])]
    return {
        "trunk": {"inputs": text, "kv": KV}, "und_branch": {"inputs": text, "kv": KV},
        "gen_branch": {"inputs": text, "kv": KV},
        "connector": {"inputs": [io("codes", "int64", ["batch", "cells", D])], "kv": None},
        "rq_head": {"inputs": [io("hidden", "float32", ["batch", H]), io("codes", "int64", ["batch", D]),
                               io("kv", "float32", [1, 2, "batch", 4, D, 16]), io("pos", "int64", [])],
                    "kv": {"layers": 1, "kv_heads": 4, "max_seq": D, "head_dim": 16}},
        "vision_encoder": {"inputs": [io("pixels", "float32", ["batch", 3, 64, 64])], "kv": None},
        "vision_decoder": {"inputs": [io("codes", "int64", ["batch", N, D])], "kv": None},
    }[name]


def profiles(name, max_batch=4, max_seq=S):
    return P.graph_profiles(entry(name), name=name, max_batch=max_batch, max_seq=max_seq, cells=N)


@pytest.mark.parametrize("name", ["trunk", "und_branch", "gen_branch", "connector", "rq_head", "vision_encoder",
                                  "vision_decoder"])
@pytest.mark.parametrize("max_batch", [1, 2, 8])
def test_profiles_are_valid(name, max_batch):
    ps = profiles(name, max_batch)
    assert P.check_profiles(entry(name), ps, name=name) == []
    shapes = {i["name"]: i["shape"] for i in entry(name)["inputs"]}
    for p in ps:
        for iname, r in p.shapes:
            k = shapes[iname].index("batch")  # kv: dim 2
            assert (r.min[k], r.max[k]) == (1, max_batch) and r.opt[k] in (1, min(2, max_batch))


def test_attention_graph_has_prefill_and_decode():
    prefill, decode = profiles("trunk")
    assert (prefill.name, decode.name) == ("prefill", "decode")
    x = prefill.shape("x")
    assert x.min == (1, 1, H) and x.max == (4, S, H)
    assert x.opt == (2, N + 2 + P.PROMPT_OPT, H)  # CFG batch 2; a caption prefill
    assert decode.shape("x") == P.ShapeRange((1, 1, H), (2, 1, H), (4, 1, H))
    kv = decode.shape("kv")
    assert kv.min == (L, 2, 1, HKV, S, DH) and kv.opt == (L, 2, 2, HKV, S, DH) and kv.max == (L, 2, 4, HKV, S, DH)
    assert decode.shape("start") == P.ShapeRange((1,), (2,), (4,))
    assert "pos" not in dict(decode.shapes)  # a static scalar needs no range


def test_opt_batch_and_prefill_per_graph():
    assert profiles("und_branch")[0].shape("h").opt == (1, N + 2 + P.PROMPT_OPT, H)  # captions: B = 1
    assert profiles("gen_branch")[0].shape("h").opt == (2, P.PROMPT_OPT + 1, H)      # prompt + BOI, guided
    assert profiles("trunk", max_batch=1)[1].shape("x").opt == (1, 1, H)             # opt never above max
    assert profiles("trunk", max_seq=20)[0].shape("x").opt == (2, 20, H)            # nor above max_seq
    prefill, decode = profiles("connector")
    assert prefill.shape("codes") == P.ShapeRange((1, 1, D), (2, N, D), (4, N, D))
    assert decode.shape("codes").max == (4, 1, D)
    (step,) = profiles("rq_head")
    assert step.name == "step" and step.shape("kv").max == (1, 2, 4, 4, D, 16)
    (one,) = profiles("vision_decoder")
    assert one.name == "all" and one.shape("codes") == P.ShapeRange((1, N, D), (1, N, D), (4, N, D))


def test_graph_spec_and_manifest_entry_agree():
    e = entry("trunk")
    spec = GraphSpec("trunk", None, "0" * 64, tuple(e["inputs"]), (), KVSpec(**KV))
    assert P.graph_profiles(spec, max_batch=2, max_seq=S, cells=N) == \
        P.graph_profiles(e, name="trunk", max_batch=2, max_seq=S, cells=N)


def test_limits_are_enforced():
    with pytest.raises(InputError, match="--max-seq 65 is longer than the KV buffers of trunk"):
        profiles("trunk", max_seq=S + 1)
    with pytest.raises(InputError, match="--max-batch 0"):
        profiles("trunk", max_batch=0)
    bad = entry("trunk") | {"inputs": [io("x", "float32", ["batch", "s0", H])]}
    with pytest.raises(ModelFolderError, match="'s0'"):
        P.graph_profiles(bad, name="trunk", max_batch=2, max_seq=S, cells=N)


def test_check_profiles_finds_problems():
    prefill, decode = profiles("trunk")
    swapped = P.Profile("x", ((("x", P.ShapeRange((1, 4, H), (1, 2, H), (2, 8, H))),)
                              + tuple(s for s in prefill.shapes if s[0] != "x")))
    assert any("min <= opt <= max" in p for p in P.check_profiles(entry("trunk"), (swapped,), name="trunk"))
    wrong_static = P.Profile("w", tuple((n, P.ShapeRange(r.min, r.opt, r.max[:-1] + (r.max[-1] + 1,)))
                                        if n == "kv" else (n, r) for n, r in decode.shapes))
    text = "\n".join(P.check_profiles(entry("trunk"), (wrong_static,), name="trunk"))
    assert "static (16)" in text and "differ from the KV spec" in text
    too_long = P.Profile("t", tuple((n, P.ShapeRange(r.min, r.opt, (r.max[0], S + 1, H))) if n == "x" else (n, r)
                                    for n, r in prefill.shapes))
    assert any("exceeds the KV length" in p for p in P.check_profiles(entry("trunk"), (too_long,), name="trunk"))
    mixed = P.Profile("m", tuple((n, P.ShapeRange((2,), (2,), (2,))) if n == "start" else (n, r)
                                 for n, r in prefill.shapes))
    assert any("disagree on the batch range" in p for p in P.check_profiles(entry("trunk"), (mixed,), name="trunk"))
    partial = P.Profile("p", prefill.shapes[:1])
    assert any("no range for dynamic input(s) ['kv', 'start']" in p
               for p in P.check_profiles(entry("trunk"), (partial,), name="trunk"))


def test_select_profile_prefers_decode_for_one_token():
    ps = profiles("trunk")
    kv = (L, 2, 2, HKV, S, DH)
    assert ps[P.select_profile(ps, {"x": (2, 1, H), "kv": kv, "start": (2,)})].name == "decode"
    assert ps[P.select_profile(ps, {"x": (2, 30, H), "kv": kv, "start": (2,)})].name == "prefill"
    with pytest.raises(InputError, match="outside every optimization profile.*--max-batch"):
        P.select_profile(ps, {"x": (5, 1, H), "kv": (L, 2, 5, HKV, S, DH), "start": (5,)})


def test_profile_round_trips_through_json():
    for p in profiles("trunk") + profiles("rq_head"):
        assert P.Profile.from_dict(p.to_dict()) == p


def test_ort_profile_options():
    opts = P.ort_profile_options(profiles("trunk")[0])
    assert opts["trt_profile_min_shapes"] == f"x:1x1x{H},kv:{L}x2x1x{HKV}x{S}x{DH},start:1"
    assert opts["trt_profile_max_shapes"] == f"x:4x{S}x{H},kv:{L}x2x4x{HKV}x{S}x{DH},start:4"


def test_kv_bytes_and_estimate():
    assert P.kv_bytes(KV, batch=2, dtype_bytes=4) == L * 2 * 2 * HKV * S * DH * 4
    cfg = preset("paper")
    t = cfg.text
    kv = {"layers": 12, "kv_heads": t.num_kv_heads, "max_seq": 512, "head_dim": t.head_dim}
    kvs = {"trunk": kv, "und_branch": kv, "gen_branch": kv, "connector": None,
           "rq_head": {"layers": 6, "kv_heads": 32, "max_seq": 4, "head_dim": 112}}
    weights = int(1.13e9) * 2  # the paper preset's graphs in fp16
    est = [P.estimate_memory(cfg, kvs, weights, max_batch=b, max_seq=512, dtype_bytes=2, workspace_bytes=P.GiB)
           for b in (1, 2, 4, 8)]
    assert all(a.total < b.total for a, b in zip(est, est[1:]))
    assert est[1].kv == 3 * P.kv_bytes(kv, 2, 2) + P.kv_bytes(kvs["rq_head"], 2, 2)
    assert est[1].weights == weights and est[1].workspace == P.GiB
    assert "GiB (weights" in est[1].describe()

    jetson = P.suggest_limits(8 * P.GiB, integrated=True)  # Orin Nano 8 GB: memory shared with the OS
    assert (jetson.max_batch, jetson.workspace_gb) == (2, 1.0)
    P.check_fits(est[1], jetson)  # the paper preset fits at max_batch 2 in fp16
    with pytest.raises(UniforkError, match="lower --max-batch"):
        P.check_fits(P.estimate_memory(cfg, kvs, weights * 2, max_batch=8, max_seq=512, dtype_bytes=4,
                                       workspace_bytes=4 * P.GiB), jetson)
    assert P.suggest_limits(16 * P.GiB, integrated=False).max_batch == 4
    a100 = P.suggest_limits(80 * P.GiB, integrated=False)
    assert (a100.max_batch, a100.workspace_gb) == (8, 4.0)
