"""`unifork-rt bench`: latency stage by stage, against the peers, against the roofline.

    unifork-rt bench --preset micro --quick --out runs/bench/quick        # seconds: a smoke test
    unifork-rt bench --preset paper --out runs/bench/paper                # the full comparison

One invocation measures everything it reports (STYLE.md §8: ratios only within one run):
the machine's bandwidth and GEMM rate, then per preset a build (random weights, exported
once into --work and reused), one worker process per backend x precision, then the peers.
Nothing here imports torch: the workers do (benchmarks/worker.py).
"""

from __future__ import annotations

import importlib.util
import json
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

from ..cli import FiniteFloat
from ..io import probe, shown
from . import interleave, llamacpp
from . import peers as peers_mod
from . import report, roofline
from .measure import busy_processes, cpu_busy_percent, machine_info

PRESET_NAMES = ("micro", "shapes", "paper", "official")
# NAME:PRECISION of every backend the bench knows; `auto` runs all, skipping those not present.
# A bare NAME takes its first precision here.
BACKENDS = ("torch-eager:fp32", "ort-cpu:fp32", "ort-cpu:int8", "ort-cpu:int4", "ort-cuda:fp16", "ort-tensorrt:fp16")
# the bundle precisions of export/onnx_export.py (kept literal here: the parent never imports torch);
# int4-b32 / int8-b32: in blocks of 32 (`export --precision int4 --block-size 32`, onnxruntime-genai's blocks)
PRECISIONS = ("fp32", "fp16", "int4", "int8", "int8-dynamic", "int4-b32", "int8-b32")
GRAPH_VARIANTS = ("portable", "ort")  # unifork_rt.runtime.bundle.VARIANTS (literal: the parent stays light)
GPU_PROVIDERS = {"ort-cuda": "CUDAExecutionProvider", "ort-tensorrt": "TensorrtExecutionProvider"}


def bundle_key(precision: str, graphs: str = "portable") -> str:
    """The bench's name of a bundle: PRECISION for the portable graphs, PRECISION-ort for `--graphs ort`
    (also its folder: WORK/PRESET/bundle-KEY)."""
    return precision if graphs == "portable" else f"{precision}-{graphs}"


def parse_backends(text: str) -> list[tuple[str, str]]:
    """'auto' or a comma list of NAME[:PRECISION] -> [(name, precision)]; an unknown name lists the valid ones."""
    items = BACKENDS if text == "auto" else [s.strip() for s in text.split(",") if s.strip()]
    known = {}
    for b in BACKENDS:
        known.setdefault(b.split(":")[0], b.split(":")[1])
    if not items:
        raise click.BadParameter(f"{text!r} names no backend: give a comma list of NAME[:PRECISION] or auto",
                                 param_hint="--backends")
    out = []
    for item in items:
        name, _, prec = item.partition(":")
        if name not in known:
            raise click.BadParameter(f"unknown backend {name!r}; valid: {', '.join(sorted(known))}",
                                     param_hint="--backends")
        prec = prec or known[name]
        if prec not in PRECISIONS:
            raise click.BadParameter(f"{item}: precision must be one of {', '.join(PRECISIONS)}",
                                     param_hint="--backends")
        if name == "torch-eager" and prec != "fp32":
            raise click.BadParameter("torch-eager runs fp32 only", param_hint="--backends")
        out.append((name, prec))
    return out


def backend_missing(name: str) -> str | None:
    """None if the backend can run here, else why not (and what to install)."""
    if name == "torch-eager":
        return None if importlib.util.find_spec("torch") else \
            "backend torch-eager skipped: torch is not installed (pip install 'unifork-rt[train]')"
    if importlib.util.find_spec("onnxruntime") is None:
        return f"backend {name} skipped: onnxruntime is not installed (pip install 'unifork-rt[cpu]' or '[gpu]')"
    if name in GPU_PROVIDERS:
        import onnxruntime

        have = onnxruntime.get_available_providers()
        if GPU_PROVIDERS[name] not in have:
            return (f"backend {name} skipped: no GPU backend here (onnxruntime offers only {', '.join(have)}); "
                    "on an NVIDIA machine install onnxruntime-gpu (pip install 'unifork-rt[gpu]')")
    return None


