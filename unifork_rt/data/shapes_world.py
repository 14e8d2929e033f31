"""ShapesWorld v1: the synthetic image-text world of /work/shared/SHAPES_WORLD.md.

A scene is up to sixteen objects on a 4 x 4 grid; its image is a pure function of the scene
(`render`) and, for the scenes the generators produce, so is its one canonical caption
(`caption`). Drawing prompts come in GenEval's six categories and may leave attributes free
(`random_prompt_example`, `prompt_constraints`).

Splits are decided per scene, not per sample: a stable hash of the scene key (the sorted
(cell, colour, shape) triples) puts about HELD_OUT_PERCENT % of all scenes in `held_out`.
Generators resample until the scene lies in the requested split, so the held-out evaluation
split is disjoint from training by scene whatever the seeds. Prompt strings are NOT disjoint
(there are only three single_object prompts); the spec asks for disjointness by scene.

All randomness comes from an explicit `np.random.Generator` passed in.

Image arrays are (Y, X, 3) uint8: Y rows top to bottom, X columns left to right.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from itertools import permutations

import numpy as np
from PIL import Image

# --- the world's constants (normative, SHAPES_WORLD.md) -------------------------------------

CANVAS = 64  # image side in pixels
CELL = 16  # cell side in pixels
GRID = 4  # cells per side
BOX = 12  # side of the box each shape is drawn in, centred in its cell
BOX_MARGIN = (CELL - BOX) // 2  # 2 px between the cell edge and the box
BACKGROUND = (255, 255, 255)

COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (230, 200, 40),
    "purple": (140, 60, 180),
    "orange": (240, 130, 30),
}
SHAPES = ("circle", "square", "triangle")
NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}
CATEGORIES = ("single_object", "two_objects", "counting", "colors", "position", "color_attr")
RELATIONS = ("left of", "right of", "above", "below")  # drawing prompts
CAPTION_CONNECTORS = ("left of", "above", "and")  # caption rule 3
SPLITS = ("train", "held_out")

# About one scene in ten is held out. Changing this (or _SPLIT_SALT) re-splits every scene,
# so a model trained under the old split would be evaluated partly on its training scenes.
HELD_OUT_PERCENT = 10
_SPLIT_SALT = b"shapesworld-v1-split"
_MAX_RESAMPLES = 10_000  # a split holds ~10% of scenes, so ~10 draws are expected


# --- scenes ----------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Obj:
    """One object: its cell (row 0 = top, col 0 = left), colour name and shape name.

    Field order makes the dataclass ordering the spec's reading order (row, then column).
    """

    row: int
    col: int
    color: str
    shape: str

    def __post_init__(self):
        if not (0 <= self.row < GRID and 0 <= self.col < GRID):
            raise ValueError(f"cell ({self.row}, {self.col}) is off the {GRID}x{GRID} grid: "
                             f"row and col must be in [0, {GRID})")
        if self.color not in COLORS:
            raise ValueError(f"unknown colour {self.color!r}; valid: {', '.join(COLORS)}")
        if self.shape not in SHAPES:
            raise ValueError(f"unknown shape {self.shape!r}; valid: {', '.join(SHAPES)}")

    @property
    def center(self) -> tuple[float, float]:
        """Centre (x, y) in pixels, used for the position relations."""
        return (CELL * self.col + CELL / 2, CELL * self.row + CELL / 2)


@dataclass(frozen=True)
class Scene:
    """A set of objects, at most one per cell, stored as a tuple in reading order.

    Any iterable of objects may be passed; it is stored sorted. Any valid arrangement can be
    rendered (tests build negative cases with it); the generators below only produce the
    1-4 object scenes the spec describes.
    """

    objects: tuple[Obj, ...]

    def __post_init__(self):
        objs = tuple(sorted(self.objects))
        cells = [(o.row, o.col) for o in objs]
        if len(set(cells)) != len(cells):
            raise ValueError(f"two objects share a cell in {cells}: at most one object per cell")
        object.__setattr__(self, "objects", objs)  # canonical order makes == and hash by content

    @property
    def key(self) -> tuple[tuple[tuple[int, int], str, str], ...]:
        """The (cell, colour, shape) triples in reading order: what the splits are keyed on."""
        return tuple(((o.row, o.col), o.color, o.shape) for o in self.objects)

    def __len__(self) -> int:
        return len(self.objects)


# --- rendering -------------------------------------------------------------------------------


def _shape_masks() -> dict[str, np.ndarray]:
    """(BOX, BOX) bool masks, sampled at pixel centres except where noted."""
    c = (np.arange(BOX) + 0.5) - BOX / 2  # pixel-centre offsets from the box centre
    dy, dx = np.meshgrid(c, c, indexing="ij")
    circle = dx**2 + dy**2 <= (BOX / 2) ** 2  # 112 px, fill 0.78
    square = np.ones((BOX, BOX), bool)
    # Triangle rows are sampled at the bottom edge of each pixel row (y = i + 1), not the
    # centre: the apex row then keeps its 2 middle pixels and the base row spans all 12, so the
    # apex touches the top edge and the base fills the bottom edge as the spec says. 84 px.
    half_width = (np.arange(BOX)[:, None] + 1) / 2
    triangle = np.abs(dx) <= half_width
    return {"circle": circle, "square": square, "triangle": triangle}


SHAPE_MASKS = _shape_masks()


def box_origin(row: int, col: int) -> tuple[int, int]:
    """Top-left (x, y) of the 12 x 12 box of a cell."""
    return (CELL * col + BOX_MARGIN, CELL * row + BOX_MARGIN)


def render(scene: Scene, shifts=None) -> np.ndarray:
    """The scene's image: (64, 64, 3) uint8, white background, flat filled shapes.

    shifts: one whole-pixel (dx, dy) per object (at most the 2 px margin), or None."""
    img = np.empty((CANVAS, CANVAS, 3), np.uint8)
    img[:] = BACKGROUND
    for i, o in enumerate(scene.objects):
        x0, y0 = box_origin(o.row, o.col)
        if shifts is not None:
            x0, y0 = x0 + int(shifts[i][0]), y0 + int(shifts[i][1])
        img[y0:y0 + BOX, x0:x0 + BOX][SHAPE_MASKS[o.shape]] = COLORS[o.color]
    return img


def render_pil(scene: Scene) -> Image.Image:
    """`render` as a 64 x 64 RGB PIL image."""
    return Image.fromarray(render(scene))


# --- canonical captions ----------------------------------------------------------------------


def _plural(shape: str) -> str:
    return shape + "s"


def caption(scene: Scene) -> str:
    """The canonical caption (spec rules 1-3); ValueError for scenes rule 4 excludes."""
    objs = scene.objects
    n = len(objs)
    if n == 1:
        o = objs[0]
        return f"a {o.color} {o.shape}"
    identical = len({(o.color, o.shape) for o in objs}) == 1
    if 2 <= n <= 4 and identical:
        return f"{NUMBER_WORDS[n]} {objs[0].color} {_plural(objs[0].shape)}"
    if n == 2:
        a, b = objs  # reading order: in one row the left object, in one column the upper one
        if a.row == b.row:
            connector = "left of"
        elif a.col == b.col:
            connector = "above"
        else:
            connector = "and"
        return f"a {a.color} {a.shape} {connector} a {b.color} {b.shape}"
    raise ValueError(
        f"a scene of {n} objects {[(o.color, o.shape) for o in objs]} has no canonical caption: "
        "ShapesWorld captions one object, 2-4 identical objects, or two objects (spec rule 4)")


# --- the phrase grammar shared by captions and prompts ---------------------------------------

_COLOR = "|".join(COLORS)
_SHAPE = "|".join(SHAPES)
_NUMBER = "|".join(NUMBER_WORDS.values())
_MENTION = (rf"(?:a (?:(?:{_COLOR}) )?(?:{_SHAPE})"
            rf"|(?:{_NUMBER}) (?:(?:{_COLOR}) )?(?:{_SHAPE})s)")
_MENTION_PARTS = re.compile(  # applied only to text _MENTION matched, so plurals agree
    rf"(?:a|(?P<number>{_NUMBER})) (?:(?P<color>{_COLOR}) )?(?P<shape>{_SHAPE})s?")
_CONNECTOR = "|".join(sorted(set(RELATIONS) | set(CAPTION_CONNECTORS)))
_PHRASE = re.compile(rf"(?P<first>{_MENTION})(?: (?P<connector>{_CONNECTOR}) (?P<second>{_MENTION}))?")
_WORD_TO_NUMBER = {w: n for n, w in NUMBER_WORDS.items()}


@dataclass(frozen=True)
class Mention:
    """One noun phrase: `a [colour] shape` (count 1) or `number [colour] shapes`."""

    count: int
    color: str | None  # None: the phrase leaves the colour free
    shape: str


def _parse_phrase(text: str) -> tuple[tuple[Mention, ...], str | None] | None:
    """Split `mention [connector mention]` into its parts, or None if it is not of that form."""
    m = _PHRASE.fullmatch(text)
    if m is None:
        return None
    mentions = []
    for part in (m["first"], m["second"]):
        if part is None:
            continue
        p = _MENTION_PARTS.fullmatch(part)
        mentions.append(Mention(_WORD_TO_NUMBER.get(p["number"], 1), p["color"], p["shape"]))
    return tuple(mentions), m["connector"]


@dataclass(frozen=True)
class ParsedCaption:
    """A caption's content: object count, described (colour, shape) slots, connector.

    slots: one per described object in caption order; a group (`three blue squares`) has one
    slot shared by all its objects. connector: `left of` / `above` / `and`, None for rules 1-2.
    """

    count: int
    slots: tuple[tuple[str, str], ...]
    connector: str | None


def parse_caption(text: str) -> ParsedCaption | None:
    """Parse a caption of the canonical forms (rules 1-3); None when it is not of them."""
    if not isinstance(text, str):
        return None
    parsed = _parse_phrase(text)
    if parsed is None:
        return None
    mentions, connector = parsed
    if any(m.color is None for m in mentions):
        return None
    if connector is None:
        (m,) = mentions
        return ParsedCaption(m.count, ((m.color, m.shape),), None)
    if connector not in CAPTION_CONNECTORS or any(m.count != 1 for m in mentions):
        return None
    return ParsedCaption(2, tuple((m.color, m.shape) for m in mentions), connector)


# --- drawing prompts -------------------------------------------------------------------------


@dataclass(frozen=True)
class PromptConstraints:
    """What a drawing prompt demands: exactly len(shapes) objects, matched one to one.

    shapes[i] / colors[i] constrain the i-th named object (colour None = free). relation, for
    `position` only, is how object 0 stands to object 1.
    """

    category: str
    shapes: tuple[str, ...]
    colors: tuple[str | None, ...]
    relation: str | None = None


_PROMPT_FORMS = ("a {shape}", "a {shape} and a {shape} (different shapes)", "{two|three|four} {shape}s",
                 "a {color} {shape}", "a {shape} {left of|right of|above|below} a {shape}",
                 "a {color} {shape} and a {color} {shape} (different colours and shapes)")


def prompt_constraints(prompt: str) -> PromptConstraints:
    """Parse a drawing prompt of the six categories; ValueError for any other string."""
    parsed = _parse_phrase(prompt) if isinstance(prompt, str) else None
    c = _constraints(parsed) if parsed is not None else None
    if c is None:
        raise ValueError(f"{prompt!r} is not a ShapesWorld drawing prompt; the forms are: "
                         + "; ".join(_PROMPT_FORMS) + f" (colours: {', '.join(COLORS)})")
    return c


def _constraints(parsed) -> PromptConstraints | None:
    mentions, connector = parsed
    colored = [m.color is not None for m in mentions]
    if connector is None:
        (m,) = mentions
        if m.count == 1:
            category = "colors" if m.color else "single_object"
            return PromptConstraints(category, (m.shape,), (m.color,))
        if m.color is None:
            return PromptConstraints("counting", (m.shape,) * m.count, (None,) * m.count)
        return None
    a, b = mentions
    if a.count != 1 or b.count != 1 or colored[0] != colored[1]:
        return None
    if connector == "and":
        if not colored[0] and a.shape != b.shape:
            return PromptConstraints("two_objects", (a.shape, b.shape), (None, None))
        if colored[0] and a.shape != b.shape and a.color != b.color:
            return PromptConstraints("color_attr", (a.shape, b.shape), (a.color, b.color))
        return None
    if connector in RELATIONS and not colored[0]:
        return PromptConstraints("position", (a.shape, b.shape), (None, None), connector)
    return None


def relation_holds(a: Obj, b: Obj, relation: str) -> bool:
    """Whether `a {relation} b` holds, by cell centres (x grows right, y grows down)."""
    (ax, ay), (bx, by) = a.center, b.center
    return {"left of": ax < bx, "right of": ax > bx, "above": ay < by, "below": ay > by}[relation]


def satisfies(objects, constraints: PromptConstraints) -> bool:
    """Whether these objects pass the prompt: exactly as many as it names, matched one to one."""
    objects = list(objects)
    if len(objects) != len(constraints.shapes):
        return False
    for perm in permutations(objects):  # at most 4! = 24 assignments
        if all(o.shape == s and (c is None or o.color == c)
               for o, s, c in zip(perm, constraints.shapes, constraints.colors)):
            if constraints.relation is None or relation_holds(perm[0], perm[1], constraints.relation):
                return True
    return False


# --- splits ----------------------------------------------------------------------------------


def is_held_out(scene: Scene) -> bool:
    """Whether the scene belongs to the held-out evaluation split (a stable hash of its key)."""
    text = ";".join(f"{r},{c},{color},{shape}" for (r, c), color, shape in scene.key)
    digest = hashlib.blake2b(text.encode(), digest_size=8, key=_SPLIT_SALT).digest()
    return int.from_bytes(digest, "big") % 100 < HELD_OUT_PERCENT


def split_of(scene: Scene) -> str:
    """`train` or `held_out`."""
    return "held_out" if is_held_out(scene) else "train"


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; valid: {', '.join(SPLITS)}")


def _in_split(rng: np.random.Generator, split: str, draw, scene_of=lambda result: result):
    """Call draw(rng) until the scene of its result lies in `split` (rejection sampling)."""
    _check_split(split)
    for _ in range(_MAX_RESAMPLES):
        result = draw(rng)
        if split_of(scene_of(result)) == split:
            return result
    raise RuntimeError(f"no {split} scene in {_MAX_RESAMPLES} draws; is HELD_OUT_PERCENT 0 or 100?")


# --- scene generators ------------------------------------------------------------------------

CAPTION_KINDS = ("one", "group", "row", "column", "other")  # drawn uniformly


def _pick(rng: np.random.Generator, seq):
    return seq[int(rng.integers(len(seq)))]


def _cells(rng: np.random.Generator, n: int) -> list[tuple[int, int]]:
    return [divmod(int(i), GRID) for i in rng.choice(GRID * GRID, size=n, replace=False)]


def _attrs(rng: np.random.Generator) -> tuple[str, str]:
    return _pick(rng, tuple(COLORS)), _pick(rng, SHAPES)


def _caption_scene_of_kind(rng: np.random.Generator, kind: str) -> Scene:
    if kind == "one":
        (r, c), = _cells(rng, 1)
        return Scene((Obj(r, c, *_attrs(rng)),))
    if kind == "group":
        n = int(rng.integers(2, 5))
        color, shape = _attrs(rng)
        return Scene(tuple(Obj(r, c, color, shape) for r, c in _cells(rng, n)))
    while True:  # two objects that differ (identical pairs are the `group` kind's)
        a, b = _attrs(rng), _attrs(rng)
        if a != b:
            break
    if kind == "row":
        row, (c1, c2) = int(rng.integers(GRID)), rng.choice(GRID, 2, replace=False)
        cells = [(row, int(c1)), (row, int(c2))]
    elif kind == "column":
        col, (r1, r2) = int(rng.integers(GRID)), rng.choice(GRID, 2, replace=False)
        cells = [(int(r1), col), (int(r2), col)]
    else:
        (r1, r2), (c1, c2) = rng.choice(GRID, 2, replace=False), rng.choice(GRID, 2, replace=False)
        cells = [(int(r1), int(c1)), (int(r2), int(c2))]
    return Scene((Obj(*cells[0], *a), Obj(*cells[1], *b)))


def random_caption_scene(rng: np.random.Generator, split: str = "train") -> Scene:
    """A captionable scene from `split`: one object, 2-4 identical objects, or two differing
    objects in one row / one column / neither; the five kinds are equally likely."""
    return _in_split(rng, split, lambda g: _caption_scene_of_kind(g, _pick(g, CAPTION_KINDS)))


def _prompt_example(rng: np.random.Generator, category: str) -> tuple[str, Scene]:
    color, shape = _attrs(rng)
    if category in ("single_object", "colors"):
        (r, c), = _cells(rng, 1)
        prompt = f"a {color} {shape}" if category == "colors" else f"a {shape}"
        return prompt, Scene((Obj(r, c, color, shape),))
    if category == "counting":
        # One colour for the whole group, so every prompt scene is also a captionable scene
        # (rule 2); mixed-colour groups have no canonical caption (rule 4).
        n = int(rng.integers(2, 5))
        return (f"{NUMBER_WORDS[n]} {_plural(shape)}",
                Scene(tuple(Obj(r, c, color, shape) for r, c in _cells(rng, n))))
    # The two-object categories name two different shapes (GenEval's two distinct objects).
    s1, s2 = (SHAPES[int(i)] for i in rng.choice(len(SHAPES), 2, replace=False))
    if category == "color_attr":
        c1, c2 = (tuple(COLORS)[int(i)] for i in rng.choice(len(COLORS), 2, replace=False))
    else:
        c1, c2 = _pick(rng, tuple(COLORS)), _pick(rng, tuple(COLORS))
    if category == "position":
        relation = _pick(rng, RELATIONS)
        while True:
            cell_a, cell_b = _cells(rng, 2)
            a, b = Obj(*cell_a, c1, s1), Obj(*cell_b, c2, s2)
            if relation_holds(a, b, relation):
                return f"a {s1} {relation} a {s2}", Scene((a, b))
    cell_a, cell_b = _cells(rng, 2)
    scene = Scene((Obj(*cell_a, c1, s1), Obj(*cell_b, c2, s2)))
    if category == "two_objects":
        return f"a {s1} and a {s2}", scene
    if category == "color_attr":
        return f"a {c1} {s1} and a {c2} {s2}", scene
    raise ValueError(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")


def random_prompt_example(rng: np.random.Generator, category: str,
                          split: str = "train") -> tuple[str, Scene]:
    """A drawing prompt of `category` and a `split` scene that passes it.

    Attributes the prompt leaves free (colours, cells, which object is where) are sampled.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown category {category!r}; valid: {', '.join(CATEGORIES)}")
    return _in_split(rng, split, lambda g: _prompt_example(g, category), scene_of=lambda r: r[1])


