"""ShapesWorld scorers: the detector, drawing scoring and caption scoring."""

import numpy as np
import pytest
from PIL import Image, ImageFilter

from unifork_rt.data import scoring, shapes_world as sw
from unifork_rt.data.shapes_world import Obj, Scene


def _scenes(seed, n):
    """Random caption scenes plus prompt scenes plus a few full 16-object grids."""
    rng = np.random.default_rng(seed)
    scenes = [sw.random_caption_scene(rng) for _ in range(n)]
    scenes += [sw.random_prompt_example(rng, cat)[1] for cat in sw.CATEGORIES for _ in range(10)]
    colors, shapes = list(sw.COLORS), list(sw.SHAPES)
    for _ in range(5):
        scenes.append(Scene(tuple(Obj(r, c, colors[rng.integers(6)], shapes[rng.integers(3)])
                                  for r in range(4) for c in range(4))))
    return scenes


def _noisy(img, rng, sigma):
    return np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)


def _blur(img, radius=1.0):
    return np.asarray(Image.fromarray(img).filter(ImageFilter.GaussianBlur(radius)))


def _tinted(img, rng, delta):
    """Shift each object's colour by up to delta per channel (the background stays white)."""
    out = img.astype(int)
    for r in range(4):
        for c in range(4):
            cell = out[16 * r:16 * r + 16, 16 * c:16 * c + 16]
            ink = (cell != 255).any(axis=2)
            cell[ink] += rng.integers(-delta, delta + 1, 3)
    return np.clip(out, 0, 255).astype(np.uint8)


# --- detector --------------------------------------------------------------------------------


def test_detect_recovers_rendered_scenes_exactly():
    scenes = _scenes(0, 300)
    for scene in scenes:
        found = scoring.detect(sw.render(scene))
        assert found == list(scene.objects), (scene, found)


@pytest.mark.parametrize("damage", ["noise", "blur", "blur+noise", "tint", "shift", "upscaled"])
def test_detect_tolerates_imperfect_drawings(damage):
    rng = np.random.default_rng(1)
    for scene in _scenes(1, 150):
        img = sw.render(scene)
        if damage == "noise":
            img = _noisy(img, rng, 12)
        elif damage == "blur":
            img = _blur(img)
        elif damage == "blur+noise":
            img = _noisy(_blur(img), rng, 8)
        elif damage == "tint":
            img = _tinted(img, rng, 10)  # the strict colour rule allows 18 RGB units off a palette colour
        elif damage == "shift":  # the whole drawing one pixel right and down
            img = np.pad(img, ((1, 0), (1, 0), (0, 0)), constant_values=255)[:64, :64]
        else:  # a 2x bicubic render handed over as a PIL image
            img = Image.fromarray(img).resize((128, 128), Image.Resampling.BICUBIC)
        assert scoring.detect_scene(img) == scene, (damage, scene)


def test_detect_ignores_faint_marks_and_specks():
    img = np.full((64, 64, 3), 235, np.uint8)  # an off-white background
    img[5, 5] = img[40, 20] = img[41, 20] = (0, 0, 0)  # a few stray dark pixels
    img[20:30, 20:30] = (215, 215, 215)  # a faint grey smudge
    assert scoring.detect(img) == []


def test_detect_input_checks():
    with pytest.raises(ValueError, match="uint8"):
        scoring.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        scoring.detect(np.zeros((64, 64), np.uint8))
    rgba = sw.render_pil(Scene((Obj(1, 1, "blue", "triangle"),))).convert("RGBA")
    assert scoring.detect(rgba) == [Obj(1, 1, "blue", "triangle")]


# --- drawings --------------------------------------------------------------------------------


@pytest.mark.parametrize("category", sw.CATEGORIES)
def test_every_prompt_example_passes_its_own_prompt(category):
    for seed in range(60):
        prompt, scene = sw.random_prompt_example(np.random.default_rng(seed), category)
        assert scoring.score_drawing(prompt, sw.render(scene)), (prompt, scene)


