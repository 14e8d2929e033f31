"""Soak: many captions and draws in one process; resident memory and open files must not grow.

    python -m unifork_rt.benchmarks.soak [--model BUNDLE] [--captions 1000] [--draws 200] [--out soak.json]

Without --model it exports a random `micro` bundle first (needs the train extra). RSS and the
number of open file descriptors are read from /proc/self after a warm-up and then every
100 calls; the run fails (exit 1) if RSS grows by more than --max-growth-mb or any file
descriptor leaks.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from pathlib import Path

import click
import numpy as np


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def micro_bundle(folder: Path) -> Path:
    import torch

    from ..config import preset
    from ..export.onnx_export import export_bundle
    from ..model.checkpoint import save_model
    from ..model.unifork import UniFork
    from ..train.tokenizer import build_text_tokenizer

    torch.manual_seed(0)
    build_text_tokenizer(preset("micro").text.vocab_size).save(str(folder / "tokenizer.json"))
    save_model(UniFork(preset("micro")), folder / "model", tokenizer=folder / "tokenizer.json")
    return export_bundle(folder / "model", folder / "bundle", progress=False)


def soak(model: Path, captions: int, draws: int, warmup: int = 20) -> dict:
    from ..runtime.pipeline import DrawSettings, UniForkRuntime

    rng = np.random.default_rng(0)
    samples = []
    with UniForkRuntime(model) as rt:
        P = rt.cfg.image.image_size
        images = list(rng.uniform(-1, 1, (8, 3, P, P)).astype(np.float32))
        settings = DrawSettings.for_bundle(rt.bundle)

        def caption(i):
            rt.caption([images[i % 8]], max_new_tokens=8, temperature=1.0, seed=i)

        def draw(i):
            rt.decode(rt.draw_codes("a red circle left of a blue square", 1, settings, seed=i))

        for i in range(warmup):
            caption(i)
            draw(i)
        base_rss, base_fds = rss_mb(), open_fds()
        t0 = time.perf_counter()
        for i in range(captions):
            caption(i)
            if i % 100 == 99:
                samples.append({"calls": i + 1, "task": "caption", "rss_mb": rss_mb(), "fds": open_fds()})
        t1 = time.perf_counter()
        for i in range(draws):
            draw(i)
            if i % 50 == 49:
                samples.append({"calls": captions + i + 1, "task": "draw", "rss_mb": rss_mb(), "fds": open_fds()})
        t2 = time.perf_counter()
    return {
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "python": platform.python_version()},
        "model": str(model), "captions": captions, "draws": draws, "warmup_calls": warmup,
        "rss_start_mb": base_rss, "rss_end_mb": samples[-1]["rss_mb"] if samples else base_rss,
        "rss_max_growth_mb": max((s["rss_mb"] for s in samples), default=base_rss) - base_rss,
        "fds_start": base_fds, "fds_max": max((s["fds"] for s in samples), default=base_fds),
        "caption_ms": 1000 * (t1 - t0) / max(captions, 1), "draw_ms": 1000 * (t2 - t1) / max(draws, 1),
        "samples": samples,
    }


@click.command()
@click.option("--model", type=click.Path(path_type=Path), default=None, help="A bundle; default: a random micro one.")
@click.option("--captions", type=int, default=1000, show_default=True)
@click.option("--draws", type=int, default=200, show_default=True)
@click.option("--max-growth-mb", type=float, default=25.0, show_default=True,
              help="Fail if resident memory grows more than this after warm-up.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write the JSON report here.")
def main(model, captions, draws, max_growth_mb, out):
    """Run the soak and print its report."""
    from ..io import atomic_write_text

    with tempfile.TemporaryDirectory() as tmp:
        model = model or micro_bundle(Path(tmp))
        report = soak(model, captions, draws)
    report["max_growth_bound_mb"] = max_growth_mb
    report["passed"] = report["rss_max_growth_mb"] <= max_growth_mb and report["fds_max"] <= report["fds_start"]
    text = json.dumps(report, indent=1)
    if out:
        atomic_write_text(out, text + "\n")
    summary = {k: v for k, v in report.items() if k != "samples"}
    click.echo(json.dumps(summary, indent=1))
    raise SystemExit(0 if report["passed"] else 1)


if __name__ == "__main__":
    main()
