"""Scorers for ShapesWorld: an object detector, caption scoring and drawing scoring.

The detector is written from the spec (docs/SHAPES_WORLD.md) alone and is meant for
model-drawn images too: tolerant of blur, anti-aliasing, slight noise and a pixel or two of
shift, strict about what a person would refuse: an object must be one palette colour, one
region and one recognisable shape (the rules are above `read_cells`).

Image arrays are (Y, X, 3) uint8, as in shapes_world.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from .shapes_world import (
    BACKGROUND, BOX, BOX_MARGIN, CANVAS, CATEGORIES, CELL, COLORS, GRID, SHAPE_MASKS, Obj, Scene,
    caption, parse_caption, prompt_constraints, satisfies,
)

# --- detector --------------------------------------------------------------------------------
#
# Strict: an object counts only as a person would see it (docs/SHAPES_WORLD.md, "Scoring a
# drawing"). Per cell with enough ink:
#   colour  every inked pixel is labelled with the palette colour whose white-to-colour line
#           it lies nearest (so an anti-aliased or blurred edge, a blend of the colour with the
#           white background, keeps its colour); the object's colour is the majority label, and
#           at least COLOR_PURITY of its inked pixels must carry it: quadrants or halves of
#           other colours, or pixels drifting between orange and yellow, fail.
#   region  the inked pixels form one region: the largest 8-connected component holds at
#           least CONNECTED_SHARE of them.
#   shape   the inked extent is 12 +- BOX_TOLERANCE px each way (a 12 x 8 bar is no shape of
#           the world), and the coverage map is compared with the three shapes at every
#           quarter-pixel shift of up to MAX_SHAPE_SHIFT px: the best soft intersection-over-
#           union must reach MIN_SHAPE_IOU and beat the best other shape by SHAPE_MARGIN (a
#           blob between a circle and a square is neither).
# A cell with ink that fails a rule holds an unrecognisable object: `detect` reports it with
# colour and shape None, so it counts as an object and matches no prompt.

# "Ink" is how far a pixel is from white in its palest channel: 255 - min(R, G, B). Every
# palette colour has ink 195..225 and the background 0, so a threshold near half of that
# keeps blurred shapes at about their true outline and ignores noise of a few tens of levels.
INK_THRESHOLD = 100
MIN_OBJECT_PIXELS = 24  # the smallest shape (triangle) has 84 px; a cell of noise has ~0
COLOR_PURITY = 0.9
CONNECTED_SHARE = 0.9
MAX_SHAPE_SHIFT = 2
MIN_SHAPE_IOU = 0.6
SHAPE_MARGIN = 0.03
BOX_TOLERANCE = 3  # px: every shape fills a 12 x 12 box; the inked extent must be 9..15 each way
# The object's colour: the median of its core pixels (coverage >= CORE_COVERAGE) must lie
# within COLOR_TOLERANCE (RGB units) of its palette colour's segment from white (lighter by
# blur is fine): a flat colour 40% of the way from orange to yellow (71 apart) is neither.
CORE_COVERAGE = 0.8
COLOR_TOLERANCE = 18.0

_PALETTE_NAMES = tuple(COLORS)
_PALETTE = np.array([COLORS[n] for n in _PALETTE_NAMES], np.float64)  # (6, 3)
_WHITE = np.array(BACKGROUND, np.float64)


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


def line_distances(pixels: np.ndarray) -> np.ndarray:
    """(P, 3) RGB -> (P, 6): RGB distance of each pixel from each palette colour's segment
    from white. A pixel blended with the white background, w + a (c - w) with a in [0, 1],
    lies on its colour's segment, so soft edges and blur keep their colour."""
    d = _PALETTE - _WHITE  # (6, 3)
    v = pixels.astype(np.float64)[:, None, :] - _WHITE  # (P, 1, 3)
    a = np.clip((v * d).sum(-1) / (d * d).sum(-1), 0.0, 1.0)  # (P, 6)
    return np.sqrt(((v - a[..., None] * d) ** 2).sum(-1))


def color_labels(pixels: np.ndarray) -> np.ndarray:
    """(P, 3) RGB -> (P,) palette index: the colour whose segment from white passes nearest."""
    return line_distances(pixels).argmin(axis=1)


def _extent(mask: np.ndarray) -> tuple[int, int]:
    ys, xs = np.nonzero(mask)
    return int(ys.max() - ys.min() + 1), int(xs.max() - xs.min() + 1)


def _largest_component(mask: np.ndarray) -> int:
    """Pixels in the largest 8-connected component of a small bool mask."""
    seen = np.zeros_like(mask)
    best = 0
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        seen[y, x] = True
        stack, size = [(y, x)], 0
        while stack:
            cy, cx = stack.pop()
            size += 1
            for ny in range(max(cy - 1, 0), min(cy + 2, mask.shape[0])):
                for nx in range(max(cx - 1, 0), min(cx + 2, mask.shape[1])):
                    if mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        best = max(best, size)
    return best