def _img(*objects):
    return sw.render(Scene(tuple(Obj(*o) for o in objects)))


@pytest.mark.parametrize("prompt,objects,passes", [
    ("a circle", [(0, 0, "red", "circle")], True),
    ("a circle", [(0, 0, "red", "circle"), (3, 3, "red", "circle")], False),  # extra object
    ("a circle", [(0, 0, "red", "square")], False),  # wrong shape
    ("a circle", [], False),  # nothing drawn
    ("a red circle", [(2, 2, "red", "circle")], True),
    ("a red circle", [(2, 2, "orange", "circle")], False),  # wrong colour
    ("a circle and a square", [(0, 0, "red", "square"), (1, 1, "blue", "circle")], True),
    ("a circle and a square", [(0, 0, "red", "circle"), (1, 1, "blue", "circle")], False),
    ("a circle and a square", [(0, 0, "red", "circle"), (1, 1, "blue", "square"),
                               (2, 2, "blue", "triangle")], False),  # extra object
    ("three triangles", [(0, 0, "red", "triangle"), (0, 1, "blue", "triangle"),
                         (3, 3, "red", "triangle")], True),  # colour left free
    ("three triangles", [(0, 0, "red", "triangle"), (0, 1, "red", "triangle")], False),
    ("three triangles", [(0, 0, "red", "triangle"), (0, 1, "red", "triangle"),
                         (0, 2, "red", "triangle"), (0, 3, "red", "triangle")], False),
    ("three triangles", [(0, 0, "red", "triangle"), (0, 1, "red", "triangle"),
                         (0, 2, "red", "circle")], False),
    ("a circle left of a square", [(3, 0, "red", "circle"), (0, 1, "red", "square")], True),
    ("a circle left of a square", [(0, 2, "red", "circle"), (0, 1, "red", "square")], False),
    ("a circle left of a square", [(0, 1, "red", "circle"), (2, 1, "red", "square")], False),
    ("a circle right of a square", [(0, 2, "red", "circle"), (0, 1, "red", "square")], True),
    ("a circle above a square", [(0, 3, "red", "circle"), (1, 0, "red", "square")], True),
    ("a circle above a square", [(2, 0, "red", "circle"), (1, 0, "red", "square")], False),
    ("a circle below a square", [(2, 0, "red", "circle"), (1, 0, "red", "square")], True),
    ("a red circle and a blue square", [(0, 0, "blue", "square"), (3, 0, "red", "circle")], True),
    ("a red circle and a blue square", [(0, 0, "red", "square"), (3, 0, "blue", "circle")], False),
    ("a red circle and a blue square", [(0, 0, "blue", "square"), (3, 0, "red", "circle"),
                                        (3, 1, "red", "circle")], False),
])
def test_drawing_cases(prompt, objects, passes):
    assert scoring.score_drawing(prompt, _img(*objects)) is passes


def test_score_drawing_rejects_unknown_prompts():
    with pytest.raises(ValueError, match="not a ShapesWorld drawing prompt"):
        scoring.score_drawing("a circle next to a square", _img((0, 0, "red", "circle")))


def test_draw_report_overall_is_the_mean_of_categories():
    good = _img((0, 0, "red", "circle"))
    prompts = ["a circle"] * 3 + ["a red square", "a red square"]
    images = [good, good, good, _img((0, 0, "red", "square")), good]
    report = scoring.draw_report(prompts, images)
    assert report["categories"] == {
        "single_object": {"n": 3, "passed": 3, "accuracy": 1.0},
        "colors": {"n": 2, "passed": 1, "accuracy": 0.5},
    }
    assert report["overall"] == pytest.approx(0.75)  # not 4 / 5
    assert report["n"] == 5
    table = scoring.markdown_table(report)
    assert "| colors | 2 | 1 | 0.500 |" in table
    assert "overall (mean of 2 categories)" in table and "0.750" in table
    with pytest.raises(ValueError, match="one image per prompt"):
        scoring.draw_report(prompts, images[:-1])