def parse_peers(text: str, presets: tuple[str, ...]) -> list[str]:
    if text == "none":
        return []
    if text == "auto":
        return list(peers_mod.PEERS) if "paper" in presets else []
    names = [s.strip() for s in text.split(",") if s.strip()]
    bad = [n for n in names if n not in peers_mod.PEERS]
    if bad:
        raise click.BadParameter(f"unknown peer(s) {', '.join(bad)}; valid: {', '.join(peers_mod.PEERS)}, none, auto",
                                 param_hint="--peers")
    return names


def peer_plan(names: list[str], genai_precisions: list[str], llamacpp_types: list[str] | None = None,
              work: Path | None = None) -> list[dict]:
    """One spec per peer run, or a {'skipped': message} record for a peer that is not installed."""
    out = []
    for name in names:
        precs = {"genai": genai_precisions, "llamacpp": llamacpp_types or list(llamacpp.TYPES)}.get(name, ["fp32"])
        why = peers_mod.missing(name, work)
        for p in precs:
            base = {"kind": "peer", "name": name, "precision": p}
            out.append({**base, "skipped": why} if why else base)
    return out


def caption_only_rss(run, results: dict, preset: str, runnable: list[dict], built: dict, plan, tasks) -> None:
    """Issue 16's caption-only peak RSS of the int4 bundle, in the same run: where the units also drew (their peak
    holds the draw's graphs), one more worker that only captions with the ort-cpu int4 bundle (the ort graphs' where
    both ran), as a `caption_rss` unit (preset, precision, graphs, bundle, peak_rss_mb, or error)."""
    if "caption" not in tasks or set(tasks) == {"caption"}:
        return  # a caption-only run's int4 unit is that figure already
    unit = next((u for g in ("ort", "portable") for u in runnable
                 if u["backend"] == "ort-cpu" and u["precision"] == "int4" and u["graphs"] == g), None)
    if unit is None:
        return
    bundle = built["bundles"][bundle_key("int4", unit["graphs"])]
    rec = {"kind": "caption_rss", "preset": preset, "backend": "ort-cpu", "precision": "int4",
           "graphs": unit["graphs"], "bundle": bundle}
    ran = next((u for u in results["units"] if u.get("kind") == "ours" and u.get("bundle") == bundle
                and u.get("backend") == "ort-cpu"), None)
    if ran is not None and ("error" in ran or "skipped" in ran):  # a hang or a failure need not cost a second worker
        results["units"].append({**rec, "error": "not run: the int4 unit did not finish "
                                                 f"({ran.get('error') or ran.get('skipped')})"})
        return
    spec = {"unit": "ours", "backend": "ort-cpu", "bundle": bundle, "model": built["model"],
            "plan": {**plan.__dict__, "tasks": ["caption"]}, "profile": False}
    res = run(spec, f"{preset} ort-cpu {bundle_key('int4', unit['graphs'])} caption only, for its peak RSS")
    results["units"].append({**rec, **({"peak_rss_mb": res["peak_rss_mb"]} if "caption" in res else
                                       {"error": res.get("error") or res.get("skipped") or "no caption ran"})})
    run.save_partial()


def _kernel_sources() -> str:
    """The digest of our kernel sources on disk now (runtime/qmatmul.py), or why there is none."""
    try:
        from unifork_rt.runtime.qmatmul import source_digest

        return source_digest()
    except OSError as e:
        return f"unreadable ({e})"