@dataclass(frozen=True)
class PromptExample:
    """One evaluation item: a prompt of `category` and a held-out scene that passes it."""

    category: str
    prompt: str
    scene: Scene


def held_out_scenes(n: int, seed: int) -> list[Scene]:
    """n held-out caption scenes, i.i.d. (small kinds such as single objects repeat)."""
    rng = np.random.default_rng(seed)
    return [random_caption_scene(rng, "held_out") for _ in range(n)]


def held_out_prompts(n_per_category: int, seed: int) -> list[PromptExample]:
    """n_per_category held-out prompt examples for each category, in CATEGORIES order."""
    rng = np.random.default_rng(seed)
    return [PromptExample(cat, *random_prompt_example(rng, cat, "held_out"))
            for cat in CATEGORIES for _ in range(n_per_category)]


# --- text corpus -----------------------------------------------------------------------------


def text_corpus() -> list[str]:
    """Every caption and every prompt string the world can produce, sorted (about 1,200).

    Enough for a tokenizer to see every word, every plural and every connector in context.
    """
    attrs = [(c, s) for c in COLORS for s in SHAPES]
    out = {f"a {c} {s}" for c, s in attrs}
    out |= {f"{w} {c} {_plural(s)}" for c, s in attrs for w in NUMBER_WORDS.values()}
    out |= {f"a {c1} {s1} {conn} a {c2} {s2}" for c1, s1 in attrs for c2, s2 in attrs
            for conn in CAPTION_CONNECTORS if (c1, s1) != (c2, s2)}
    out |= {f"a {s}" for s in SHAPES}
    out |= {f"{w} {_plural(s)}" for s in SHAPES for w in NUMBER_WORDS.values()}
    out |= {f"a {s1} {rel} a {s2}" for s1 in SHAPES for s2 in SHAPES for rel in RELATIONS + ("and",)
            if s1 != s2}  # the generators name two different shapes
    return sorted(out)