def _shape_templates() -> dict[str, np.ndarray]:
    """(shifts, CELL * CELL) float coverage: each shape drawn at 4x in a cell and box-filtered
    down, at every quarter-pixel shift up to MAX_SHAPE_SHIFT (hard and soft edges alike), in a
    box of 12 px and of 13 px (Pillow draws a box's far corner inclusively: 13 px shapes)."""
    s = 4
    steps = range(-MAX_SHAPE_SHIFT * s, MAX_SHAPE_SHIFT * s + 1)
    out = {}
    for name in SHAPE_MASKS:
        stack = []
        for dy in steps:
            for dx in steps:
                for side in (BOX * s, (BOX + 1) * s):
                    img = Image.new("L", (CELL * s, CELL * s), 0)
                    draw = ImageDraw.Draw(img)
                    x0, y0 = BOX_MARGIN * s + dx, BOX_MARGIN * s + dy
                    x1, y1 = x0 + side - 1, y0 + side - 1
                    if name == "circle":
                        draw.ellipse([x0, y0, x1, y1], fill=255)
                    elif name == "square":
                        draw.rectangle([x0, y0, x1, y1], fill=255)
                    else:
                        draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=255)
                    stack.append(np.asarray(img.reduce(s), np.float32).reshape(-1) / 255.0)
        out[name] = np.stack(stack)
    return out


_TEMPLATES = _shape_templates()


def shape_scores(coverage: np.ndarray) -> dict[str, float]:
    """Best soft intersection-over-union (sum of minima / sum of maxima) of a (CELL, CELL)
    coverage map in [0, 1] with each shape, over its shifts."""
    flat = coverage.reshape(1, -1).astype(np.float32)
    return {name: float((np.minimum(t, flat).sum(1) / np.maximum(t, flat).sum(1)).max())
            for name, t in _TEMPLATES.items()}


@dataclass(frozen=True)
class CellReading:
    """What the detector saw in one inked cell, and why it did or did not accept an object."""

    row: int
    col: int
    color: str  # majority colour label
    purity: float  # share of inked pixels with that label
    off_palette: float  # RGB distance of the core's median colour from that colour's segment
    connected: float  # share of inked pixels in the largest connected region
    shape: str  # best-matching shape
    iou: float  # its intersection-over-union
    margin: float  # over the best other shape
    extent: tuple[int, int]  # (height, width) of the inked pixels' bounding box

    @property
    def problems(self) -> list[str]:
        out = []
        if self.purity < COLOR_PURITY:
            out.append(f"mixed colours ({self.purity:.0%} {self.color})")
        if self.off_palette > COLOR_TOLERANCE:
            out.append(f"not a palette colour ({self.off_palette:.0f} from {self.color})")
        if self.connected < CONNECTED_SHARE:
            out.append(f"not one region ({self.connected:.0%} connected)")
        if any(abs(e - BOX) > BOX_TOLERANCE for e in self.extent):
            out.append(f"not the size of a shape ({self.extent[0]} x {self.extent[1]} px, shapes are {BOX} x {BOX})")
        if self.iou < MIN_SHAPE_IOU or self.margin < SHAPE_MARGIN:
            out.append(f"no clear shape (best {self.shape} IoU {self.iou:.2f}, margin {self.margin:.2f})")
        return out

    @property
    def object(self) -> Obj | None:
        return None if self.problems else Obj(self.row, self.col, self.color, self.shape)


def read_cells(image) -> list[CellReading]:
    """A CellReading for every cell with enough ink, in reading order."""
    arr = _as_array(image)
    ink = 255 - arr.min(axis=2).astype(np.int32)  # (64, 64)
    out = []
    for r in range(GRID):
        for c in range(GRID):
            cell = np.s_[CELL * r:CELL * (r + 1), CELL * c:CELL * (c + 1)]
            mask = ink[cell] >= INK_THRESHOLD  # (16, 16)
            n = int(mask.sum())
            if n < MIN_OBJECT_PIXELS:
                continue
            labels = color_labels(arr[cell][mask])
            counts = np.bincount(labels, minlength=len(_PALETTE_NAMES))
            color = int(counts.argmax())
            coverage = np.clip(ink[cell] / (255.0 - _PALETTE[color].min()), 0.0, 1.0)
            core = coverage >= CORE_COVERAGE
            median = np.median(arr[cell][core if core.any() else mask].astype(np.float64), axis=0)
            off = float(line_distances(median[None])[0, color])
            ious = shape_scores(coverage)
            ranked = sorted(ious, key=ious.get, reverse=True)
            out.append(CellReading(r, c, _PALETTE_NAMES[color], float(counts.max() / n), off,
                                   _largest_component(mask) / n, ranked[0], ious[ranked[0]],
                                   ious[ranked[0]] - ious[ranked[1]], _extent(mask)))
    return out


def detect(image) -> list[Obj | UnclearObj]:
    """The objects in an image, in reading order: one per cell with enough ink. A cell whose
    ink breaks a rule above is an `UnclearObj` (it counts, and matches no prompt).

    image: (H, W, 3) uint8 array or PIL image; other sizes are resized to 64 x 64 first.
    """
    return [r.object or UnclearObj(r.row, r.col, tuple(r.problems)) for r in read_cells(image)]


@dataclass(frozen=True)
class UnclearObj:
    """Ink in a cell that is not an object a person would name (see CellReading.problems)."""

    row: int
    col: int
    problems: tuple[str, ...]
    color = None
    shape = None


def detect_scene(image) -> Scene | None:
    """`detect` as a Scene (comparable with ==), or None when any inked cell is unclear."""
    objs = detect(image)
    if any(isinstance(o, UnclearObj) for o in objs):
        return None
    return Scene(tuple(objs))


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


def caption_renderers_table(reports: dict[str, dict]) -> str:
    """Caption reports of one model on several renderings (renderer -> caption_report) as one
    markdown table, a column per rendering."""
    names = list(reports)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for key in ("exact_match", "parsed", "count", "color", "shape", "relation"):
        cells = ["n/a" if reports[r][key] is None else f"{reports[r][key]:.3f}" for r in names]
        lines.append(f"| {key} | " + " | ".join(cells) + " |")
    lines.append("| n | " + " | ".join(str(reports[r]["n"]) for r in names) + " |")
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
