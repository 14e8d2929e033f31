"""`unifork-rt eval` on the micro bundle: the files and the report's shape (scores are ~0: random weights)."""

from __future__ import annotations

import json

from click.testing import CliRunner
from PIL import Image

from unifork_rt.cli import main
from unifork_rt.data import shapes_world as sw


def test_eval_caption_and_draw(micro_bundle, tmp_path):
    out = tmp_path / "ev"
    res = CliRunner().invoke(main, ["eval", "caption", "--model", str(micro_bundle), "--n", "6", "--out", str(out),
                                    "--quiet"])
    assert res.exit_code == 0, res.output
    for renderer in ("mask", "pillow", "aa"):
        rep = json.loads((out / f"caption_{renderer}.json").read_text())
        assert rep["n"] == 6 and 0 <= rep["exact_match"] <= 1 and len(rep["samples"]) == 6
        assert rep["renderer"] == renderer
        assert [s["reference"] for s in rep["samples"]] == [sw.caption(s) for s in sw.held_out_scenes(6, 0)]
    table = (out / "caption.md").read_text()
    assert "| exact_match |" in table and "| metric | mask | pillow | aa |" in table

    res = CliRunner().invoke(main, ["eval", "draw", "--model", str(micro_bundle), "--n", "2", "--out", str(out),
                                    "--cfg-scale", "2", "--quiet"])
    assert res.exit_code == 0, res.output
    rep = json.loads((out / "draw.json").read_text())
    assert set(rep["categories"]) == set(sw.CATEGORIES)
    assert all(c["n"] == 2 for c in rep["categories"].values())
    assert rep["settings"]["cfg_scale"] == 2.0
    sheet = Image.open(out / "draw_contact_sheet.png")
    assert sheet.size[1] > 6 * 64  # six category rows

    res = CliRunner().invoke(main, ["eval", "draw", "--model", str(micro_bundle), "--n", "0"])
    assert res.exit_code == 2 and "must be >= 1" in res.output


def test_mutual_knn_metric():
    import numpy as np

    from unifork_rt.model.align import mutual_knn

    rng = np.random.default_rng(0)
    a = rng.normal(size=(50, 8))
    assert mutual_knn(a, a * 3.0, k=5) == 1.0  # same geometry (cosine) -> full overlap
    rot = np.linalg.qr(rng.normal(size=(8, 8)))[0]
    assert mutual_knn(a, a @ rot, k=5) == 1.0  # rotations keep every neighbour
    chance = mutual_knn(a, rng.normal(size=(50, 8)), k=5)
    assert chance < 0.3  # independent spaces: about k / n
    # hand-made case: 4 points on a line vs the same order reversed in pairs
    x = np.array([[1, 0.0], [1, 0.1], [1, 1.0], [1, 1.1]])
    y = np.array([[1, 1.0], [1, 1.1], [1, 0.0], [1, 0.1]])  # pairs swapped: same neighbour structure
    assert mutual_knn(x, y, k=1) == 1.0


def test_align_cli_on_micro(micro_model_dir, tmp_path):
    pytest = __import__("pytest")
    pytest.importorskip("torch")
    pytest.importorskip("matplotlib")
    res = CliRunner().invoke(main, ["align", "--model", str(micro_model_dir), "--n", "12", "--k", "3",
                                    "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "align.json").read_text())
    assert len(rep["understanding"]) == len(rep["generation"]) == 4  # micro: 2 trunk + 2 branch layers
    assert all(0 <= v <= 1 for v in rep["understanding"] + rep["generation"])
    assert Image.open(tmp_path / "align.png").size[0] > 300
