"""docs/FAILURES.md, produced by running every case (not written by hand).

    python -m unifork_rt.benchmarks.failures --model BUNDLE > docs/FAILURES.md

The first table runs image and backend cases through the real CLI; the others are the hostile
battery of benchmarks/hostile.py (the same cases tests/test_hostile.py checks on the micro
bundle). Each row shows the exit status and the first line the user sees.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import click
import numpy as np
from click.testing import CliRunner
from PIL import Image


def _cases(bundle: Path, tmp: Path) -> list[tuple[str, list[str]]]:
    good = tmp / "good.png"
    Image.new("RGB", (64, 64), "white").save(good)
    data = good.read_bytes()
    (tmp / "truncated.png").write_bytes(data[: len(data) // 2])
    (tmp / "text.png").write_text("hello")
    Image.new("RGB", (3, 3)).save(tmp / "tiny.png")
    Image.new("L", (9000, 5000)).save(tmp / "bomb.png")
    Image.new("CMYK", (64, 64)).save(tmp / "cmyk.jpg")
    Image.fromarray(np.full((64, 64), 40000, np.uint16)).save(tmp / "sixteen.png")
    other = tmp / "other_model"
    shutil.copytree(bundle, other)
    cfg = json.loads((other / "config.json").read_text())
    cfg["text"]["rope_theta"] = 1.0
    (other / "config.json").write_text(json.dumps(cfg))
    altered = tmp / "altered"
    shutil.copytree(bundle, altered)
    with open(altered / "trunk.onnx", "r+b") as f:
        f.seek(200)
        f.write(b"\xff\xfe")
    truncated = tmp / "truncated_bundle"
    shutil.copytree(bundle, truncated)
    raw = (truncated / "embeddings.safetensors").read_bytes()
    (truncated / "embeddings.safetensors").write_bytes(raw[: len(raw) // 3])
    (tmp / "afile").write_text("x")
    m = ["--model", str(bundle)]
    return [
        ("image file missing", ["caption", str(tmp / "missing.png"), *m]),
        ("not an image", ["caption", str(tmp / "text.png"), *m]),
        ("truncated PNG", ["caption", str(tmp / "truncated.png"), *m]),
        ("3x3 px image", ["caption", str(tmp / "tiny.png"), *m]),
        ("45 MP image (decompression bomb)", ["caption", str(tmp / "bomb.png"), *m]),
        ("CMYK JPEG (converted, works)", ["caption", str(tmp / "cmyk.jpg"), *m, "--max-new-tokens", "4"]),
        ("16-bit PNG (converted, works)", ["caption", str(tmp / "sixteen.png"), *m, "--max-new-tokens", "4"]),
        ("empty prompt", ["draw", "", *m, "-o", str(tmp / "e.png")]),
        ("prompt longer than max_seq", ["draw", "circle " * 200, *m, "-o", str(tmp / "l.png")]),
        ("--n 0", ["draw", "a circle", *m, "--n", "0"]),
        ("negative temperature", ["draw", "a circle", *m, "--temperature", "-1"]),
        ("top-p 0", ["draw", "a circle", *m, "--top-p", "0"]),
        ("not a .png output", ["draw", "a circle", *m, "-o", str(tmp / "x.jpg")]),
        ("unwritable output path", ["draw", "a circle", *m, "-o", str(tmp / "afile" / "x.png"), "--quiet"]),
        ("unknown backend", ["draw", "a circle", *m, "--backend", "metal"]),
        ("GPU backend without onnxruntime-gpu", ["draw", "a circle", *m, "--backend", "ort-cuda"]),
        ("TensorRT backend without TensorRT", ["draw", "a circle", *m, "--backend", "tensorrt"]),
        ("bundle from another model", ["draw", "a circle", "--model", str(other)]),
        ("altered graph file", ["draw", "a circle", "--model", str(altered)]),
        ("truncated embeddings file", ["draw", "a circle", "--model", str(truncated)]),
        ("model folder missing", ["draw", "a circle", "--model", str(tmp / "nowhere")]),
        ("checkpoint folder instead of bundle", ["draw", "a circle", "--model", str(tmp)]),
    ]


GROUPS = {
    "bundle": "Untrusted bundles: the manifest schema, paths, sizes, hashes",
    "options": "Options and prompts: values, seeds, memory, text",
    "output": "The output channel and signals (real processes where it matters)",
    "files": "Output files: names, overwrites, all or none",
    "threads": "Threads",
    "photos": "Photos: EXIF orientation",
}


def failure_doc(bundle: Path) -> str:
    """The whole document: the CLI image/backend table, then the hostile battery by class."""
    from . import hostile

    cases = hostile.all_cases()
    out = [failure_table(bundle)]
    failed = []
    with tempfile.TemporaryDirectory() as t:
        env = hostile.Env(Path(bundle), Path(t))
        try:
            results = [(c, hostile.run_case(c, env)) for c in cases]
        finally:
            env.close()
    for group, title in GROUPS.items():
        rows = [(c, r) for c, r in results if c.group == group]
        out += ["", f"## {title} ({len(rows)} cases)", "", "| case | exit | what the user sees | as expected |",
                "|---|---|---|---|"]
        for c, r in rows:
            problem = hostile.check(c, r)
            if problem:
                failed.append(f"{c.id}: {problem}")
            msg = r.message.replace("|", "\\|").replace("`", "'")
            out.append(f"| {c.name.replace('|', '/')} | {r.code} | `{msg[:220]}` | {'yes' if not problem else 'NO'} |")
    summary = (f"The hostile battery: {len(cases)} cases, {len(cases) - len(failed)} as expected"
               + (f"; not as expected: {'; '.join(failed)}" if failed else "") + ".")
    return "\n".join([HEADER, summary, "", "## Images and backends (the CLI)", "", *out])


HEADER = """# What the user sees when things go wrong

Produced by running every case against the shipped bundle (nothing here is written by hand):

    python -m unifork_rt.benchmarks.failures --model unifork_rt/assets/shapes > docs/FAILURES.md

Exit 2 is a usage or input error: one line on stderr, no traceback, nothing half-written. Exit
0 means the input was converted or the request worked (the shipped model only knows
ShapesWorld, so an all-black CMYK or a flat 16-bit image gets a meaningless caption). Exit 130
is an interrupt with nothing of the command's output committed. In the battery's tables, API
cases call the Python API (exit 0 = worked, 2 = `UniforkError`); `…` is the scratch folder and
BUNDLE the bundle under attack. The same cases run in CI on the micro test bundle
(`tests/test_hostile.py`), with property-based tests beside them.
"""


def failure_table(bundle: Path) -> str:
    from ..cli import main

    rows = ["| case | exit | what the user sees |", "|---|---|---|"]
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        for name, args in _cases(Path(bundle), tmp):
            res = CliRunner().invoke(main, args)
            if res.exception and not isinstance(res.exception, SystemExit):
                first = f"UNHANDLED {type(res.exception).__name__}: {res.exception}"
            else:
                lines = [ln for ln in res.output.splitlines() if ln.strip() and not ln.startswith(("Usage:", "Try "))]
                first = lines[0] if lines else ""
            first = first.replace(str(tmp), "…").replace(str(bundle), "BUNDLE").replace("|", "\\|")
            rows.append(f"| {name} | {res.exit_code} | `{first[:160]}` |")
    return "\n".join(rows)


@click.command()
@click.option("--model", type=click.Path(exists=True, path_type=Path), required=True, help="A bundle to test with.")
def main(model):
    """Print the failure tables (CLI cases and the hostile battery) as markdown."""
    click.echo(failure_doc(model))


if __name__ == "__main__":
    main()
