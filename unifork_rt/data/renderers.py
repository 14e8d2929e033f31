"""Three independent rasterizers of ShapesWorld scenes, for evaluation across renderings
and for rendering variety in training.

The spec (docs/SHAPES_WORLD.md) fixes the geometry, not the rasterizer: "no anti-aliasing
requirement: either is acceptable". A model that reads only one rasterizer's pixels is
fitted to that rasterizer, so captions are scored on all three:

    mask     shapes_world.render: boolean masks sampled at pixel centres (the package's own)
    pillow   PIL.ImageDraw ellipse / rectangle / polygon at 1x, no anti-aliasing, with the
             box's corners passed as they are written in the spec, [x0, y0, x0 + 12, y0 + 12]
             (Pillow draws the far edge inclusively, so shapes come out 13 px wide)
    aa       the same primitives drawn at 4x and box-filtered down (anti-aliased edges),
             each object shifted by its own sub-pixel offset (quarter pixels)

`render_variant` draws with a random rasterizer, shift and rounding convention: the
training data's rendering variety.

Image arrays are (Y, X, 3) uint8, as in shapes_world.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from . import shapes_world as sw

RENDERERS = ("mask", "pillow", "aa")
SUPERSAMPLE = 4  # aa draws at 4x: shifts come in quarter pixels
EVAL_MAX_SHIFT = 0.5  # px: the aa evaluation rendering shifts each object by up to half a pixel
TRAIN_MAX_SHIFT = 1.0  # px: training variants shift by up to a pixel ("a pixel of shift is fine")


def _draw_shape(draw: ImageDraw.ImageDraw, shape: str, x0: float, y0: float, size: float, inset: float,
                fill: tuple[int, int, int]) -> None:
    """One filled shape in the box [x0, x0 + size) x [y0, y0 + size), Pillow coordinates.

    inset is subtracted from the far (inclusive) end: 1 px at 1x draws exactly `size` pixels."""
    x1, y1 = x0 + size - inset, y0 + size - inset
    if shape == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    else:  # apex at the middle of the top edge, base along the bottom edge
        draw.polygon([((x0 + x1) / 2, y0), (x0, y1), (x1, y1)], fill=fill)


def render_pillow(scene: sw.Scene, shifts=None, inset: float = 0.0) -> np.ndarray:
    """ImageDraw at 1x, no anti-aliasing. shifts: one integer (dx, dy) per object, or None;
    inset 0 passes the box's far corner as written (13 px shapes), 1 draws exactly 12 px."""
    img = Image.new("RGB", (sw.CANVAS, sw.CANVAS), sw.BACKGROUND)
    draw = ImageDraw.Draw(img)
    for i, o in enumerate(scene.objects):
        dx, dy = shifts[i] if shifts is not None else (0, 0)
        x0, y0 = sw.box_origin(o.row, o.col)
        _draw_shape(draw, o.shape, x0 + dx, y0 + dy, sw.BOX, inset, sw.COLORS[o.color])
    return np.asarray(img)


def render_aa(scene: sw.Scene, shifts=None) -> np.ndarray:
    """Drawn at 4x and box-filtered down. shifts: one (dx, dy) in pixels per object (multiples
    of 1/4 are exact), or None."""
    s = SUPERSAMPLE
    img = Image.new("RGB", (sw.CANVAS * s, sw.CANVAS * s), sw.BACKGROUND)
    draw = ImageDraw.Draw(img)
    for i, o in enumerate(scene.objects):
        dx, dy = shifts[i] if shifts is not None else (0.0, 0.0)
        x0, y0 = sw.box_origin(o.row, o.col)
        _draw_shape(draw, o.shape, round((x0 + dx) * s), round((y0 + dy) * s), sw.BOX * s, 1, sw.COLORS[o.color])
    return np.asarray(img.reduce(s))  # reduce = box filter over s x s blocks


def _random_shifts(rng: np.random.Generator, n: int, max_shift: float, step: float) -> list[tuple[float, float]]:
    k = int(round(max_shift / step))
    return [tuple(float(v) * step for v in rng.integers(-k, k + 1, size=2)) for _ in range(n)]


def render_with(scene: sw.Scene, renderer: str, rng: np.random.Generator | None = None) -> np.ndarray:
    """The scene as one of RENDERERS draws it for evaluation; aa takes its per-object sub-pixel
    shifts (up to EVAL_MAX_SHIFT) from rng (a fixed generator when None)."""
    if renderer == "mask":
        return sw.render(scene)
    if renderer == "pillow":
        return render_pillow(scene)
    if renderer == "aa":
        rng = rng if rng is not None else np.random.default_rng(0)
        return render_aa(scene, _random_shifts(rng, len(scene), EVAL_MAX_SHIFT, 1 / SUPERSAMPLE))
    raise ValueError(f"unknown renderer {renderer!r}; valid: {', '.join(RENDERERS)}")


def render_variant(scene: sw.Scene, rng: np.random.Generator) -> np.ndarray:
    """A random rendering for training: a random rasterizer, per-object shifts of up to
    TRAIN_MAX_SHIFT (whole pixels for mask and pillow, quarter pixels for aa) and, for pillow,
    either end-coordinate convention (a box of 12 or 13 px)."""
    kind = RENDERERS[int(rng.integers(len(RENDERERS)))]
    n = len(scene)
    if kind == "aa":
        return render_aa(scene, _random_shifts(rng, n, TRAIN_MAX_SHIFT, 1 / SUPERSAMPLE))
    shifts = _random_shifts(rng, n, TRAIN_MAX_SHIFT, 1.0) if rng.random() < 0.5 else None
    if kind == "pillow":
        return render_pillow(scene, shifts, inset=float(rng.integers(0, 2)))
    return sw.render(scene, shifts)
