"""ShapesBench: evaluate a runtime on ShapesWorld's held-out split (no torch).

`unifork-rt eval` runs it on an exported bundle; a training run on its in-memory model
(train/monitor.py, the PyTorch backend): the same loops, sampler and seeds, so both score a
checkpoint alike.

caption: held-out scenes -> rendered images (one of three rasterizers) -> captions -> exact match
         + per-attribute accuracy.
draw:    held-out prompts, n per category -> images -> detector -> GenEval-style table.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from .data import renderers, scoring, shapes_world as sw
from .io import atomic_path, atomic_write_text
from .runtime import limits
from .runtime.images import pixels_from_uint8
from .runtime.pipeline import DrawRequest, DrawSettings, UniForkRuntime


def eval_caption(rt: UniForkRuntime, n: int, seed: int = 0, renderer: str = "mask", batch: int = 32,
                 progress: bool = False) -> dict:
    """Greedy captions of n held-out scenes drawn by `renderer` (renderers.RENDERERS); the
    report plus every prediction. The scenes depend on seed only, not on the renderer."""
    _check_world(rt)
    scenes = sw.held_out_scenes(n, seed)
    shifts = np.random.default_rng([seed, *b"aa-shifts"])
    preds = []
    bar = _tqdm(progress, total=n, desc=f"caption ({renderer})", unit="image")
    for i in range(0, n, batch):
        chunk = scenes[i:i + batch]
        images = [renderers.render_with(s, renderer, shifts) for s in chunk]
        preds += rt.caption([pixels_from_uint8(im) for im in images], max_new_tokens=24)
        bar.update(len(chunk))
    bar.close()
    report = scoring.caption_report(preds, scenes)
    report["renderer"] = renderer
    report["samples"] = [{"reference": sw.caption(s), "prediction": p} for s, p in zip(scenes, preds)]
    return report


def eval_draw(rt: UniForkRuntime, n_per_category: int, seed: int = 0, settings: DrawSettings | None = None,
              progress: bool = False, batch: int = 16) -> tuple[dict, list]:
    """One image per held-out prompt, prompt i with seed + i; the report and (example, image, passed)
    triples. Prompts are drawn `batch` at a time: each request samples with its own generator, so
    its image is the one it gets when drawn alone (runtime.pipeline.draw_codes_batch)."""
    _check_world(rt)
    settings = settings or DrawSettings.for_bundle(rt.bundle)
    examples = sw.held_out_prompts(n_per_category, seed)
    requests = [DrawRequest(e.prompt, settings, 1, limits.seed_for(seed, i)) for i, e in enumerate(examples)]
    images = []
    bar = _tqdm(progress, total=len(examples), desc="draw", unit="image")
    for i in range(0, len(requests), batch):
        for codes in rt.draw_codes_batch(requests[i:i + batch]):
            images.extend(rt.decode(codes))
        bar.update(len(requests[i:i + batch]))
    bar.close()
    report = scoring.draw_report([e.prompt for e in examples], images)
    report["settings"] = dataclasses.asdict(settings)
    samples = [(e, img, scoring.score_drawing(e.prompt, img)) for e, img in zip(examples, images)]
    return report, samples


def contact_sheet(samples: list, path: Path | None, per_category: int = 8, scale: int = 2) -> Path | Image.Image:
    """A PNG grid: one row per category, a green (pass) or red (fail) frame on each drawing
    (path None: the image itself, unwritten).

    Each row shows failures as well as successes: its first failures (up to half the row),
    then its first passes, then more failures if passes run out."""
    by_cat: dict[str, list] = {}
    for ex, img, ok in samples:
        by_cat.setdefault(ex.category, []).append((ex.prompt, img, ok))
    for cat, items in by_cat.items():
        fails, passes = [x for x in items if not x[2]], [x for x in items if x[2]]
        k = min(len(fails), per_category // 2)
        by_cat[cat] = fails[:k] + passes[:per_category - k] + fails[k:]
    cell, label_w = 64 * scale + 8, 110
    rows = [c for c in sw.CATEGORIES if c in by_cat]
    per_category = min(per_category, max(len(v) for v in by_cat.values()))
    sheet = Image.new("RGB", (label_w + cell * per_category, (cell + 14) * len(rows)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, cat in enumerate(rows):
        y = r * (cell + 14)
        draw.text((4, y + cell // 2), cat, fill="black")
        for c, (prompt, img, ok) in enumerate(by_cat[cat][:per_category]):
            x = label_w + c * cell
            draw.rectangle([x, y, x + cell - 3, y + cell - 3], outline=(40, 170, 60) if ok else (220, 40, 40), width=3)
            sheet.paste(Image.fromarray(img).resize((64 * scale, 64 * scale), Image.Resampling.NEAREST), (x + 3, y + 3))
            draw.text((x, y + cell - 2), prompt[:24], fill=(90, 90, 90))
    if path is None:
        return sheet
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG")
    return path


def write_report(report: dict, out: Path, name: str) -> tuple[Path, Path]:
    for file, text in report_texts(report, name).items():
        atomic_write_text(out / file, text)
    return out / f"{name}.json", out / f"{name}.md"


def report_texts(report: dict, name: str) -> dict[str, str]:
    """NAME.json and NAME.md of a report, by file name (unwritten: a caller commits several at once)."""
    return {f"{name}.json": json.dumps(report, indent=1, default=_jsonable) + "\n",
            f"{name}.md": scoring.markdown_table(report) + "\n"}


def _jsonable(x):
    if isinstance(x, np.generic):
        return x.item()
    raise TypeError(type(x).__name__)


def _check_world(rt: UniForkRuntime) -> None:
    from .errors import InputError

    if rt.cfg.image.image_size != sw.CANVAS:
        raise InputError(f"ShapesBench needs a {sw.CANVAS}px model; this one draws {rt.cfg.image.image_size}px images")


def _tqdm(enabled: bool, **kw):
    from tqdm import tqdm

    return tqdm(disable=not enabled, leave=False, **kw)
