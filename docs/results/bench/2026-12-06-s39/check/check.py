#!/usr/bin/env python3
"""Independent re-scoring of issue 16's "Done when" items from a bench run's bench.json.

Written from the issue text, docs/BENCHMARKS.md and the JSON alone (not from the project's
report / interleave / roofline / cli code). Usage:

    python3 check.py DIR [DIR ...]      # each DIR holds bench.json (and bench.md to compare)

Prints, per run, a markdown section: my figures and verdicts, the project's (bench.md's Targets
table and interleaved round tables, and bench.json's targets), the disagreements, and the
consistency checks on the JSON. Pure standard library; cheap.
"""
import json
import math
import os
import re
import statistics
import sys

SAME_STATE = 1.15          # docs: "all four of its probes are within 15% of each other"
MIN_SAME = 3               # docs: "at least 3 such rounds"
FRACTION_WITHIN = 0.75     # docs: "3 in 4 of them within the limit"

# Issue 16 item 1 pairings (ours precision -> llama.cpp type, genai precision); int8-dynamic is
# an int8 scheme and is paired with q8_0 / genai int8 as the brief says.
PAIRINGS = {
    "fp32": ("f32", "fp32"),
    "int8": ("q8_0", "int8"),
    "int8-dynamic": ("q8_0", "int8"),
    "int4": ("q4_0", "int4"),
}
LIMIT = {"llamacpp": 1.0, "genai": 0.75}
SHARE_LIMIT = {"fp32": 0.70, "int8": 0.50, "int8-dynamic": 0.50, "int4": 0.50}
DRAW_LIMIT = 1.5
RSS_LIMIT_MB = 1000.0
TOL = 0.0051               # "differs by more than rounding" for 2-decimal figures


def med(xs):
    return statistics.median(xs) if xs else float("nan")


def f2(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f}"


def pct(x):
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:.0f}%"


def same_state(probes, thr=SAME_STATE):
    probes = [p for p in probes if p]
    if len(probes) != 4:
        return None
    return max(probes) / min(probes) <= thr


def rule_verdict(ratios, flags, limit, min_same=MIN_SAME, frac=FRACTION_WITHIN, rounding="ceil"):
    """The docs' rule: median of the same-state rounds; met only with >= 3 such rounds and
    3 in 4 of them within the limit; 'not settled' with fewer. rounding='floor' is the looser
    reading of "3 in 4" (floor(0.75 n) rounds suffice); 'ceil' the plain one (fraction >= 0.75)."""
    sel = [r for r, f in zip(ratios, flags) if f]
    n = len(sel)
    within = sum(1 for r in sel if r <= limit)
    m = med(sel)
    if n < min_same:
        return "not settled", m, n, within
    need = math.ceil(frac * n - 1e-9) if rounding == "ceil" else math.floor(frac * n + 1e-9)
    ok = within >= need and m <= limit
    return ("met" if ok else "missed"), m, n, within


