"""Small image utilities: labelled grids and strips, PNG text chunks, a default font.

Only Pillow is needed (no torch), so the CLI and TUI can use these cheaply.

Grids are laid out deterministically (see :func:`grid_layout`): cells are the size of the largest
image, small images are scaled up by a whole factor with nearest-neighbour so that 16/32 px toy
samples stay crisp and their labels fit, and labels wrap to the cell width::

    >>> from PIL import Image
    >>> cells = [Image.new("RGB", (32, 32), c) for c in ("red", "green", "blue", "white")]
    >>> g = make_grid(cells, rows=2, cols=2, row_labels=["a", "b"], col_labels=["x", "y"])
    >>> g.size == grid_layout(cells, rows=2, cols=2, row_labels=["a", "b"], col_labels=["x", "y"]).size
    True
    >>> make_grid(cells, rows=2, cols=2, min_cell=32).size   # unlabelled: cells + gaps only
    (66, 66)
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping, Sequence

from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from ticraft.errors import TicraftError

#: Cells smaller than this (longest side, px) are scaled up by a whole factor in grids and strips.
MIN_CELL = 128
BACKGROUND = (255, 255, 255)
INK = (20, 20, 20)

#: PNG text chunk holding a grid's layout and labels (JSON), next to A1111's ``parameters``.
GRID_CHUNK = "ticraft-grid"


class ImagingError(TicraftError):
    """An image could not be read, written or arranged."""


# ------------------------------------------------------------------ fonts
@lru_cache(maxsize=16)
def default_font(size: int = 14) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """Pillow's bundled font at ``size`` px (falls back to the fixed bitmap font without FreeType)."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):  # Pillow < 10.1 or no FreeType: one fixed size
        return ImageFont.load_default()


def font_size_for(cell_width: int) -> int:
    """A label size that reads well under a cell: ~1/11 of its width, between 12 and 40 px."""
    return max(12, min(40, round(cell_width / 11)))


