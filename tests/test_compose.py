"""`compose`: concepts × templates grids with fixed seeds per column (tiny offline SD model)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from ticraft.concept import Concept
from ticraft.generate.sample import SampleError, SampleSpec, compose, fill_template, generate, read_parameters, save_png
from ticraft.imaging import GRID_CHUNK, grid_layout, read_png_text


def concept(token, seed):
    return Concept(token, {"clip": torch.randn(1, 32, generator=torch.Generator().manual_seed(seed))})


def test_grid_rows_columns_seeds_and_labels(bb, tmp_path):
    cat, style = concept("<cat-toy>", 1), concept("<style>", 2)
    subjects = ["<cat-toy>", "cat"]
    templates = ["a photo of {}", "a painting of {} in the style of <style>"]
    r = compose(bb, subjects, templates, seeds=[3, 4], concepts=[cat, style], steps=2, title="t")
    assert len(r.images) == 2 and all(len(row) == 4 for row in r.images)
    assert r.seeds == [3, 4, 3, 4]
    assert r.prompts[0][2] == "a painting of <cat-toy> in the style of <style>"
    # Every cell records its own prompt and its column's seed; rows share the seeds.
    for row in range(2):
        for col in range(4):
            p = read_parameters(r.images[row][col])
            assert (p["prompt"], p["seed"]) == (r.prompts[row][col], r.seeds[col])
    # A cell equals the same spec generated on its own batch shape (the seed fixes the noise).
    alone = generate(bb, [SampleSpec(r.prompts[1][1], seed=4, steps=2)], concepts=[cat, style])[0]
    assert np.abs(np.asarray(alone, dtype=int) - np.asarray(r.images[1][1], dtype=int)).max() <= 2
    # The grid: expected size, labels drawn and recorded.
    flat = [im for row in r.images for im in row]
    layout = grid_layout(flat, rows=2, cols=4, row_labels=r.row_labels, col_labels=r.col_labels, title="t")
    assert r.grid.size == layout.size
    assert layout.cell == (128, 128)  # 16 px cells scaled ×8
    assert r.col_labels[0] == "a photo of {}\nseed 3"
    path = save_png(r.grid, tmp_path / "grid.png")
    meta = json.loads(read_png_text(path)[GRID_CHUNK])
    assert meta["row_labels"] == subjects and meta["col_labels"] == r.col_labels
    assert read_parameters(path)["prompt"] == r.prompts[0][0]  # A1111 readers see the first cell's settings
    arr = np.asarray(r.grid)
    top = layout.cell_box(0, 0)[1]
    assert (arr[layout.title_height:top, layout.origin[0]:] < 100).any()  # column label ink
    assert (arr[top:, :layout.origin[0]] < 100).any()  # row label ink


def test_rows_differ_only_by_subject(bb):
    cat = concept("<cat-toy>", 1)
    r = compose(bb, ["<cat-toy>", "<cat-toy>"], ["a photo of {}"], seeds=[0], concepts=[cat], steps=2)
    assert np.array_equal(np.asarray(r.images[0][0]), np.asarray(r.images[1][0]))  # same prompt + seed: same image
    r2 = compose(bb, ["<cat-toy>", "dog"], ["a photo of {}"], seeds=[0], concepts=[cat], steps=2)
    assert not np.array_equal(np.asarray(r2.images[0][0]), np.asarray(r2.images[1][0]))


def test_template_helpers_and_errors(bb):
    assert fill_template("{} on the beach", "<x>") == "<x> on the beach"
    assert fill_template("in the style of <style>", "cat") == "in the style of <style> cat"
    with pytest.raises(SampleError, match="at least one"):
        compose(bb, [], ["a {}"])
