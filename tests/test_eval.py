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
    rep = json.loads((out / "caption.json").read_text())
    assert rep["n"] == 6 and 0 <= rep["exact_match"] <= 1 and len(rep["samples"]) == 6
    assert {s["reference"] for s in rep["samples"]} <= {sw.caption(s) for s in sw.held_out_scenes(6, 0)}
    assert "| exact_match |" in (out / "caption.md").read_text()

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