def _text_width(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    return math.ceil(font.getlength(text)) if text else 0


def line_height(font: ImageFont.FreeTypeFont | ImageFont.ImageFont) -> int:
    """Height of one text line including a little leading."""
    top, bottom = font.getbbox("Ag|")[1::2]
    return int(bottom - min(0, top)) + 3


def wrap_text(text: str, font: ImageFont.FreeTypeFont | ImageFont.ImageFont, max_width: int) -> list[str]:
    """Split ``text`` into lines no wider than ``max_width`` px (words longer than a line are cut).

    >>> wrap_text("a b", default_font(12), 1000)
    ['a b']
    """
    lines: list[str] = []
    for paragraph in str(text).split("\n"):
        current = ""
        for word in paragraph.split(" "):
            candidate = f"{current} {word}" if current else word
            if _text_width(candidate, font) <= max_width:
                current = candidate
                continue
            if current:
                lines.append(current)
            # A single word wider than the line: cut it into pieces that fit.
            while _text_width(word, font) > max_width and len(word) > 1:
                cut = len(word) - 1
                while cut > 1 and _text_width(word[:cut], font) > max_width:
                    cut -= 1
                lines.append(word[:cut])
                word = word[cut:]
            current = word
        lines.append(current)
    return lines


# ------------------------------------------------------------------ layout
@dataclass
class GridLayout:
    """Where everything goes in a grid image (all in px)."""

    size: tuple[int, int]
    cell: tuple[int, int]  # (w, h) of one scaled cell
    scale: int  # whole-number upscale applied to the images
    gap: int
    origin: tuple[int, int]  # top-left of the first cell
    font_size: int
    title_lines: list[str] = field(default_factory=list)
    row_lines: list[list[str]] = field(default_factory=list)
    col_lines: list[list[str]] = field(default_factory=list)
    title_height: int = 0
    col_label_height: int = 0
    row_label_width: int = 0

    def cell_box(self, row: int, col: int) -> tuple[int, int, int, int]:
        """(left, top, right, bottom) of cell (row, col)."""
        x = self.origin[0] + col * (self.cell[0] + self.gap)
        y = self.origin[1] + row * (self.cell[1] + self.gap)
        return (x, y, x + self.cell[0], y + self.cell[1])


def cell_scale(images: Sequence[Image.Image | None], min_cell: int = MIN_CELL) -> tuple[tuple[int, int], int]:
    """The common cell size (largest image) and the whole upscale factor that brings it to ``min_cell``."""
    real = [im for im in images if im is not None]
    if not real:
        raise ImagingError("nothing to arrange: no images")
    w = max(im.width for im in real)
    h = max(im.height for im in real)
    scale = max(1, math.ceil(min_cell / max(w, h)))
    return (w, h), scale


@dataclass(frozen=True)
class _Metrics:
    """Cell size and label type shared by grids and strips: both scale the same way so pictures line up."""

    cw: int
    ch: int
    scale: int
    gap: int
    font_px: int
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont
    lh: int
    pad: int


def _metrics(images: Sequence[Image.Image | None], min_cell: int) -> _Metrics:
    (w, h), scale = cell_scale(images, min_cell)
    cw = w * scale
    font_px = font_size_for(cw)
    font = default_font(font_px)
    return _Metrics(cw=cw, ch=h * scale, scale=scale, gap=max(2, cw // 64), font_px=font_px, font=font,
                    lh=line_height(font), pad=max(4, font_px // 2))


def grid_layout(images: Sequence[Image.Image | None], *, rows: int, cols: int,
                row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
                title: str | None = None, min_cell: int = MIN_CELL) -> GridLayout:
    """Compute the layout :func:`make_grid` draws (useful to test sizes and label positions)."""
    _check_shape(images, rows, cols, row_labels, col_labels)
    m = _metrics(images, min_cell)
    cw, ch, gap, font, lh, pad = m.cw, m.ch, m.gap, m.font, m.lh, m.pad

    col_lines = [wrap_text(t, font, cw - 2) for t in col_labels] if col_labels else []
    row_lines = [wrap_text(t, font, 2 * cw) for t in row_labels] if row_labels else []
    col_h = (max(len(ls) for ls in col_lines) * lh + pad) if col_lines else 0
    row_w = (max(_text_width(line, font) for ls in row_lines for line in ls) + 2 * pad) if row_lines else 0

    title_lines: list[str] = []
    title_h = 0
    grid_w = row_w + cols * cw + (cols - 1) * gap
    if title:
        title_font = default_font(round(m.font_px * 1.25))
        title_lines = wrap_text(title, title_font, max(grid_w - 2 * pad, 40))
        title_h = len(title_lines) * line_height(title_font) + pad
    grid_h = title_h + col_h + rows * ch + (rows - 1) * gap
    return GridLayout(
        size=(grid_w, grid_h), cell=(cw, ch), scale=m.scale, gap=gap, origin=(row_w, title_h + col_h),
        font_size=m.font_px, title_lines=title_lines, row_lines=row_lines, col_lines=col_lines,
        title_height=title_h, col_label_height=col_h, row_label_width=row_w,
    )


def _check_shape(images: Sequence[Image.Image | None], rows: int, cols: int,
                 row_labels: Sequence[str] | None, col_labels: Sequence[str] | None) -> None:
    if rows < 1 or cols < 1:
        raise ImagingError(f"a grid needs at least one row and one column, got {rows}×{cols}")
    if len(images) != rows * cols:
        raise ImagingError(f"a {rows}×{cols} grid needs {rows * cols} images, got {len(images)}")
    if row_labels is not None and len(row_labels) != rows:
        raise ImagingError(f"{len(row_labels)} row labels for {rows} rows")
    if col_labels is not None and len(col_labels) != cols:
        raise ImagingError(f"{len(col_labels)} column labels for {cols} columns")


def _paste_scaled(canvas: Image.Image, image: Image.Image, box: tuple[int, int, int, int], scale: int) -> None:
    """Paste ``image`` scaled by ``scale`` (nearest: keeps pixels crisp), centred in ``box``."""
    im = image.convert("RGB")
    if scale != 1:
        im = im.resize((im.width * scale, im.height * scale), Image.Resampling.NEAREST)
    x = box[0] + (box[2] - box[0] - im.width) // 2
    y = box[1] + (box[3] - box[1] - im.height) // 2
    canvas.paste(im, (x, y))


def make_grid(images: Sequence[Image.Image | None], *, rows: int, cols: int,
              row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
              title: str | None = None, min_cell: int = MIN_CELL) -> Image.Image:
    """Arrange ``rows × cols`` images (row-major; ``None`` leaves a cell blank) with optional labels.

    Row labels go left of each row, column labels above each column, the title on top. The
    returned image's ``info[GRID_CHUNK]`` holds the layout and labels as JSON (saved by
    :func:`save_png_text` so readers can find which cell is which).
    """
    layout = grid_layout(images, rows=rows, cols=cols, row_labels=row_labels, col_labels=col_labels,
                         title=title, min_cell=min_cell)
    canvas = Image.new("RGB", layout.size, BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = default_font(layout.font_size)
    lh = line_height(font)
    pad = max(4, layout.font_size // 2)

    if layout.title_lines:
        title_font = default_font(round(layout.font_size * 1.25))
        y = pad // 2
        for line in layout.title_lines:
            draw.text((pad, y), line, fill=INK, font=title_font)
            y += line_height(title_font)
    for c, lines in enumerate(layout.col_lines):
        left, top, right, _ = layout.cell_box(0, c)
        y = layout.title_height + (layout.col_label_height - pad - len(lines) * lh) + pad // 2
        for line in lines:
            draw.text((left + (right - left - _text_width(line, font)) // 2, y), line, fill=INK, font=font)
            y += lh
    for r, lines in enumerate(layout.row_lines):
        _, top, _, bottom = layout.cell_box(r, 0)
        y = top + (bottom - top - len(lines) * lh) // 2
        for line in lines:
            draw.text((pad, y), line, fill=INK, font=font)
            y += lh
    for i, im in enumerate(images):
        if im is not None:
            _paste_scaled(canvas, im, layout.cell_box(i // cols, i % cols), layout.scale)

    canvas.info[GRID_CHUNK] = json.dumps({
        "rows": rows, "cols": cols, "row_labels": list(row_labels or []), "col_labels": list(col_labels or []),
        "title": title or "", "cell": list(layout.cell), "scale": layout.scale, "origin": list(layout.origin),
        "gap": layout.gap,
    })
    return canvas


def make_strip(images: Sequence[Image.Image], labels: Sequence[str] | None = None, *,
               min_cell: int = MIN_CELL) -> Image.Image:
    """One row of images with a (wrapped) label under each, e.g. an interpolation or a seed sweep.

    >>> from PIL import Image
    >>> strip = make_strip([Image.new("RGB", (16, 16))] * 3, ["0.0", "0.5", "1.0"])
    >>> strip.width == 3 * 128 + 2 * 2
    True
    """
    if not images:
        raise ImagingError("nothing to arrange: no images")
    if labels is not None and len(labels) != len(images):
        raise ImagingError(f"{len(labels)} labels for {len(images)} images")
    m = _metrics(images, min_cell)
    cw, ch, scale, gap, font, lh, pad = m.cw, m.ch, m.scale, m.gap, m.font, m.lh, m.pad
    lines = [wrap_text(t, font, cw - 2) for t in labels] if labels else []
    label_h = (max(len(ls) for ls in lines) * lh + pad) if lines else 0
    canvas = Image.new("RGB", (len(images) * cw + (len(images) - 1) * gap, ch + label_h), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    for i, im in enumerate(images):
        x = i * (cw + gap)
        _paste_scaled(canvas, im, (x, 0, x + cw, ch), scale)
        y = ch + pad // 2
        for line in lines[i] if lines else []:
            draw.text((x + (cw - _text_width(line, font)) // 2, y), line, fill=INK, font=font)
            y += lh
    canvas.info[GRID_CHUNK] = json.dumps({"rows": 1, "cols": len(images), "col_labels": list(labels or []),
                                          "cell": [cw, ch], "scale": scale, "gap": gap, "origin": [0, 0]})
    return canvas


# ------------------------------------------------------------- PNG text
def read_png_text(source: str | os.PathLike | Image.Image) -> dict[str, str]:
    """All text chunks (tEXt/zTXt/iTXt) of a PNG, as ``{key: text}``."""
    if isinstance(source, Image.Image):
        return {str(k): v for k, v in source.info.items() if isinstance(v, str)}
    path = Path(source)
    try:
        with Image.open(path) as im:
            im.load()  # text chunks after the image data are only read by load()
            chunks = dict(getattr(im, "text", {}) or {})
            chunks.update({k: v for k, v in im.info.items() if isinstance(v, str) and k not in chunks})
            return chunks
    except FileNotFoundError:
        raise ImagingError(f"no such image: {path}") from None
    except (OSError, SyntaxError) as exc:
        raise ImagingError(f"{path} is not a readable image ({exc})") from exc


def save_png_text(image: Image.Image, path: str | os.PathLike, text: Mapping[str, str] | None = None) -> Path:
    """Write ``image`` as PNG with text chunks, atomically (temp file + ``os.replace``).

    Chunks come from ``image.info`` string values (``parameters``, ``ticraft-grid``, …), then ``text``
    (which wins). Text that is not Latin-1 goes into an iTXt chunk (UTF-8) automatically.
    """
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ImagingError(f"{path}: metadata is written to PNG files only (use a .png name)")
    chunks = {k: v for k, v in image.info.items() if isinstance(k, str) and isinstance(v, str)}
    chunks.update(text or {})
    info = PngImagePlugin.PngInfo()
    for key, value in chunks.items():
        info.add_text(key, value)
    from ticraft.io import atomic_file

    with atomic_file(path) as fh:
        image.save(fh, format="PNG", pnginfo=info)
    return path
