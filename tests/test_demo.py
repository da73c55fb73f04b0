"""``ticraft demo`` end to end on the shipped toy model: the first command a new user runs."""

from __future__ import annotations

import json

import torch
from PIL import Image
from typer.testing import CliRunner

from ticraft.cli.main import app


def test_demo_writes_every_picture_and_the_scores(tmp_path):
    torch.set_num_threads(1)
    out = tmp_path / "demo"
    # a short run; the interpolation meets a one-vector word with the preset's three vectors (pad)
    res = CliRunner().invoke(app, ["demo", "--steps", "2", "--out", str(out)])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "demo.json").read_text())
    for key in ("grid", "strip"):
        with Image.open(report[key]) as im:
            assert im.width > 0 and im.height > 0
    assert 0.0 <= report["reconstruction"] <= 1.0 and 0.0 <= report["editability"] <= 1.0
    assert report["neighbors"] and (out / "library").is_dir()
    assert "<zorb>" in res.output
    # three vectors: the neighbours are the mean's, and each vector's norm is reported
    assert len(report["vector_percentiles"]) == 3 and "the mean of its 3 vectors" in res.output
