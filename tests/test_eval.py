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



def test_training_monitor_scores_what_eval_scores(micro_model_dir, micro_bundle, tmp_path):
    """The training-time figures of a checkpoint (its model in memory, the PyTorch backend) are
    the ones `unifork-rt eval` gives its exported bundle (ONNX Runtime): one loop, one sampler."""
    import numpy as np
    import pytest

    pytest.importorskip("torch")
    from unifork_rt import shapesbench
    from unifork_rt.export.torch_backend import torch_runtime
    from unifork_rt.model.checkpoint import load_model
    from unifork_rt.runtime.pipeline import DrawSettings, UniForkRuntime
    from unifork_rt.train import monitor
    from unifork_rt.train.tokenizer import load_text_tokenizer

    model, tok = load_model(micro_model_dir), load_text_tokenizer(micro_model_dir / "tokenizer.json")
    out = tmp_path / "ev"
    res = CliRunner().invoke(main, ["eval", "caption", "--model", str(micro_bundle), "--n", "8", "--seed", "3",
                                    "--renderer", "mask", "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    want = json.loads((out / "caption_mask.json").read_text())
    got = shapesbench.eval_caption(torch_runtime(model, tok), 8, seed=3)
    assert got["samples"] == want["samples"]  # caption by caption, not only the (near zero) scores
    del want["samples"]
    assert monitor.caption_eval(model, tok, 8, seed=3) == want

    res = CliRunner().invoke(main, ["eval", "draw", "--model", str(micro_bundle), "--n", "2", "--seed", "3",
                                    "--cfg-scale", "2", "--temperature", "1", "--top-k", "0", "--top-p", "1",
                                    "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert json.loads(json.dumps(monitor.draw_eval(model, tok, 2, seed=3, cfg_scale=2.0))) == json.loads(
        (out / "draw.json").read_text())
    settings = DrawSettings(2.0, 1.0, 0, 1.0)
    with UniForkRuntime(micro_bundle) as rt:
        _, want = shapesbench.eval_draw(rt, 2, 3, settings)
    _, got = shapesbench.eval_draw(torch_runtime(model, tok), 2, 3, settings)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(got, want))  # image by image
