"""Scorers for ShapesWorld: an object detector, caption scoring and drawing scoring.

The detector is written from SHAPES_WORLD.md alone and is meant for model-drawn images too
(blur, noise, slightly off colours, a pixel or two of shift), so it thresholds generously
and reads shape from coarse geometry rather than from exact masks.

Image arrays are (Y, X, 3) uint8, as in shapes_world.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .shapes_world import (
    CANVAS, CATEGORIES, CELL, COLORS, GRID, Obj, Scene, caption, parse_caption,
    prompt_constraints, satisfies,
)

# --- detector --------------------------------------------------------------------------------

# "Ink" is how far a pixel is from white in its palest channel: 255 - min(R, G, B). Every
# palette colour has ink 195..225 and the background 0, so a threshold near half of that
# keeps blurred shapes at about their true outline and ignores noise of a few tens of levels.
INK_THRESHOLD = 100
CORE_INK = 150  # pixels this inked are well inside a shape: the colour is read from them
MIN_OBJECT_PIXELS = 24  # the smallest shape (triangle) has 84 px; a cell of noise has ~0
# Shape geometry inside the object's bounding box (values for rendered shapes in brackets):
TRIANGLE_MAX_TOP_BOTTOM = 0.6  # ink in top third / bottom third [triangle 0.27, others 1.0]
# Ink in the four 3 x 3 corner blocks of the box [square 1.0, circle 0.33]: the corners are
# where a circle and a square differ most, and blur or speckle move them least.
SQUARE_MIN_CORNER_FILL = 0.65

_PALETTE_NAMES = tuple(COLORS)
_PALETTE = np.array([COLORS[n] for n in _PALETTE_NAMES], np.float64)  # (6, 3)


def _as_array(image) -> np.ndarray:
    """Any RGB image as (64, 64, 3) uint8, resized bilinearly when it is another size."""
    if isinstance(image, Image.Image):
        pil = image.convert("RGB")
    else:
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype != np.uint8:
            raise ValueError(f"expected an (H, W, 3) uint8 RGB array or a PIL image, got shape "
                             f"{arr.shape} dtype {arr.dtype}: convert with np.clip(x, 0, 255)"
                             ".astype(np.uint8)")
        if arr.shape[:2] == (CANVAS, CANVAS):
            return arr
        pil = Image.fromarray(arr)
    if pil.size != (CANVAS, CANVAS):
        pil = pil.resize((CANVAS, CANVAS), Image.Resampling.BILINEAR)
    return np.asarray(pil)


def _nearest_color(rgb: np.ndarray) -> str:
    return _PALETTE_NAMES[int(np.argmin(((_PALETTE - rgb) ** 2).sum(axis=1)))]


def _longest_run(counts: np.ndarray) -> tuple[int, int]:
    """[start, stop) of the longest run of lines holding >= 2 ink pixels (else all inked lines).

    Bounding by the longest run, not by every inked line, keeps a speck of noise or the edge
    of a neighbour that spills one pixel over the cell border from stretching the box.
    """
    best, start = (0, 0), None
    for i, ok in enumerate(list(counts >= 2) + [False]):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            best, start = max(best, (start, i), key=lambda r: r[1] - r[0]), None
    if best == (0, 0):
        inked = np.flatnonzero(counts)
        best = (int(inked[0]), int(inked[-1]) + 1)
    return best


def _classify_shape(mask: np.ndarray) -> str:
    """Shape of the ink in one cell, from its bounding box; mask is (16, 16) bool."""
    r0, r1 = _longest_run(mask.sum(axis=1))
    c0, c1 = _longest_run(mask.sum(axis=0))
    box = mask[r0:r1, c0:c1]
    third = max(1, box.shape[0] // 3)
    if box[:third].sum() < TRIANGLE_MAX_TOP_BOTTOM * box[-third:].sum():
        return "triangle"
    k = max(1, min(box.shape) // 4)  # 3 for a 12 x 12 box
    corners = np.concatenate([box[:k, :k], box[:k, -k:], box[-k:, :k], box[-k:, -k:]])
    return "square" if corners.mean() >= SQUARE_MIN_CORNER_FILL else "circle"


def detect(image) -> list[Obj]:
    """The objects in an image, in reading order: one per cell with enough ink.

    image: (H, W, 3) uint8 array or PIL image; other sizes are resized to 64 x 64 first.
    """
    arr = _as_array(image).astype(np.float64)
    ink = 255.0 - arr.min(axis=2)  # (64, 64)
    found = []
    for r in range(GRID):
        for c in range(GRID):
            cell = np.s_[CELL * r:CELL * (r + 1), CELL * c:CELL * (c + 1)]
            mask = ink[cell] >= INK_THRESHOLD  # (16, 16)
            if mask.sum() < MIN_OBJECT_PIXELS:
                continue
            core = ink[cell] >= CORE_INK
            pixels = arr[cell][core if core.sum() >= MIN_OBJECT_PIXELS // 3 else mask]  # (P, 3)
            found.append(Obj(r, c, _nearest_color(np.median(pixels, axis=0)), _classify_shape(mask)))
    return found


def detect_scene(image) -> Scene:
    """`detect` as a Scene (comparable with ==)."""
    return Scene(tuple(detect(image)))


# --- captions --------------------------------------------------------------------------------


def score_caption(pred, reference) -> dict:
    """Score one predicted caption against a Scene or a reference caption string.

    Returns exact (bool; surrounding whitespace of pred is ignored), parsed (bool: pred is of a canonical form), count (bool: same number
    of objects), color / shape (fractions of the reference's described slots that the
    prediction matches at the same position: the canonical order says which object each slot
    is, e.g. the left one; a group such as `three blue squares` is one slot), relation
    (bool, or None when the reference has no connector), slots (the reference's slot count).
    An unparseable prediction scores 0 on everything and never raises; a reference that is
    not a canonical caption raises ValueError.
    """
    ref_text = caption(reference) if isinstance(reference, Scene) else reference
    ref = parse_caption(ref_text)
    if ref is None:
        raise ValueError(f"reference {ref_text!r} is not a canonical ShapesWorld caption")
    n = len(ref.slots)
    pred_text = pred.strip() if isinstance(pred, str) else None
    got = parse_caption(pred_text) if pred_text is not None else None
    if got is None:
        return {"exact": False, "parsed": False, "count": False, "color": 0.0, "shape": 0.0,
                "relation": False if ref.connector else None, "slots": n}
    pairs = list(zip(got.slots, ref.slots))  # extra or missing slots count as wrong
    return {
        "exact": pred_text == ref_text,
        "parsed": True,
        "count": got.count == ref.count,
        "color": sum(g[0] == t[0] for g, t in pairs) / n,
        "shape": sum(g[1] == t[1] for g, t in pairs) / n,
        "relation": got.connector == ref.connector if ref.connector else None,
        "slots": n,
    }


def caption_report(preds, references) -> dict:
    """Caption metrics over a set; references are Scenes or reference caption strings.

    color / shape are averaged over all described slots (so a two-object caption weighs
    twice a single one); relation over the references that have a connector (None if none).
    """
    preds, references = list(preds), list(references)
    if len(preds) != len(references) or not preds:
        raise ValueError(f"got {len(preds)} predictions for {len(references)} references: "
                         "pass one prediction per reference, at least one")
    scores = [score_caption(p, r) for p, r in zip(preds, references)]
    slots = sum(s["slots"] for s in scores)
    relations = [s["relation"] for s in scores if s["relation"] is not None]
    return {
        "task": "caption",
        "n": len(scores),
        "exact_match": float(np.mean([s["exact"] for s in scores])),
        "parsed": float(np.mean([s["parsed"] for s in scores])),
        "count": float(np.mean([s["count"] for s in scores])),
        "color": sum(s["color"] * s["slots"] for s in scores) / slots,
        "shape": sum(s["shape"] * s["slots"] for s in scores) / slots,
        "relation": float(np.mean(relations)) if relations else None,
        "n_relation": len(relations),
    }


# --- drawings --------------------------------------------------------------------------------


def score_drawing(prompt: str, image) -> bool:
    """Whether a drawn image passes its prompt (spec table): every stated constraint holds
    and there are exactly as many objects as the prompt names. ValueError for a bad prompt."""
    return satisfies(detect(image), prompt_constraints(prompt))


def draw_report(prompts, images) -> dict:
    """Drawing accuracy per category and overall.

    overall is the mean of the per-category accuracies over the categories present in
    `prompts` (the spec's mean of six when all six are there), so a category with more
    prompts does not weigh more.
    """
    prompts, images = list(prompts), list(images)
    if len(prompts) != len(images) or not prompts:
        raise ValueError(f"got {len(images)} images for {len(prompts)} prompts: "
                         "pass one image per prompt, at least one")
    tally: dict[str, list[int]] = {}
    for prompt, image in zip(prompts, images):
        category = prompt_constraints(prompt).category
        tally.setdefault(category, [0, 0])
        tally[category][0] += 1
        tally[category][1] += score_drawing(prompt, image)
    per_category = {cat: {"n": tally[cat][0], "passed": tally[cat][1],
                          "accuracy": tally[cat][1] / tally[cat][0]}
                    for cat in CATEGORIES if cat in tally}
    return {
        "task": "drawing",
        "n": len(prompts),
        "categories": per_category,
        "overall": float(np.mean([v["accuracy"] for v in per_category.values()])),
    }


# --- reports as markdown ---------------------------------------------------------------------


def caption_markdown_table(report: dict) -> str:
    """A caption_report as a two-column markdown table."""
    lines = ["| metric | value |", "|---|---|"]
    for key in ("exact_match", "parsed", "count", "color", "shape", "relation"):
        value = report[key]
        lines.append(f"| {key} | {'n/a' if value is None else f'{value:.3f}'} |")
    lines.append(f"| n | {report['n']} ({report['n_relation']} with a relation) |")
    return "\n".join(lines)


def draw_markdown_table(report: dict) -> str:
    """A draw_report as a markdown table, one row per category plus the overall mean."""
    lines = ["| category | n | passed | accuracy |", "|---|---|---|---|"]
    for cat, v in report["categories"].items():
        lines.append(f"| {cat} | {v['n']} | {v['passed']} | {v['accuracy']:.3f} |")
    shown = len(report["categories"])
    lines.append(f"| overall (mean of {shown} categories) | {report['n']} | | {report['overall']:.3f} |")
    return "\n".join(lines)


_MARKDOWN = {"caption": caption_markdown_table, "drawing": draw_markdown_table}


def markdown_table(report: dict) -> str:
    """Either report as markdown, chosen by the `task` field its builder wrote."""
    task = report.get("task")
    if task not in _MARKDOWN:
        raise ValueError(f"report task {task!r} is not one of {', '.join(_MARKDOWN)}: pass the "
                         "dict that caption_report or draw_report returned")
    return _MARKDOWN[task](report)