class Runner:
    """Runs worker units one at a time, each in its own process, with a time limit. After each
    unit the figures so far go to OUT/bench.partial.json, so a long run that is stopped keeps them."""

    def __init__(self, work: Path, timeout: float, partial: Path | None = None, results: dict | None = None,
                 echo=click.echo):
        self.work, self.timeout, self.echo = work, timeout, echo
        self.partial, self.results = partial, results
        self.logs = work / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)

    def __call__(self, spec: dict, title: str) -> dict:
        from .worker import command

        self.echo(f"[bench] {title} ...", err=True)
        t0 = time.perf_counter()
        with tempfile.TemporaryDirectory(dir=self.work) as tmp:
            spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
            spec_path.write_text(json.dumps(spec))
            log = self.logs / (title.replace(" ", "_").replace("/", "-") + ".log")
            try:
                with open(log, "w") as f:
                    proc = subprocess.Popen(command(spec_path, out_path), stdout=f, stderr=subprocess.STDOUT)
                    try:
                        proc.wait(timeout=self.timeout)
                    finally:  # past --timeout, or the bench stopped: SIGTERM lets the worker kill its own children
                        if proc.poll() is None:
                            proc.terminate()
                            try:
                                proc.wait(timeout=15)
                            except subprocess.TimeoutExpired:
                                proc.kill()
                                proc.wait()
                res = json.loads(out_path.read_text()) if out_path.is_file() else \
                    {"error": f"worker exited with status {proc.returncode}: see {log}"}
            except subprocess.TimeoutExpired:
                res = {"error": f"timed out after {self.timeout:.0f} s (--timeout): see {log}"}
        res["wall_s"] = time.perf_counter() - t0
        if self.results is not None:  # which kernel builds the units ran (report.kernel_lines)
            for digest in res.get("kernel_libraries") or ():
                self.results.setdefault("kernel_libraries", {}).setdefault(digest, []).append(title)
        msg = res.get("skipped") or (f"error: {res['error']}" if "error" in res else f"done in {res['wall_s']:.0f} s")
        self.echo(f"[bench] {title}: {msg}", err=True)
        return res

    def save_partial(self) -> None:
        if self.partial is not None and self.results is not None:
            from unifork_rt.io import atomic_write_text

            self.partial.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.partial, json.dumps(self.results, indent=1, default=float) + "\n")


def run_bound(probes: list[dict], inter: dict | None) -> dict:
    """The machine probe the report's bound takes: the best of the run's machine probes, its bandwidth raised to
    the best probe of the interleaved rounds where one read more (its other figures, `probes` and the compute
    rates, stay that machine probe's; `machine_probe_bandwidth` keeps its own reading). The best bandwidth seen
    in the run: a fraction of it is never flattered by a probe that missed a fast minute."""
    best = max(probes, key=lambda p: p["bandwidth"])
    inter_bw = interleave.best_bandwidth(inter)
    if inter_bw and inter_bw > best["bandwidth"]:
        best = {**best, "bandwidth": inter_bw, "machine_probe_bandwidth": best["bandwidth"],
                "bandwidth_from": "a probe beside the interleaved rounds"}
    return best


@click.command("bench")
@click.option("--preset", "presets", multiple=True, type=click.Choice(PRESET_NAMES), default=("micro",),
              show_default=True, help="Model preset(s), random weights; repeat the option for several.")
@click.option("--task", type=click.Choice(["caption", "draw", "all"]), default="all", show_default=True)
@click.option("--backends", default="auto", show_default=True,
              help=f"Comma list of NAME[:PRECISION] from {', '.join(BACKENDS)}; auto = all of them, "
                   f"those not present skipped with a message. PRECISION: {', '.join(PRECISIONS)} "
                   "(int4/int8: MatMulNBits weight-only, blocks of 128; int4-b32/int8-b32: in blocks of 32; "
                   "int8-dynamic: MatMulInteger; docs/GRAPHS.md).")