def test_draw_report_on_held_out_renders_is_perfect():
    examples = sw.held_out_prompts(10, seed=0)
    report = scoring.draw_report([e.prompt for e in examples],
                                 [sw.render(e.scene) for e in examples])
    assert list(report["categories"]) == list(sw.CATEGORIES)
    assert report["overall"] == 1.0


# --- captions --------------------------------------------------------------------------------

PAIR = Scene((Obj(1, 0, "red", "circle"), Obj(1, 3, "blue", "square")))  # "... left of ..."


def test_score_caption_exact():
    s = scoring.score_caption("a red circle left of a blue square", PAIR)
    assert s == {"exact": True, "parsed": True, "count": True, "color": 1.0, "shape": 1.0,
                 "relation": True, "slots": 2}
    assert scoring.score_caption(" a red circle left of a blue square\n", PAIR)["exact"]


def test_score_caption_partially_wrong():
    s = scoring.score_caption("a red circle above a green square", PAIR)
    assert s == {"exact": False, "parsed": True, "count": True, "color": 0.5, "shape": 1.0,
                 "relation": False, "slots": 2}
    # Swapping the objects keeps the connector but puts each attribute on the wrong object.
    s = scoring.score_caption("a blue square left of a red circle", PAIR)
    assert (s["relation"], s["color"], s["shape"]) == (True, 0.0, 0.0)
    # A group caption for a pair: right count, first slot right, second slot missing.
    s = scoring.score_caption("two red circles", PAIR)
    assert (s["count"], s["color"], s["shape"], s["relation"]) == (True, 0.5, 0.5, False)


def test_score_caption_groups_and_singles():
    s = scoring.score_caption("two blue squares", "three blue squares")
    assert (s["exact"], s["count"], s["color"], s["shape"], s["relation"]) == \
        (False, False, 1.0, 1.0, None)
    s = scoring.score_caption("a red triangle", "a red circle")
    assert (s["count"], s["color"], s["shape"]) == (True, 1.0, 0.0)


@pytest.mark.parametrize("pred", ["", "a red circle.", "blah blah", "a red circle left of",
                                  "A red circle left of a blue square", None, 42,
                                  "a red circle right of a blue square"])
def test_unparseable_caption_scores_zero_without_raising(pred):
    s = scoring.score_caption(pred, PAIR)
    assert s == {"exact": False, "parsed": False, "count": False, "color": 0.0, "shape": 0.0,
                 "relation": False, "slots": 2}
    assert scoring.score_caption(pred, "a red circle")["relation"] is None


def test_score_caption_rejects_bad_references():
    with pytest.raises(ValueError, match="not a canonical"):
        scoring.score_caption("a red circle", "a circle")
    with pytest.raises(ValueError, match="no canonical caption"):
        scoring.score_caption("a red circle", Scene(()))


def test_caption_report():
    refs = [PAIR, "three blue squares", "a red circle"]
    preds = ["a red circle above a green square", "three blue squares", "gibberish"]
    r = scoring.caption_report(preds, refs)
    assert r["n"] == 3 and r["n_relation"] == 1
    assert r["exact_match"] == pytest.approx(1 / 3)
    assert r["parsed"] == pytest.approx(2 / 3)
    assert r["count"] == pytest.approx(2 / 3)
    assert r["color"] == pytest.approx((1 + 1 + 0) / 4)  # slot-weighted: 2 + 1 + 1 slots
    assert r["shape"] == pytest.approx((2 + 1 + 0) / 4)
    assert r["relation"] == 0.0
    table = scoring.markdown_table(r)
    assert "| exact_match | 0.333 |" in table and "| relation | 0.000 |" in table
    no_relation = scoring.caption_report(["a red circle"], ["a red circle"])
    assert no_relation["relation"] is None and "| relation | n/a |" in scoring.markdown_table(no_relation)
    with pytest.raises(ValueError, match="one prediction per reference"):
        scoring.caption_report(preds, refs[:2])


