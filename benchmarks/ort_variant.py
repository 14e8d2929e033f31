"""Interleaved A/B of the caption decode step: portable graphs against `export --graphs ort`.

Builds trunk + und_branch of MODEL_DIR both ways (torch.onnx export / export/ort_graphs.py, then
the bundle's quantization for int4 / int8), and times the chained step (trunk, then und_branch
with the lm_head of the last position; T = 1, batch 1, CONTEXT tokens already in the KV buffer)
through the runtime's own OrtBackend.run (input checks, the KV write or the in-place binding),
portable and ort alternately in every round, so both see the same load on a shared machine.

    python -m unifork_rt.benchmarks.ort_variant runs/bench/paper/model --work runs/ortab \\
        --precisions fp32,int4,int8 --rounds 40 --out runs/ortab/ab.json

Prints and writes per variant and precision: min / p10 / median ms per step, nodes per graph,
the step's bytes (benchmarks/roofline.py) and the fraction of the bandwidth bound at p10.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import click
import numpy as np

GRAPHS = ("trunk", "und_branch")


def build(model_dir: Path, work: Path, precisions: list[str], max_seq: int) -> None:
    """WORK/VARIANT-PRECISION/{trunk,und_branch}.onnx, each built once (kept when present)."""
    import shutil

    from ..export.onnx_export import export_graph
    from ..export.ort_graphs import export_ort_graph
    from ..export.quantize import quantize_graph
    from ..model.checkpoint import load_model

    model = None
    for variant in ("portable", "ort"):
        base = work / f"{variant}-fp32"
        for g in GRAPHS:
            if (base / f"{g}.onnx").is_file():
                continue
            if model is None:
                import torch

                model = load_model(model_dir).eval()
                model.requires_grad_(False)
                torch.set_grad_enabled(False)
            base.mkdir(parents=True, exist_ok=True)
            if variant == "ort":
                export_ort_graph(model, g, base / f"{g}.onnx", max_seq, float_kernel=True)  # as fp32 bundles
            else:
                export_graph(model, g, base / f"{g}.onnx", max_seq, model.embed_tokens.weight.dtype)
        for p in precisions:
            if p == "fp32" or (work / f"{variant}-{p}" / "und_branch.onnx").is_file():
                continue
            folder = work / f"{variant}-{p}"
            folder.mkdir(parents=True, exist_ok=True)
            for g in GRAPHS:
                for f in base.glob(f"{g}.onnx*"):
                    shutil.copyfile(f, folder / f.name)
                quantize_graph(folder / f"{g}.onnx", p)


def stepper(work: Path, variant: str, precision: str, cfg, max_seq: int, context: int, threads: int):
    """A zero-argument function running one chained decode step, and the graphs' node counts."""
    import onnx

    from ..runtime.bundle import Bundle, GraphSpec, expected_signatures
    from ..runtime.ort_backend import OrtBackend

    folder = work / f"{variant}-{precision}"
    sig = expected_signatures(cfg, max_seq, "float32", variant)

    def spec(name):
        ins, outs, kv = sig[name]
        io = lambda entries: tuple({"name": n, "dtype": d, "shape": s} for n, d, s in entries)  # noqa: E731
        return GraphSpec(name, folder / f"{name}.onnx", "", io(ins), io(outs), kv,
                         "shared" if variant == "ort" else "fused")

    bundle = Bundle(folder, {"precision": "fp32", "max_seq": max_seq, "variant": variant}, cfg,
                    {g: spec(g) for g in GRAPHS})
    nodes = {g: len(onnx.load(str(folder / f"{g}.onnx"), load_external_data=False).graph.node) for g in GRAPHS}
    be = OrtBackend(bundle, threads=threads).load()
    rng = np.random.default_rng(0)
    caches = {g: be.new_cache(g, 1) for g in GRAPHS}
    for c in caches.values():  # a context of random K/V, as a prompt would leave
        c.buf[..., :context, :] = rng.standard_normal(c.buf[..., :context, :].shape).astype(np.float32) * 0.5
    x = rng.standard_normal((1, 1, cfg.text.hidden_size)).astype(np.float32)
    pos, start = np.array(context, dtype=np.int64), np.zeros(1, dtype=np.int64)

    def step():
        h = be.run("trunk", {"x": x, "pos": pos, "start": start}, caches["trunk"])["h"]
        return be.run("und_branch", {"h": h, "pos": pos, "start": start}, caches["und_branch"])["logits"]
    return step, nodes


@click.command()
@click.argument("model_dir", type=click.Path(exists=True, path_type=Path))
@click.option("--work", type=click.Path(path_type=Path), required=True, help="Folder for the graphs (reused).")
@click.option("--precisions", default="fp32,int4,int8", show_default=True)
@click.option("--max-seq", type=int, default=512, show_default=True)
@click.option("--context", type=int, default=300, show_default=True, help="Tokens already in the KV buffer.")
@click.option("--rounds", type=int, default=40, show_default=True)
@click.option("--threads", type=int, default=2, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="JSON of the results.")
def main(model_dir, work, precisions, max_seq, context, rounds, threads, out):
    from ..config import ModelConfig
    from ..io import read_json
    from . import roofline

    precisions = [p for p in precisions.split(",") if p]
    build(model_dir, work, precisions, max_seq)
    cfg = ModelConfig.from_dict(read_json(model_dir / "config.json"))
    machine = roofline.measure_machine(threads=threads)
    results = []
    for p in precisions:
        steps = {}
        for v in ("portable", "ort"):
            steps[v] = stepper(work, v, p, cfg, max_seq, context, threads)
        logits = {v: s() for v, (s, _) in steps.items()}
        diff = float(np.abs(logits["portable"] - logits["ort"]).max())
        for s, _ in steps.values():
            for _ in range(3):
                s()
        times = {v: [] for v in steps}
        for _ in range(rounds):
            for v, (s, _) in steps.items():
                t = time.perf_counter()
                s()
                times[v].append((time.perf_counter() - t) * 1e3)
        cost = roofline.caption_decode_step(cfg, p, max_seq)["total"]
        for v, (_, nodes) in steps.items():
            a = np.array(times[v])
            p10 = float(np.percentile(a, 10))
            r = {"variant": v, "precision": p, "ms_min": round(float(a.min()), 2), "ms_p10": round(p10, 2),
                 "ms_median": round(float(np.median(a)), 2), "nodes": nodes, "bytes": cost.bytes,
                 "fraction_of_bound_p10": round(cost.bytes / machine["bandwidth"] / (p10 / 1e3), 3),
                 "logits_max_diff_vs_portable": diff, "load": round(os.getloadavg()[0], 2)}
            results.append(r)
            click.echo(json.dumps(r))
        del steps
    report = {"machine": {k: v for k, v in machine.items()}, "context": context, "max_seq": max_seq,
              "rounds": rounds, "threads": threads, "results": results}
    if out is not None:
        from ..io import atomic_write_text

        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out, json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