@click.option("--graphs", default="portable", show_default=True,
              help="Comma list of graph variants for ort-cpu: portable (standard ops, every backend), ort "
                   "(`unifork-rt export --graphs ort`: GroupQueryAttention and fused norms, ONNX Runtime CPU only; "
                   "fp16 has none). Other backends always run the portable graphs.")
@click.option("--peers", "peer_names", default="auto", show_default=True,
              help="Comma list of transformers, genai, optimum, llamacpp; 'none'; 'auto' = all when --preset paper "
                   "is run. Peers, llama.cpp above all (its threads spin), need an idle machine: anything else "
                   "running slows them, and the report records the load average.")
@click.option("--genai-precisions", default="fp32,int8,int4", show_default=True)
@click.option("--llamacpp-types", default=",".join(llamacpp.TYPES), show_default=True,
              help="GGUF types of the llamacpp peer (llama-bench; built from the llama-cpp-python "
                   f"{llamacpp.SDIST_VERSION} sdist into --work on first use, 5-20 min on 2 cores; needs cmake and "
                   "a C++ compiler). TYPE-pure: llama-quantize --pure.")
@click.option("--llamacpp-pure", is_flag=True,
              help="Also run each quantized llamacpp type with llama-quantize --pure: every matrix in that type "
                   "(by default the 896-wide tied embedding / head falls back to another type).")
@click.option("--interleave", "interleave_rounds", type=click.IntRange(0), default=None,
              help="Rounds of the interleaved comparison with the peers, after them (where our ort-cpu paper units "
                   "and the llamacpp or genai peer ran): each round times one run of each peer at a precision pairing "
                   "right beside a caption of ours of its own, each timing between two bandwidth probes; the "
                   "verdict takes the rounds in which a peer and ours beside it saw the same memory state; then as "
                   "many rounds of the caption prefill beside llama-bench's prefill of as many tokens, where llamacpp "
                   "ran (3-6 minutes a pairing). "
                   "Default: 8, or 2 with --quick. 0: none.")
@click.option("--peer-threads", type=click.IntRange(1), default=None,
              help="Threads of the llamacpp peer (llama-bench -t). Default: the machine's cores.")
@click.option("--repeats", type=click.IntRange(1), default=3, show_default=True,
              help="Timed runs of prefill / whole pipeline / peers, after --warmup.")
@click.option("--step-repeats", type=click.IntRange(1), default=20, show_default=True,
              help="Timed calls of each per-step graph stage.")
@click.option("--warmup", type=click.IntRange(0), default=1, show_default=True)
@click.option("--new-tokens", type=click.IntRange(2), default=32, show_default=True,
              help="Caption tokens decoded per run (ours and peers).")
@click.option("--image-budget", type=FiniteFloat(min=0, min_open=True), default=None,
              help="Seconds: skip a whole-image draw run whose estimate (from the stages) is longer. "
                   "Default: 240, or 60 with --quick.")
@click.option("--work", type=click.Path(path_type=Path), default=Path("runs/bench"), show_default=True,
              help="Where random models, bundles and peer models are built once and reused.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Folder for bench.json, bench.md and bench.png (default WORK/results).")
@click.option("--quick", is_flag=True, help="Smoke-test sizes: 2 repeats, 5 step repeats, 8 tokens, 60 s image budget "
              "(unless --image-budget is given).")
@click.option("--label", default=None, help="Title of the report (default: host, cores, date).")
@click.option("--profile/--no-profile", default=True, show_default=True,
              help="Profile the ORT CPU decode graphs (ONNX Runtime's profiler): time per op type.")
@click.option("--timeout", type=FiniteFloat(min=0, min_open=True), default=3600.0, show_default=True,
              help="Seconds per worker unit.")