def test_captions_of_detected_scenes_match_their_references():
    """Detector + caption() as a reference captioner scores perfectly on held-out renders."""
    scenes = sw.held_out_scenes(200, seed=5)
    preds = [sw.caption(scoring.detect_scene(sw.render(s))) for s in scenes]
    r = scoring.caption_report(preds, scenes)
    assert r["exact_match"] == r["color"] == r["shape"] == r["count"] == r["relation"] == 1.0


def test_markdown_table_rejects_unknown_reports():
    with pytest.raises(ValueError, match="caption, drawing"):
        scoring.markdown_table({"accuracy": 1.0})


# --- the strict rules: renderings pass, objects a person would refuse fail -------------------


@pytest.mark.parametrize("renderer", ["mask", "pillow", "aa"])
def test_detect_reads_every_renderer(renderer):
    from unifork_rt.data import renderers

    rng = np.random.default_rng(2)
    for scene in _scenes(2, 150):
        img = renderers.render_with(scene, renderer, rng)
        assert scoring.detect_scene(img) == scene, (renderer, scene, scoring.read_cells(img))
        assert scoring.detect_scene(_noisy(_blur(img, 0.8), rng, 6)) == scene, (renderer, scene)


def _one(shape="circle", color="red"):
    return sw.render(Scene((Obj(1, 1, color, shape),)))


def _recolor(img, where, color):
    out = img.copy()
    ink = (out != 255).any(axis=2)
    out[ink & where] = sw.COLORS[color]
    return out


_Y, _X = np.mgrid[0:64, 0:64]
_QUADRANTS = [(_Y < 24) & (_X >= 24), (_Y >= 24) & (_X < 24), (_Y >= 24) & (_X >= 24)]


@pytest.mark.parametrize("name", ["quadrants", "two_tone", "drift", "between", "bar", "two_blobs"])
def test_detect_refuses_what_a_person_would(name):
    if name == "quadrants":  # the circle of red, green and blue quadrants
        img = _recolor(_recolor(_one("circle", "green"), _QUADRANTS[0], "red"), _QUADRANTS[1], "blue")
        assert not scoring.score_drawing("a green circle", img)
    elif name == "two_tone":  # top orange, bottom yellow
        img = _recolor(_one("triangle", "orange"), _Y >= 24, "yellow")
    elif name == "drift":  # 15% of the pixels yellow, scattered
        img = _recolor(_one("triangle", "orange"), np.random.default_rng(0).random((64, 64)) < 0.15, "yellow")
    elif name == "between":  # one flat colour, half-way between orange and yellow
        mid = tuple((np.array(sw.COLORS["orange"]) + sw.COLORS["yellow"]) // 2)
        img = _one("triangle", "orange")
        img[(img != 255).any(axis=2)] = mid
    elif name == "bar":  # 12 x 6: no shape of the world
        img = np.full((64, 64, 3), 255, np.uint8)
        img[18:30, 20:26] = sw.COLORS["red"]
    else:
        img = np.full((64, 64, 3), 255, np.uint8)
        img[18:24, 18:24] = img[25:30, 25:30] = sw.COLORS["red"]
    found = scoring.detect(img)
    assert len(found) == 1 and isinstance(found[0], scoring.UnclearObj), (name, found)
    assert scoring.detect_scene(img) is None
    for prompt in ("a circle", "a triangle", "a square"):
        assert not scoring.score_drawing(prompt, img)


def test_strict_rules_are_not_fooled_by_one_object_per_colour():
    """Two clean objects of different colours in separate cells are two objects, not a mix."""
    img = sw.render(Scene((Obj(0, 0, "orange", "triangle"), Obj(0, 1, "yellow", "triangle"))))
    assert scoring.detect(img) == [Obj(0, 0, "orange", "triangle"), Obj(0, 1, "yellow", "triangle")]
