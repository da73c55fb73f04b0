"""PNG metadata (A1111-style `parameters`) and labelled grids/strips: no model needed."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from ticraft.imaging import GRID_CHUNK, ImagingError, grid_layout, make_grid, make_strip, read_png_text, save_png_text
from ticraft.generate.pngmeta import MetadataError, format_parameters, parse_parameters, read_parameters, save_png


def _params(**over):
    kw = dict(steps=4, sampler="dpm++_sde", cfg=7.5, seed=123456789012, width=32, height=48, model="toy",
              model_hash="0123456789", concept_hashes={"<cat-toy>": "abcdef012345", "<style>": "999"})
    kw.update(over)
    return kw


@pytest.mark.parametrize("prompt,negative", [
    ("a photo of <cat-toy> on the beach", ""),
    ("a photo of <cat-toy>, on: the beach", "blurry, ugly: very"),
    ("line one\nline two <style>", "neg one\nneg two"),
    ("ünïcødé prompt ✓", "négatif"),
    ("", "only a negative"),
])
def test_parameters_round_trip(prompt, negative, tmp_path):
    text = format_parameters(prompt, negative, **_params(extra={"Batch size": 4, "Batch pos": 2}))
    img = Image.new("RGB", (8, 8), "red")
    path = save_png(img, tmp_path / "x.png", text)
    p = read_parameters(path)
    assert p["text"] == text
    assert (p["prompt"], p["negative"]) == (prompt, negative)
    assert (p["steps"], p["sampler"], p["cfg"], p["seed"], p["size"]) == (4, "dpm++_sde", 7.5, 123456789012, (32, 48))
    assert (p["model"], p["model_hash"]) == ("toy", "0123456789")
    assert p["concept_hashes"] == {"<cat-toy>": "abcdef012345", "<style>": "999"}
    assert (p["batch_size"], p["batch_pos"]) == (4, 2)
    assert p["version"].startswith("ticraft ")


def test_float_guidance_is_exact():
    for cfg in (7.0, 0.1, 3.3333333333333335, 12.25):
        assert parse_parameters(format_parameters("p", **_params(cfg=cfg)))["cfg"] == cfg


def test_reads_automatic1111_text():
    text = ("masterpiece, <cat-toy>\nNegative prompt: lowres\n"
            "Steps: 20, Sampler: Euler a, Schedule type: Automatic, CFG scale: 7, Seed: 42, Size: 512x768, "
            'Model hash: 6ce0161689, Model: v1-5-pruned-emaonly, TI hashes: "cat-toy: 1a2b3c4d5e6f", Version: v1.10.1')
    p = parse_parameters(text)
    assert p["prompt"] == "masterpiece, <cat-toy>" and p["negative"] == "lowres"
    assert (p["sampler"], p["cfg"], p["seed"], p["size"], p["steps"]) == ("euler_a", 7.0, 42, (512, 768), 20)
    assert p["concept_hashes"] == {"cat-toy": "1a2b3c4d5e6f"}
    assert p["fields"]["Schedule type"] == "Automatic"


def test_text_shown_as_a1111_does():
    text = format_parameters("a <x>", "bad", **_params(sampler="euler_a", cfg=7.0))
    prompt, neg, last = text.split("\n")
    assert (prompt, neg) == ("a <x>", "Negative prompt: bad")
    assert last.startswith("Steps: 4, Sampler: Euler a, CFG scale: 7, Seed: 123456789012, Size: 32x48, ")
    assert 'TI hashes: "<cat-toy>: abcdef012345, <style>: 999"' in last


def test_missing_parameters_is_a_clear_error(tmp_path):
    path = tmp_path / "plain.png"
    Image.new("RGB", (4, 4)).save(path)
    with pytest.raises(MetadataError, match="no generation parameters"):
        read_parameters(path)
    with pytest.raises(ImagingError, match="no such image"):
        read_parameters(tmp_path / "nope.png")


def test_save_png_keeps_info_text_and_refuses_other_suffixes(tmp_path):
    img = Image.new("RGB", (4, 4))
    img.info["parameters"] = "p\nSteps: 1, Sampler: DDIM, CFG scale: 1, Seed: 0, Size: 8x8"
    path = save_png(img, tmp_path / "sub" / "a.png")
    assert read_parameters(path)["steps"] == 1
    assert not list((tmp_path / "sub").glob("*.tmp"))  # atomic write leaves no temp file
    with pytest.raises(ImagingError, match="PNG"):
        save_png(img, tmp_path / "a.jpg")


# ------------------------------------------------------------------ grids
def _cells(n, size=(32, 32)):
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)) for _ in range(n)]


def test_unlabelled_grid_is_cells_and_gaps():
    g = make_grid(_cells(6), rows=2, cols=3, min_cell=32)
    assert g.size == (3 * 32 + 2 * 2, 2 * 32 + 2)


def test_small_images_are_scaled_up_crisply():
    cells = _cells(4, (16, 16))
    g = make_grid(cells, rows=2, cols=2)  # 16 px → ×8 = 128 px cells
    layout = grid_layout(cells, rows=2, cols=2)
    assert layout.scale == 8 and layout.cell == (128, 128)
    box = layout.cell_box(1, 1)
    crop = np.asarray(g.crop(box))
    assert np.array_equal(crop[::8, ::8], np.asarray(cells[3]))  # nearest-neighbour: exact pixel blocks


def test_labelled_grid_size_labels_and_chunk(tmp_path):
    cells = _cells(6)
    rows = ["<cat-toy>", "a much longer row label"]
    cols = ["a photo of {}", "a painting of {} in the style of <style>", "c"]
    g = make_grid(cells, rows=2, cols=3, row_labels=rows, col_labels=cols, title="Compose")
    layout = grid_layout(cells, rows=2, cols=3, row_labels=rows, col_labels=cols, title="Compose")
    assert g.size == layout.size
    assert layout.origin[0] > 0 and layout.origin[1] > 0  # room for row labels (left) and columns + title (top)
    assert len(layout.col_lines[1]) > 1  # the long column label wraps to the cell width
    assert g.size[0] == layout.origin[0] + 3 * layout.cell[0] + 2 * layout.gap
    assert g.size[1] == layout.origin[1] + 2 * layout.cell[1] + layout.gap
    arr = np.asarray(g)
    # Ink in the label bands: row labels left of row 0, column labels above column 1.
    left, top, right, bottom = layout.cell_box(0, 0)
    assert (arr[top:bottom, :left] < 100).any()
    l1, t1, r1, _ = layout.cell_box(0, 1)
    assert (arr[layout.title_height:t1, l1:r1] < 100).any()
    # Cells are pasted exactly (scale 4 for 32 px).
    assert np.array_equal(np.asarray(g.crop(layout.cell_box(1, 2)))[::4, ::4], np.asarray(cells[5]))
    path = save_png_text(g, tmp_path / "grid.png")
    meta = json.loads(read_png_text(path)[GRID_CHUNK])
    assert meta["row_labels"] == rows and meta["col_labels"] == cols and (meta["rows"], meta["cols"]) == (2, 3)


def test_grid_shape_errors():
    with pytest.raises(ImagingError, match="needs 4 images"):
        make_grid(_cells(3), rows=2, cols=2)
    with pytest.raises(ImagingError, match="row labels"):
        make_grid(_cells(4), rows=2, cols=2, row_labels=["a"])
    with pytest.raises(ImagingError, match="no images"):
        make_grid([None, None], rows=1, cols=2)


def test_grid_allows_blank_cells():
    g = make_grid(_cells(3) + [None], rows=2, cols=2, min_cell=32)
    assert np.asarray(g)[-5:, -5:].min() == 255  # the empty cell stays background


def test_strip_labels_under_cells():
    cells = _cells(3, (16, 16))
    s = make_strip(cells, ["0.0", "0.5", "1.0"])
    assert s.width == 3 * 128 + 2 * 2 and s.height > 128
    assert (np.asarray(s)[128:, :] < 100).any()  # label ink below the cells
    with pytest.raises(ImagingError, match="labels"):
        make_strip(cells, ["a"])