def bench(presets, task, backends, graphs, peer_names, genai_precisions, llamacpp_types, llamacpp_pure,
          interleave_rounds, peer_threads, repeats, step_repeats, warmup, new_tokens, image_budget, work, out, quick,
          label, profile, timeout):
    """Latency per stage and per task, against the peers and the machine's roofline.

    Writes bench.json (machine, backend, precision, batch, lengths, figures), bench.md and
    bench.png into --out, and prints the markdown.
    """
    from .stages import Plan

    if quick:
        repeats, step_repeats, new_tokens = 2, 5, 8
    if image_budget is None:
        image_budget = 60.0 if quick else 240.0
    if interleave_rounds is None:
        interleave_rounds = 2 if quick else 8
    for option, folder in (("--work", work), ("--out", out)):
        st = probe(folder) if folder is not None else None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            raise click.BadParameter(f"{shown(folder)} is a file: give a folder", param_hint=option)
    work = work.resolve()
    out = (out or work / "results").resolve()
    presets = tuple(dict.fromkeys(presets))
    tasks = ("caption", "draw") if task == "all" else (task,)
    chosen = parse_backends(backends)
    variants = [v.strip() for v in graphs.split(",") if v.strip()]
    if not variants or any(v not in GRAPH_VARIANTS for v in variants):
        raise click.BadParameter(f"{graphs!r}: a comma list of {', '.join(GRAPH_VARIANTS)}", param_hint="--graphs")
    peer_list = parse_peers(peer_names, presets)
    gp = [p.strip() for p in genai_precisions.split(",") if p.strip()]
    bad = [p for p in gp if p not in peers_mod.GENAI_PRECISIONS]
    if bad:
        raise click.BadParameter(f"{', '.join(bad)}; valid: {', '.join(peers_mod.GENAI_PRECISIONS)}",
                                 param_hint="--genai-precisions")
    try:
        lt = llamacpp.plan_types([t.strip() for t in llamacpp_types.split(",") if t.strip()], llamacpp_pure)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--llamacpp-types") from None
    plan = Plan(repeats=repeats, step_repeats=step_repeats, warmup=warmup, new_tokens=new_tokens,
                image_budget_s=image_budget, tasks=tasks)
    machine = machine_info()
    peer_threads = peer_threads or machine["cores"]
    results = {
        "label": label or f"{machine['hostname']} · {machine['cores']} cores · {time.strftime('%Y-%m-%d %H:%M')}",
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": machine, "busy_at_start": busy_processes(),
        "kernel_sources": {"start": _kernel_sources()},
        "options": {"presets": list(presets), "tasks": list(tasks), "backends": [f"{n}:{p}" for n, p in chosen],
                    "graphs": variants, "peers": peer_list, "genai_precisions": gp, "llamacpp_types": lt,
                    "peer_threads": peer_threads, "interleave_rounds": interleave_rounds, "repeats": repeats,
                    "step_repeats": step_repeats, "warmup": warmup, "new_tokens": new_tokens,
                    "image_budget_s": image_budget, "quick": quick, "profile": profile},
        "units": [], "notes": [],
    }
    if peer_names == "auto" and not peer_list:
        results["notes"].append("peers not run: they are Qwen2.5-0.5B-shaped, compared with --preset paper "
                                "(or name them with --peers)")
    click.echo("[bench] measuring memory bandwidth and GEMM ...", err=True)
    probes = [roofline.measure_machine()]
    results["machine_probes"] = probes  # in every bench.partial.json too: a run that fails later keeps it
    run = Runner(work, timeout, out / "bench.partial.json", results)
    for preset in presets:
        runnable = []
        for name, prec in chosen:
            why = backend_missing(name)
            for variant in variants:
                if variant != "portable" and (name != "ort-cpu" or prec == "fp16"):
                    continue  # the ort graphs are built for ONNX Runtime's CPU kernels, not in fp16
                unit = {"kind": "ours", "preset": preset, "backend": name, "precision": prec, "graphs": variant}
                if why:
                    results["units"].append({**unit, "skipped": why})
                    click.echo(f"[bench] {why}", err=True)
                else:
                    runnable.append(unit)
        if not runnable:
            continue
        keys = sorted({bundle_key(u["precision"], u["graphs"]) for u in runnable} | ({"fp32"} if any(
            u["backend"] == "torch-eager" for u in runnable) else set()))
        built = run({"unit": "build", "preset": preset, "precisions": keys, "work": str(work)},
                    f"build {preset} {'+'.join(keys)}")
        if "bundles" not in built:
            for u in runnable:
                results["units"].append({**u, "skipped": f"{preset}: build failed: "
                                         f"{built.get('skipped') or built.get('error')}"})
            continue
        for u in runnable:
            spec = {"unit": "ours", "backend": u["backend"], "bundle": built["bundles"][bundle_key(u["precision"],
                                                                                               u["graphs"])],
                    "model": built["model"], "plan": {**plan.__dict__, "tasks": list(tasks)}, "profile": profile}
            before = probes[-1]["bandwidth"]
            res = run(spec, f"{preset} {u['backend']} {bundle_key(u['precision'], u['graphs'])}")
            results["units"].append({**u, **res, "bundle": spec["bundle"]})
            # a probe after each of ours too: this host's bandwidth moves by a third from one minute to the
            # next, and a step timed in a fast minute read 107% of a bound probed in slow ones
            probes.append({**roofline.measure_machine(), "after": f"{preset} {u['backend']} "
                                                                 f"{bundle_key(u['precision'], u['graphs'])}"})
            # the better of the probes just before and just after the unit: its bound in those minutes
            results["units"][-1]["bandwidth_beside"] = max(before, probes[-1]["bandwidth"])
            results["units"][-1]["bandwidth_beside_min"] = min(before, probes[-1]["bandwidth"])  # batching floor's
            run.save_partial()
        caption_only_rss(run, results, preset, runnable, built, plan, tasks)
    if peer_list:
        ref = next((u for u in results["units"] if u.get("preset") == "paper" and "caption" in u), None)
        prompt_len = ref["caption"]["prefill_tokens"] if ref else 300
        results["peer_prompt_len"], results["peer_new_tokens"] = prompt_len, new_tokens
        # spinning peers (llama.cpp) collapse under other load: what the machine was doing, start and end
        results["peer_load_average"] = {"start": llamacpp.load_average()}
        # the load average still counts our units of the last minutes; this says whether the CPUs are idle now
        results["peer_cpu_busy"] = {"start": cpu_busy_percent()}
        for p in peer_plan(peer_list, gp, lt, work):
            if "skipped" in p:
                click.echo(f"[bench] {p['skipped']}", err=True)
                results["units"].append(p)
                continue
            spec = {"unit": "peer", "peer": p["name"], "precision": p["precision"], "work": str(work),
                    "prompt_len": prompt_len, "new_tokens": new_tokens, "repeats": repeats, "warmup": warmup,
                    "threads": peer_threads}
            res = run(spec, f"peer {p['name']} {p['precision']}")
            results["units"].append({**p, "prompt_len": prompt_len, "new_tokens": new_tokens, **res})
            run.save_partial()
        results["peer_load_average"]["end"] = llamacpp.load_average()
        results["peer_cpu_busy"]["end"] = cpu_busy_percent()
        # ours and the peers again, round by round in the same minutes (benchmarks/interleave.py)
        interleave.run_all(results, run, interleave_rounds, work, prompt_len, new_tokens, warmup, peer_threads)
    probes.append(roofline.measure_machine())
    results["machine_probe"] = run_bound(probes, results.get("interleave"))
    results["machine_probes"] = probes
    results["busy_at_end"] = busy_processes()
    results["kernel_sources"]["end"] = _kernel_sources()
    results["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    report.analyse(results)
    paths = report.write(results, out)
    (out / "bench.partial.json").unlink(missing_ok=True)
    click.echo(report.markdown(results))
    click.echo(f"[bench] wrote {', '.join(str(p) for p in paths.values())}", err=True)