class Run:
    def __init__(self, d):
        self.d = d
        self.json = json.load(open(os.path.join(d, "bench.json")))
        md = os.path.join(d, "bench.md")
        self.md = open(md).read() if os.path.exists(md) else None
        self.issues = []      # consistency findings
        self.rows = []        # (item, what, mine, mine_verdict, theirs_value, theirs_verdict, notes)

    # ---------------------------------------------------------------- helpers
    def note(self, s):
        self.issues.append(s)

    def ours(self):
        return {u["precision"]: u for u in self.json["units"] if u.get("kind") == "ours"
                and u.get("preset", "paper") == "paper" and u.get("backend") == "ort-cpu"}

    def peer(self, name, prec):
        for u in self.json["units"]:
            if u.get("kind") == "peer" and u.get("name") == name and u.get("precision") == prec:
                return u
        return None

    def all_probes(self):
        """Every bandwidth reading in the file, with where it came from."""
        out = []
        for i, p in enumerate(self.json.get("machine_probes", [])):
            out.append((p["bandwidth"], f"machine_probes[{i}] ({p.get('after', 'start')})", p))
        il = self.json.get("interleave") or {}
        for pair in il.get("pairs", []):
            for kind, rounds in (("decode", pair.get("rounds", [])),
                                 ("prefill", (pair.get("prefill") or {}).get("rounds", []))):
                for r in rounds:
                    for peer, o in (r.get("ours") or {}).items():
                        for b in o.get("bandwidth", []):
                            out.append((b, f"{pair['precision']} {kind} r{r['round']} ours/{peer}", None))
                    for peer, bs in (r.get("peer_bandwidth") or {}).items():
                        for b in bs:
                            out.append((b, f"{pair['precision']} {kind} r{r['round']} {peer}", None))
        return out

    # ---------------------------------------------------------------- project's figures
    def their_targets(self):
        return {t["target"]: t for t in self.json.get("targets", [])}

    def md_targets(self):
        """Targets table of bench.md: what -> (value, limit, status)."""
        out = {}
        if not self.md:
            return out
        sec = self.md.split("## Targets", 1)
        if len(sec) < 2:
            return out
        for line in sec[1].split("\n## ", 1)[0].splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) != 5 or cells[0] in ("target", "---"):
                continue
            what, _preset, value, limit, status = cells
            if (what, limit) in out:
                self.note(f"bench.md's Targets table has two rows with the same text and limit: {what!r}")
            out[(what, limit)] = (value, limit, status.strip("*"))
        return out

    def md_rounds(self, section_title):
        """Interleaved round tables: (ours label, peer label) -> (['0.63*', ...], same-state cell)."""
        out = {}
        if not self.md or section_title not in self.md:
            return out
        body = self.md.split(section_title, 1)[1].split("\n## ", 1)[0]
        for line in body.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 8 or cells[0] in ("ours", "---"):
                continue
            if not re.match(r"^[0-9.]+\*?( [0-9.]+\*?)*$", cells[5]):
                continue
            out[(cells[0], cells[1])] = (cells[5].split(), cells[6], cells[7])
        return out

    # ---------------------------------------------------------------- the checks
    def check(self):
        J = self.json
        ours = self.ours()
        targets = self.their_targets()
        mdt = self.md_targets()
        il = J.get("interleave") or {}
        pairs = {p["precision"]: p for p in il.get("pairs", [])}

        # ---- probes: the run's best, and where it came from
        probes = self.all_probes()
        best_bw, best_from, _ = max(probes, key=lambda t: t[0])
        self.best_bw = best_bw
        mp = J.get("machine_probe", {})
        if abs(mp.get("bandwidth", 0) - best_bw) > 1e3:
            self.note(f"machine_probe.bandwidth {mp.get('bandwidth', 0)/1e9:.2f} GB/s is not the best of all "
                      f"probes in the file ({best_bw/1e9:.2f} GB/s, {best_from})")
        n_round_probes = sum(1 for p in probes if not p[1].startswith("machine_probes"))
        self.best_from = best_from
        self.n_round_probes = n_round_probes
        bad = [p for p in probes if not p[0] or p[0] <= 0 or (isinstance(p[0], float) and math.isnan(p[0]))]
        if bad:
            self.note(f"{len(bad)} probe readings are missing / zero: {[b[1] for b in bad][:5]}")
        mprobes = J.get("machine_probes", [])
        best_read = max(p["probes"]["read_4_streams_bytes_per_s"] for p in mprobes)
        best_read1 = max(p["probes"]["read_bytes_per_s"] for p in mprobes)
        copy_is_best = all(p["bandwidth"] == max(p["probes"]["copy_bytes_per_s"], p["probes"]["read_bytes_per_s"],
                                                 p["probes"]["read_4_streams_bytes_per_s"]) and
                           p["probes"]["copy_bytes_per_s"] >= p["probes"]["read_4_streams_bytes_per_s"]
                           for p in mprobes)
        self.best_read = best_read
        self.copy_is_best = copy_is_best
        if copy_is_best:
            rr = [p["probes"]["read_4_streams_bytes_per_s"] / p["probes"]["copy_bytes_per_s"] for p in mprobes]
            self.note(f"every machine probe's 'bandwidth' is its copy figure (read + write bytes counted); the best "
                      f"read-only figure (4 streams) is {best_read/1e9:.1f} GB/s, {min(rr):.0%}-{max(rr):.0%} of the copy "
                      f"beside it. The round probes carry one number each (kind not recorded); the run's bound, "
                      f"{best_bw/1e9:.2f} GB/s, is one of them ({best_from}). A decode step only reads, so a read-only "
                      f"bound would give HIGHER shares: the copy bound is the stricter reading, not the easier one.")

        # ---- unit 'beside' probes: machine_probes[i] before unit i, [i+1] after
        order = [u for u in J["units"] if u.get("kind") == "ours"]
        for i, u in enumerate(order):
            if i + 1 < len(mprobes):
                a, b = mprobes[i]["bandwidth"], mprobes[i + 1]["bandwidth"]
                if mprobes[i + 1].get("after", "") and u["precision"] not in mprobes[i + 1]["after"]:
                    self.note(f"probe after unit {u['precision']} is labelled '{mprobes[i+1]['after']}'")
                if abs(u.get("bandwidth_beside", 0) - max(a, b)) > 1e3 or abs(u.get("bandwidth_beside_min", 0) - min(a, b)) > 1e3:
                    self.note(f"unit {u['precision']}: bandwidth_beside {u.get('bandwidth_beside', 0)/1e9:.2f} / min "
                              f"{u.get('bandwidth_beside_min', 0)/1e9:.2f} are not the probes before/after it "
                              f"({a/1e9:.2f}, {b/1e9:.2f})")

        # ---- item 1 and 2: interleaved rounds + units
        self.item1, self.item2 = [], []
        md_dec = self.md_rounds("## Interleaved with the peers: caption decode")
        md_pre = self.md_rounds("## Interleaved with llama.cpp: caption prefill")
        for prec, (ltype, gprec) in PAIRINGS.items():
            u = ours.get(prec)
            pair = pairs.get(prec)
            if u is None:
                self.note(f"no unit of ours for {prec}")
                continue
            if pair is None:
                self.note(f"no interleaved pairing for {prec}")
                continue
            want = {"llamacpp": ltype, "genai": gprec}
            if pair.get("peers") != want:
                self.note(f"{prec}: pairing's peers {pair.get('peers')} differ from the issue's {want}")
            cmds = pair.get("commands", {})
            if ltype not in cmds.get("llamacpp", "") or f"-{ltype}.gguf" not in cmds.get("llamacpp", ""):
                self.note(f"{prec}: llama.cpp decode command does not name the {ltype} GGUF: {cmds.get('llamacpp')}")
            if f"peer-genai-{gprec} " not in cmds.get("genai", "") + " ":
                self.note(f"{prec}: genai command does not name genai {gprec}: {cmds.get('genai')}")
            nt, pl = il.get("new_tokens"), il.get("prompt_len")
            if f"-n {nt} -d {pl}" not in cmds.get("llamacpp", ""):
                self.note(f"{prec}: llama.cpp decode command's -n/-d differ from {nt}/{pl}")
            if not cmds.get("genai", "").rstrip().endswith(f"{pl} {nt} 1"):
                self.note(f"{prec}: genai command's lengths differ from {pl}/{nt}")
            for peer, ptype in (("llamacpp", ltype), ("genai", gprec)):
                self.item1.append(self.score_rounds(prec, peer, ptype, pair["rounds"], pair["by_peer"].get(peer, {}),
                                                    u, targets, mdt, md_dec, kind="decode"))
            pf = pair.get("prefill") or {}
            if not pf:
                self.note(f"{prec}: no prefill rounds")
            else:
                if pf.get("peers") != {"llamacpp": ltype}:
                    self.note(f"{prec}: prefill peers {pf.get('peers')} differ from llama.cpp {ltype}")
                pc = pf.get("commands", {}).get("llamacpp", "")
                ptoks = u["caption"]["prefill_tokens"]
                if f"-{ltype}.gguf" not in pc or f"-p {ptoks} -n 0" not in pc:
                    self.note(f"{prec}: prefill command {pc!r} does not match {ltype} / -p {ptoks}")
                self.item2.append(self.score_rounds(prec, "llamacpp", ltype, pf["rounds"], pf["by_peer"].get("llamacpp", {}),
                                                    u, targets, mdt, md_pre, kind="prefill"))

        # ---- item 3: share of the bandwidth bound
        self.item3 = []
        for prec, u in ours.items():
            rf = u["roofline"]["caption_decode_step"]
            st = u["caption"]["stages"]["decode_step"]["median"]
            pipe = u["caption"]["pipeline"]["per_token"]["median"]
            nbytes = rf["bytes"]
            if abs(rf["weight_bytes"] + rf["kv_bytes"] - nbytes) > 1:
                self.note(f"{prec}: roofline bytes != weight + kv")
            if abs(rf["measured_s"] - st) > 1e-9:
                self.note(f"{prec}: roofline measured_s {rf['measured_s']} is not the decode step median {st}")
            share_best = nbytes / best_bw / st
            beside = nbytes / u["bandwidth_beside"] / st
            share_pipe = nbytes / best_bw / pipe
            share_read = nbytes / best_read / st
            rs = []
            pair = pairs.get(prec)
            if pair:
                for r in pair["rounds"]:
                    for peer, o in r["ours"].items():
                        rs.append(nbytes / max(o["bandwidth"]) / o["s"])
                rs_best = [nbytes / best_bw / o["s"] for r in pair["rounds"] for o in r["ours"].values()]
            else:
                rs_best = []
            t = targets.get(f"bound_fraction_{prec}_issue16", {})
            lim = SHARE_LIMIT[prec]
            if t and abs(t.get("limit", lim) - lim) > 1e-9:
                self.note(f"{prec}: the project's share limit {t.get('limit')} differs from the issue's {lim}")
            mine = "met" if share_best >= lim else "missed"
            self.item3.append(dict(prec=prec, limit=lim, share=share_best, verdict=mine, beside=beside,
                                   their_beside=rf.get("fraction_beside"), pipe=share_pipe, read=share_read,
                                   rounds_med=med(rs), rounds_rng=(min(rs), max(rs)) if rs else None,
                                   rounds_best_med=med(rs_best),
                                   theirs=t.get("value"), their_status=t.get("status"),
                                   kv_bytes=rf["kv_bytes"], bytes=nbytes, step=st))
            if t and abs(t["value"] - share_best) > 0.005:
                self.note(f"{prec}: share {share_best:.3f} (mine) vs {t['value']:.3f} (theirs)")
        # KV bytes: docs say the whole max_seq buffer is counted
        u0 = ours.get("fp32")
        if u0:
            kv = u0["roofline"]["caption_decode_step"]["kv_bytes"]
            ms = u0["caption"]["max_seq"]
            per_pos = 2 * 24 * 2 * 64 * 4  # K+V, 24 layers, 2 kv heads x 64, fp32
            self.note(f"roofline kv_bytes {kv/1e6:.2f} MB = {kv/per_pos:.0f} positions of fp32 K+V (24 layers, 2x64), "
                      f"not the whole max_seq {ms} buffer ({ms*per_pos/1e6:.2f} MB) that docs/BENCHMARKS.md says is "
                      f"counted; counting fewer bytes lowers the share (stricter), by 0.3% (fp32) to 2% (int4).")

        # peers' bound bytes against their GGUF files (a tied head is read whole each step)
        for pu in J["units"]:
            if pu.get("kind") == "peer" and pu.get("name") == "llamacpp" and pu.get("gguf"):
                wb = pu["roofline"]["decode_step"]["weight_bytes"]
                fb = pu["gguf"]["bytes"]
                if abs(wb - fb) / fb > 0.05:
                    self.note(f"llama.cpp {pu['precision']}: roofline weight_bytes {wb/1e6:.1f} MB vs GGUF file {fb/1e6:.1f} MB "
                              f"({pu['gguf'].get('tensor_types')}): the q8_0 tied token_embd / output is counted as "
                              f"{pu['precision']}, so the peer's share in bench.md is understated (peer only, not a target)")

        # ---- item 4: caption-only int4 peak RSS
        u4 = ours.get("int4")
        self.item4 = dict(in_json=False, unit_rss=u4.get("peak_rss_mb") if u4 else None,
                          il_rss=(pairs.get("int4") or {}).get("peak_rss_mb"),
                          tasks=J["options"].get("tasks"))
        for t in J.get("targets", []):
            if "rss" in t["target"].lower() or "rss" in t.get("what", "").lower():
                self.item4.update(in_json=True, value=t.get("value"), status=t.get("status"))

        # ---- item 5: draw --n 4 / --n 1
        self.item5 = []
        for prec, u in ours.items():
            dr = u.get("draw") or {}
            w1, w4 = dr.get("whole_image"), dr.get("whole_image_n4")
            if not w1 or not w4:
                self.note(f"{prec}: no whole-image draw timings")
                continue
            r = w4["median"] / w1["median"]
            worst = w4["max"] / w1["min"]
            best = w4["min"] / w1["max"]
            rmin = w4["min"] / w1["min"]
            cell = dr["stages"]["cell_step_n4"]["median"] / dr["stages"]["cell_step"]["median"]
            t = targets.get(f"draw_n4_vs_n1_{prec}", {})
            if abs(dr.get("ratio_n4_vs_n1_whole", r) - r) > 1e-6:
                self.note(f"{prec}: ratio_n4_vs_n1_whole {dr['ratio_n4_vs_n1_whole']:.4f} != n4/n1 medians {r:.4f}")
            if w1.get("warmup", 0) == 0:
                pass
            self.item5.append(dict(prec=prec, ratio=r, verdict="met" if r <= DRAW_LIMIT else "missed",
                                   worst=worst, best=best, rmin=rmin, cell=cell, n=(w1["n"], w4["n"]),
                                   warm=(w1.get("warmup"), w4.get("warmup")),
                                   theirs=t.get("value"), their_status=t.get("status"),
                                   t1=(w1["min"], w1["max"]), t4=(w4["min"], w4["max"])))
            if t and abs(t["value"] - r) > 1e-6:
                self.note(f"{prec}: draw ratio mine {r:.4f} vs theirs {t['value']:.4f}")
        if self.item5 and all(x["warm"] == (0, 0) for x in self.item5):
            self.note("whole-image draws: n = 2 each, warmup 0 (no untimed image first); medians of 2 are means of 2")

        # ---- bench.md targets table vs bench.json targets
        for t in J.get("targets", []):
            lim = t.get("limit")
            m = mdt.get((t["what"], "–" if lim is None else f"{t.get('direction', '')} {lim}".strip()))
            if m is None:
                if t.get("status") != "not measured":
                    self.note(f"target {t['target']} is in bench.json but not in bench.md's table")
                continue
            if t.get("value") is not None and m[0] != f"{t['value']:.2f}":
                self.note(f"target {t['target']}: bench.md value {m[0]} vs bench.json {t['value']:.4f}")
            if m[2] != t["status"]:
                self.note(f"target {t['target']}: bench.md status {m[2]} vs bench.json {t['status']}")

    def score_rounds(self, prec, peer, ptype, rounds, by_peer, u, targets, mdt, mdr, kind):
        lim = LIMIT[peer]
        ratios, flags, flags_j, ours_s, peer_s = [], [], [], [], []
        seen = set()
        for i, r in enumerate(rounds):
            if r.get("round") != i:
                self.note(f"{prec} {kind}: round index {r.get('round')} at position {i}")
            o = (r.get("ours") or {}).get(peer)
            ps = (r.get("peer_s") or {}).get(peer)
            if o is None or ps is None:
                self.note(f"{prec} {kind} {peer} round {i}: missing timing (ours {o is not None}, peer {ps is not None})")
                continue
            key = (round(o["s"], 12), round(ps, 12))
            if key in seen:
                self.note(f"{prec} {kind} {peer}: round {i} repeats an earlier round's timings (counted twice)")
            seen.add(key)
            ob, pb = o.get("bandwidth", []), (r.get("peer_bandwidth") or {}).get(peer, [])
            if len(ob) != 2 or len(pb) != 2:
                self.note(f"{prec} {kind} {peer} round {i}: {len(ob)} probes beside ours, {len(pb)} beside the peer")
            if kind == "decode" and o.get("tokens") != [32]:
                self.note(f"{prec} decode {peer} round {i}: ours tokens {o.get('tokens')}")
            if kind == "prefill" and o.get("tokens") != [u["caption"]["prefill_tokens"]]:
                self.note(f"{prec} prefill round {i}: ours tokens {o.get('tokens')} vs prefill_tokens {u['caption']['prefill_tokens']}")
            ratio = o["s"] / ps
            ss = same_state(list(ob) + list(pb))
            ratios.append(ratio)
            flags.append(bool(ss))
            flags_j.append((r.get("same_state") or {}).get(peer))
            ours_s.append(o["s"])
            peer_s.append(ps)
            jr = (r.get("ratio") or {}).get(peer)
            if jr is None or abs(jr - ratio) > 1e-9:
                self.note(f"{prec} {kind} {peer} round {i}: stored ratio {jr} != ours/peer {ratio}")
            # the ratio must not be against the other peer's timing
            for other, os_ in (r.get("peer_s") or {}).items():
                if other != peer and jr is not None and abs(o["s"] / os_ - jr) < 1e-12:
                    self.note(f"{prec} {kind} {peer} round {i}: ratio equals ours / {other}'s timing")
        for i, (a, b) in enumerate(zip(flags, flags_j)):
            if a != b:
                self.note(f"{prec} {kind} {peer} round {i}: same_state stored {b}, recomputed {a}")
        if by_peer:
            if [round(x, 12) for x in by_peer.get("ratios", [])] != [round(x, 12) for x in ratios]:
                self.note(f"{prec} {kind} {peer}: by_peer.ratios differ from the rounds' ratios")
            if by_peer.get("same_state") != flags:
                self.note(f"{prec} {kind} {peer}: by_peer.same_state {by_peer.get('same_state')} != recomputed {flags}")
            sr = [x for x, f in zip(ratios, flags) if f]
            if [round(x, 12) for x in by_peer.get("settled_ratios", [])] != [round(x, 12) for x in sr]:
                self.note(f"{prec} {kind} {peer}: by_peer.settled_ratios differ from the same-state rounds")
            stored = by_peer.get("settled_median", med(sr) if sr else None)
            if (stored is None) != (not sr) or (sr and abs(stored - med(sr)) > 1e-9):  # none: no same-state round (s50)
                self.note(f"{prec} {kind} {peer}: settled_median {stored} != {med(sr) if sr else None}")
        # the rule and its variants
        v, m, n, within = rule_verdict(ratios, flags, lim)
        v_floor = rule_verdict(ratios, flags, lim, rounding="floor")[0]
        v_all, m_all, n_all, w_all = rule_verdict(ratios, [True] * len(ratios), lim)
        v_strict = rule_verdict(ratios, flags, lim, frac=1.0)[0]          # every same-state round within
        v_all8 = "met" if ratios and max(ratios) <= lim else "missed"        # every round within
        sens = {}
        for thr in (1.10, 1.20):
            fl = []
            for r in rounds:
                o = r["ours"][peer]
                fl.append(bool(same_state(list(o["bandwidth"]) + list(r["peer_bandwidth"][peer]), thr)))
            sens[thr] = rule_verdict(ratios, fl, lim)
        # "within 15%" read as min >= 0.85 max (a factor 1/0.85 = 1.176)
        fl = []
        for r in rounds:
            o = r["ours"][peer]
            ps = list(o["bandwidth"]) + list(r["peer_bandwidth"][peer])
            fl.append(min(ps) >= 0.85 * max(ps))
        v_alt = rule_verdict(ratios, fl, lim)
        # units minutes apart
        pu = self.peer(peer, ptype)
        if kind == "decode":
            unit = u["caption"]["pipeline"]["per_token"]["median"] / pu["per_token"]["median"] if pu else None
            unit_step = u["caption"]["stages"]["decode_step"]["median"] / pu["per_token"]["median"] if pu else None
            tu = targets.get(f"{prec}_vs_{'llamacpp_' + ptype if peer == 'llamacpp' else 'genai' + ('' if prec == 'fp32' else '_' + ptype)}")
            ti = targets.get(f"{prec}_vs_{'llamacpp_' + ptype if peer == 'llamacpp' else 'genai_' + ptype}_interleaved")
        else:
            st = u["caption"]["stages"]
            unit = st["prefill"]["median"] / pu["ttft"]["median"] if pu else None
            # stricter reading: "prefill of the caption prompt" including the image encode
            unit_step = (st["prefill"]["median"] + st["image_encode"]["median"]) / pu["ttft"]["median"] if pu else None
            tu = targets.get(f"{prec}_prefill_vs_llamacpp_{ptype}")
            ti = targets.get(f"{prec}_prefill_vs_llamacpp_{ptype}_interleaved")
            if pu and pu.get("prefill_tokens") != u["caption"]["prefill_tokens"]:
                self.note(f"{prec}: llama.cpp unit prefill {pu.get('prefill_tokens')} tokens vs ours {u['caption']['prefill_tokens']}")
        # stricter prefill reading in the rounds: + the unit's image encode
        enc_rule = None
        if kind == "prefill":
            enc = u["caption"]["stages"]["image_encode"]["median"]
            r_enc = [(o + enc) / p for o, p in zip(ours_s, peer_s)]
            enc_rule = rule_verdict(r_enc, flags, lim)
        unit_v = None if unit is None else ("met" if unit <= lim else "missed")
        # compare with bench.md's rounds table
        md_key = None
        for (a, b), cells in mdr.items():
            if a.startswith(prec + " ") and ((peer == "llamacpp" and "llama" in b and ptype in b) or
                                            (peer == "genai" and "genai" in b and ptype in b)):
                md_key = (a, b)
                toks = cells[0]
                mine_toks = [f"{x:.2f}" + ("" if f else "*") for x, f in zip(ratios, flags)]
                if toks != mine_toks:
                    self.note(f"bench.md {kind} rounds {prec}/{peer}: {' '.join(toks)} vs mine {' '.join(mine_toks)}")
                want = f"**{m:.2f}** ({n})" if n >= MIN_SAME else None
                if want and cells[1] != want:
                    self.note(f"bench.md {kind} {prec}/{peer}: same-state cell {cells[1]!r} vs mine {want!r}")
                if cells[2] != f"{med(ratios):.2f}":
                    self.note(f"bench.md {kind} {prec}/{peer}: median-all cell {cells[2]!r} vs mine {med(ratios):.2f}")
        if md_key is None and mdr:
            self.note(f"bench.md has no {kind} round row for {prec}/{peer} {ptype}")
        return dict(prec=prec, peer=peer, ptype=ptype, kind=kind, limit=lim, ratios=ratios, flags=flags,
                    verdict=v, median=m, n=n, within=within, v_floor=v_floor, all_median=m_all, v_all=v_all,
                    v_strict=v_strict, v_all8=v_all8, sens=sens, v_alt=v_alt, unit=unit, unit_v=unit_v,
                    unit_alt=unit_step, enc_rule=enc_rule,
                    theirs=ti.get("value") if ti else None, their_status=ti.get("status") if ti else None,
                    their_unit=tu.get("value") if tu else None, their_unit_status=tu.get("status") if tu else None,
                    md_key=md_key)

    # ---------------------------------------------------------------- report
    def report(self):
        L = []
        J = self.json
        L.append(f"## {self.d}\n")
        L.append(f"{J.get('label')}; started {J.get('started')}, finished {J.get('finished')}; "
                 f"cpu flags {', '.join(J['machine'].get('cpu_flags', []))}; load at start {J['machine'].get('load_average_1m'):.2f}; "
                 f"best probe {self.best_bw/1e9:.2f} GB/s ({self.best_from}); {self.n_round_probes} probes beside the rounds.\n")
        dis = []
        L.append("### Items 1 and 2: interleaved rounds (mine) vs the project's\n")
        L.append("| item | ours / peer | rounds (mine; * = not same state) | same-state median (n, within) | my verdict | theirs | "
                 "median all | 3-in-4 floor | every same-state within | all 8 within | thr 1.10 / 1.20 / 0.85·max | units (mine) | units (theirs) | stricter alt |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for it, rows in (("1", self.item1), ("2", self.item2)):
            for r in rows:
                rs = " ".join(f"{x:.2f}" + ("" if f else "*") for x, f in zip(r["ratios"], r["flags"]))
                theirs = f"{f2(r['theirs'])} {r['their_status']}"
                alt = f"{f2(r['unit_alt'])} (step/peer)" if r["kind"] == "decode" else \
                    f"units incl. encode {f2(r['unit_alt'])}; rounds +encode: {r['enc_rule'][0]} {f2(r['enc_rule'][1])}"
                sens = " / ".join(f"{r['sens'][t][0]} ({r['sens'][t][2]})" for t in (1.10, 1.20)) + f" / {r['v_alt'][0]} ({r['v_alt'][2]})"
                L.append(f"| {it} {r['kind']} | {r['prec']} / {r['peer']} {r['ptype']} (≤ {r['limit']}) | {rs} | "
                         f"{f2(r['median'])} ({r['n']}, {r['within']}) | **{r['verdict']}** | {theirs} | {f2(r['all_median'])} {r['v_all']} | "
                         f"{r['v_floor']} | {r['v_strict']} | {r['v_all8']} | {sens} | {f2(r['unit'])} {r['unit_v']} | "
                         f"{f2(r['their_unit'])} {r['their_unit_status']} | {alt} |")
                if r["their_status"] != r["verdict"] or (r["theirs"] is not None and abs(r["theirs"] - r["median"]) > TOL):
                    dis.append(f"item {it} {r['kind']} {r['prec']}/{r['peer']}: mine {r['verdict']} {f2(r['median'])}, "
                               f"theirs {r['their_status']} {f2(r['theirs'])}")
                if r["unit"] is not None and r["their_unit"] is not None and (
                        abs(r["unit"] - r["their_unit"]) > TOL or r["unit_v"] != r["their_unit_status"]):
                    dis.append(f"item {it} units {r['prec']}/{r['peer']}: mine {f2(r['unit'])} {r['unit_v']}, theirs "
                               f"{f2(r['their_unit'])} {r['their_unit_status']}")
                flips = []
                if r["v_all"] != r["verdict"]:
                    flips.append(f"all-rounds reading: {r['v_all']}")
                if r["v_floor"] != r["verdict"]:
                    flips.append(f"'3 in 4' rounded down: {r['v_floor']}")
                if r["v_strict"] != r["verdict"]:
                    flips.append(f"every same-state round within: {r['v_strict']}")
                if r["v_all8"] != r["verdict"]:
                    flips.append(f"all 8 rounds within: {r['v_all8']}")
                for t in (1.10, 1.20):
                    if r["sens"][t][0] != r["verdict"]:
                        flips.append(f"same-state factor {t}: {r['sens'][t][0]}")
                if r["v_alt"][0] != r["verdict"]:
                    flips.append(f"'within 15%' as min ≥ 0.85·max: {r['v_alt'][0]}")
                if r["unit_v"] and r["unit_v"] != r["verdict"]:
                    flips.append(f"units minutes apart: {r['unit_v']} ({f2(r['unit'])})")
                if r["kind"] == "prefill" and r["enc_rule"][0] != r["verdict"]:
                    flips.append(f"prefill incl. image encode, rounds: {r['enc_rule'][0]} ({f2(r['enc_rule'][1])})")
                if r["kind"] == "prefill" and r["unit_alt"] is not None and (r["unit_alt"] <= r["limit"]) != (r["verdict"] == "met"):
                    flips.append(f"prefill incl. image encode, units: {f2(r['unit_alt'])}")
                if r["kind"] == "decode" and r["unit_alt"] is not None and (r["unit_alt"] <= r["limit"]) != (r["verdict"] == "met"):
                    flips.append(f"graph step / peer: {f2(r['unit_alt'])}")
                r["flips"] = flips
        L.append("")
        L.append("Readings that would flip my rule verdict:\n")
        any_flip = False
        for it, rows in (("1", self.item1), ("2", self.item2)):
            for r in rows:
                if r["flips"]:
                    any_flip = True
                    L.append(f"- item {it} {r['prec']} / {r['peer']} {r['ptype']} (rule: {r['verdict']}): " + "; ".join(r["flips"]))
        if not any_flip:
            L.append("- none")
        L.append("")
        L.append("### Item 3: share of the decode step's bandwidth bound\n")
        L.append("| precision | limit | bytes MB | step ms | share at best probe (mine) | my verdict | theirs | at the unit's better beside probe (mine / theirs) | "
                 "pipeline ms/token at best probe | at best 4-stream READ probe | rounds: at higher probe beside ours, median (range) | rounds at best probe, median |")
        L.append("|---|---|---|---|---|---|---|---|---|---|---|---|")
        for r in self.item3:
            rng = f"{pct(r['rounds_rng'][0])}-{pct(r['rounds_rng'][1])}" if r["rounds_rng"] else "–"
            L.append(f"| {r['prec']} | {pct(r['limit'])} | {r['bytes']/1e6:.1f} | {1e3*r['step']:.2f} | {pct(r['share'])} ({r['share']:.3f}) | **{r['verdict']}** | "
                     f"{f2(r['theirs'])} {r['their_status']} | {pct(r['beside'])} / {pct(r['their_beside'])} | {pct(r['pipe'])} | {pct(r['read'])} | "
                     f"{pct(r['rounds_med'])} ({rng}) | {pct(r['rounds_best_med'])} |")
            if r["their_status"] != r["verdict"] or (r["theirs"] is not None and abs(r["theirs"] - r["share"]) > TOL):
                dis.append(f"item 3 {r['prec']}: mine {r['share']:.3f} {r['verdict']}, theirs {f2(r['theirs'])} {r['their_status']}")
        fl = []
        for r in self.item3:
            alts = {"beside the unit": r["beside"], "pipeline ms/token": r["pipe"], "read-only probe": r["read"],
                    "rounds beside ours": r["rounds_med"], "rounds at best probe": r["rounds_best_med"]}
            f = [f"{k} {pct(v)}" for k, v in alts.items() if (v >= r["limit"]) != (r["verdict"] == "met")]
            if f:
                fl.append(f"- {r['prec']} (best probe: {r['verdict']}): flips under " + ", ".join(f))
        L.append("")
        L.append("Readings that would flip it:\n")
        L.extend(fl or ["- none"])
        L.append("")
        L.append("### Item 4: caption-only peak RSS of the int4 bundle\n")
        i4 = self.item4
        if i4["in_json"]:
            L.append(f"In bench.json: {i4.get('value')} ({i4.get('status')}).")
        else:
            L.append(f"**Not in bench.json.** The run's tasks were {i4['tasks']}; the int4 unit's peak RSS "
                     f"({f2(i4['unit_rss'])} MB) covers caption + draw, and the int4 interleaved worker's "
                     f"({f2(i4['il_rss'])} MB) also holds the bandwidth probes' buffers; neither is a caption-only figure.")
        L.append("")
        L.append("### Item 5: whole-image draw `--n 4` / `--n 1`\n")
        L.append("| precision | n1 s (min-max) | n4 s (min-max) | median ratio (mine) | my verdict | theirs | worst pairing max/min | best min/max | min/min | cell step ratio |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for r in self.item5:
            L.append(f"| {r['prec']} | {r['t1'][0]:.2f}-{r['t1'][1]:.2f} | {r['t4'][0]:.2f}-{r['t4'][1]:.2f} | {r['ratio']:.3f} | **{r['verdict']}** | "
                     f"{f2(r['theirs'])} {r['their_status']} | {r['worst']:.2f} | {r['best']:.2f} | {r['rmin']:.2f} | {r['cell']:.2f} |")
            if r["their_status"] != r["verdict"] or (r["theirs"] is not None and abs(r["theirs"] - r["ratio"]) > TOL):
                dis.append(f"item 5 {r['prec']}: mine {r['ratio']:.3f} {r['verdict']}, theirs {f2(r['theirs'])} {r['their_status']}")
        fl = [f"- {r['prec']} (median {r['verdict']}): worst pairing {r['worst']:.2f}, best {r['best']:.2f}, min/min {r['rmin']:.2f}"
              for r in self.item5 if (r["worst"] <= DRAW_LIMIT) != (r["best"] <= DRAW_LIMIT)]
        L.append("")
        L.append("Precisions whose verdict depends on which of the 2+2 draws are compared:\n")
        L.extend(fl or ["- none"])
        L.append("")
        # summary by item
        def allmet(rows):
            vs = [r["verdict"] for r in rows]
            return "met" if vs and all(v == "met" for v in vs) else ("not settled" if "not settled" in vs and "missed" not in vs else "missed")
        L.append("### My verdict by item (rule readings)\n")
        L.append(f"1. caption decode (interleaved rule, all 8 rows): **{allmet(self.item1)}** "
                 f"({', '.join(r['prec'] + '/' + r['peer'] + ' ' + r['verdict'] for r in self.item1 if r['verdict'] != 'met') or 'every row met'}); "
                 f"units minutes apart: {'met' if all(r['unit_v'] == 'met' for r in self.item1) else 'missed'}")
        L.append(f"2. prefill (interleaved rule): **{allmet(self.item2)}** "
                 f"({', '.join(r['prec'] + ' ' + r['verdict'] for r in self.item2 if r['verdict'] != 'met') or 'every row met'}); "
                 f"units: {'met' if all(r['unit_v'] == 'met' for r in self.item2) else 'missed'}")
        L.append(f"3. bound share: **{'met' if all(r['verdict'] == 'met' for r in self.item3) else 'missed'}** "
                 f"({', '.join(r['prec'] + ' ' + pct(r['share']) for r in self.item3 if r['verdict'] != 'met') or 'all met'})")
        L.append(f"4. int4 caption-only RSS: {'in bench.json' if self.item4['in_json'] else 'not in bench.json'}")
        L.append(f"5. draw ratio: **{'met' if all(r['verdict'] == 'met' for r in self.item5) else 'missed'}** "
                 f"({', '.join(r['prec'] + ' ' + f2(r['ratio']) for r in self.item5 if r['verdict'] != 'met') or 'all met'})")
        L.append("")
        L.append("### Disagreements with the project's figures / verdicts (beyond rounding)\n")
        L.extend(["- " + x for x in dis] or ["- none"])
        L.append("")
        L.append("### Consistency notes on the JSON\n")
        L.extend(["- " + x for x in self.issues] or ["- none"])
        L.append("")
        return "\n".join(L), dis


def main(argv):
    if not argv:
        print(__doc__)
        return 2
    out = []
    for d in argv:
        if not os.path.exists(os.path.join(d, "bench.json")):
            out.append(f"## {d}\n\nno bench.json (yet)\n")
            continue
        r = Run(d)
        r.check()
        text, _ = r.report()
        out.append(text)
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
