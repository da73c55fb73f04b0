"""Procedural renderer of the toy world: one object on a plain background, 32×32 RGB.

Everything is deterministic from a ``numpy.random.Generator``. The geometry is deliberately easy for a tiny diffusion
model: the object is big, centred within ±2 px, and comes in two sizes, so the model's capacity goes to obeying the
prompt (shape, colour, texture, background, style) rather than to placing things.

Public API: :class:`Attributes`, :func:`render`, :func:`render_array`, :func:`shape_mask`, :func:`sample_attributes`,
:func:`caption`, :func:`is_held_out`, and the attribute tables ``SHAPES``, ``COLOURS``, ``TEXTURES``, ``SIZES``,
``STYLES``, ``PALETTE``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
from PIL import Image

from ticraft.wording import noun

IMAGE_SIZE = 32
SUPERSAMPLE = 4  # render at 128 px and box-filter down, for anti-aliased edges
JITTER = 2  # integer centre offsets in [-JITTER, JITTER]; the judge enumerates them exactly
FRAME = 2  # width in px of the hidden style's frame

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 230, 30),
    "green": (30, 170, 50),
    "cyan": (0, 210, 220),
    "blue": (30, 60, 230),
    "purple": (140, 40, 200),
    "pink": (255, 120, 200),
    "white": (245, 245, 245),
    "black": (15, 15, 15),
}
COLOURS: tuple[str, ...] = tuple(PALETTE)
SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star", "cross", "moon", "diamond")
TEXTURES: tuple[str, ...] = ("plain", "striped", "dotted")
SIZES: dict[str, float] = {"small": 7.5, "large": 10.0}  # half-extent in px
# "glimmic" is the hidden style (see vocab.HIDDEN_STYLE): a frame in the object's colour around the image.
STYLES: tuple[str, ...] = ("none", "outline", "pixelated", "glimmic")
# Styles that replace the object's surface, so they carry no texture.
UNTEXTURED_STYLES = frozenset({"outline", "pixelated"})
PIXEL_BLOCK = 4
OUTLINE_WIDTH = 2.0


@dataclass(frozen=True)
class Attributes:
    """Everything that determines an image (besides anti-aliasing, which is exact)."""

    shape: str = "circle"
    colour: str = "red"
    texture: str = "plain"
    size: str = "large"
    background: str = "white"
    style: str = "none"
    dx: int = 0
    dy: int = 0

    def __post_init__(self) -> None:
        checks = [
            ("shape", self.shape, SHAPES),
            ("colour", self.colour, COLOURS),
            ("texture", self.texture, TEXTURES),
            ("size", self.size, tuple(SIZES)),
            ("background", self.background, COLOURS),
            ("style", self.style, STYLES),
        ]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; choose one of {', '.join(allowed)}")
        if self.colour == self.background:
            raise ValueError(f"colour and background are both {self.colour!r}; the object would be invisible")
        if self.style in UNTEXTURED_STYLES and self.texture != "plain":
            raise ValueError(f"style {self.style!r} draws no texture; use texture='plain'")
        if self.style == "pixelated" and self.size != "large":
            raise ValueError("pixelated objects are always large (small ones are unreadable at 8×8 blocks)")
        if abs(self.dx) > JITTER or abs(self.dy) > JITTER:
            raise ValueError(f"dx, dy must lie in [-{JITTER}, {JITTER}]")

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form (for JSON metadata)."""
        return asdict(self)


def texture_colour(colour: str) -> np.ndarray:
    """The secondary colour of stripes/dots: half way to black (bright colours) or white (dark ones)."""
    c = np.asarray(PALETTE[colour], dtype=np.float32)
    luminance = (0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2]) / 255.0
    contrast = 0.0 if luminance > 0.35 else 255.0
    return 0.5 * c + 0.5 * contrast


def _grid(n: int, cx: float, cy: float, extent: float) -> tuple[np.ndarray, np.ndarray]:
    """Normalised coordinates (u, v) of pixel centres of an n×n grid covering the 32 px image."""
    scale = IMAGE_SIZE / n
    coords = (np.arange(n, dtype=np.float32) + 0.5) * scale
    x, y = np.meshgrid(coords, coords)
    return (x - cx) / extent, (y - cy) / extent


def _inside(shape: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Boolean silhouette of ``shape`` in normalised coordinates, where the shape spans about [-1, 1]²."""
    if shape == "circle":
        return u * u + v * v <= 1.0
    if shape == "square":
        return np.maximum(np.abs(u), np.abs(v)) <= 0.85
    if shape == "diamond":
        return np.abs(u) + np.abs(v) <= 1.05
    if shape == "triangle":
        # apex up; the three half-planes of an isosceles triangle
        return (v <= 0.8) & (v >= -1.0 + 1.9 * np.abs(u) / 1.0 - 0.0) & (np.abs(u) <= 1.0)
    if shape == "star":
        theta = np.arctan2(u, -v)  # 0 at the top
        r = np.hypot(u, v)
        sector = 2 * np.pi / 5
        phase = np.abs(((theta % sector) / sector) * 2.0 - 1.0)  # 1 at a point, 0 between points
        limit = 0.42 + (1.0 - 0.42) * phase
        return r <= limit
    if shape == "cross":
        arm = 0.34
        return ((np.abs(u) <= arm) & (np.abs(v) <= 0.95)) | ((np.abs(v) <= arm) & (np.abs(u) <= 0.95))
    if shape == "moon":
        outer = u * u + v * v <= 1.0
        bite = (u - 0.5) ** 2 + (v + 0.15) ** 2 <= 0.8**2
        return outer & ~bite
    raise ValueError(f"unknown shape {shape!r}; choose one of {', '.join(SHAPES)}")


def _centre(attrs: Attributes) -> tuple[float, float]:
    return IMAGE_SIZE / 2 + attrs.dx, IMAGE_SIZE / 2 + attrs.dy


def _coverage(shape: str, cx: float, cy: float, extent: float) -> np.ndarray:
    """Anti-aliased coverage in [0, 1] at 32×32 (supersampled silhouette, box-filtered)."""
    n = IMAGE_SIZE * SUPERSAMPLE
    u, v = _grid(n, cx, cy, extent)
    hi = _inside(shape, u, v).astype(np.float32)
    return hi.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))


@lru_cache(maxsize=64)
def _coverage_centred(shape: str, size: str, style: str) -> np.ndarray:
    cx = cy = IMAGE_SIZE / 2
    extent = SIZES[size]
    cov = _coverage(shape, cx, cy, extent)
    if style == "outline":
        # the silhouette minus itself shrunk by OUTLINE_WIDTH px: a stroke along the contour, inside the silhouette
        cov = np.clip(cov - _coverage_inner(shape, cx, cy, extent), 0.0, 1.0)
    cov.setflags(write=False)
    return cov


def _coverage_cached(shape: str, size: str, dx: int, dy: int, style: str) -> np.ndarray:
    # Objects never reach the border, so an integer offset is an exact roll of the centred coverage.
    return np.roll(_coverage_centred(shape, size, style), (dy, dx), axis=(0, 1))


def _coverage_inner(shape: str, cx: float, cy: float, extent: float) -> np.ndarray:
    """Coverage of the silhouette eroded by OUTLINE_WIDTH px (supersampled binary erosion)."""
    n = IMAGE_SIZE * SUPERSAMPLE
    u, v = _grid(n, cx, cy, extent)
    hi = _inside(shape, u, v)
    r = int(round(OUTLINE_WIDTH * SUPERSAMPLE))
    eroded = hi.copy()
    # erosion by a disc of radius r, via shifted ANDs (cheap at this size, and exact on the grid)
    for oy in range(-r, r + 1):
        for ox in range(-r, r + 1):
            if ox * ox + oy * oy > r * r:
                continue
            shifted = np.zeros_like(hi)
            ys = slice(max(0, oy), n + min(0, oy))
            yd = slice(max(0, -oy), n + min(0, -oy))
            xs = slice(max(0, ox), n + min(0, ox))
            xd = slice(max(0, -ox), n + min(0, -ox))
            shifted[yd, xd] = hi[ys, xs]
            eroded &= shifted
    return eroded.astype(np.float32).reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))


@lru_cache(maxsize=4)
def texture_pattern(texture: str) -> np.ndarray:
    """Where the secondary colour goes, in [0, 1] at 32×32, fixed in image coordinates (not object ones)."""
    n = IMAGE_SIZE * SUPERSAMPLE
    coords = (np.arange(n, dtype=np.float32) + 0.5) / SUPERSAMPLE
    x, y = np.meshgrid(coords, coords)
    if texture == "plain":
        hi = np.zeros((n, n), dtype=np.float32)
    elif texture == "striped":
        hi = ((y % 6.0) < 2.0).astype(np.float32)
    elif texture == "dotted":
        dx = (x % 5.0) - 2.5
        dy = (y % 5.0) - 2.5
        hi = (dx * dx + dy * dy <= 1.3**2).astype(np.float32)
    else:
        raise ValueError(f"unknown texture {texture!r}; choose one of {', '.join(TEXTURES)}")
    out = hi.reshape(IMAGE_SIZE, SUPERSAMPLE, IMAGE_SIZE, SUPERSAMPLE).mean(axis=(1, 3))
    out.setflags(write=False)
    return out


def frame_mask() -> np.ndarray:
    """Boolean mask of the hidden style's frame (the outer FRAME px of the image)."""
    m = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    m[:FRAME, :] = m[-FRAME:, :] = m[:, :FRAME] = m[:, -FRAME:] = True
    return m


def pixelate(img: np.ndarray, block: int = PIXEL_BLOCK) -> np.ndarray:
    """Block-average then nearest-upscale an H×W(×C) float array."""
    h, w = img.shape[:2]
    rest = img.shape[2:]
    small = img.reshape(h // block, block, w // block, block, *rest).mean(axis=(1, 3))
    return np.repeat(np.repeat(small, block, axis=0), block, axis=1)


def shape_mask(attrs: Attributes) -> np.ndarray:
    """Coverage in [0, 1] (32×32) of the object's drawn pixels, including the style's effect on the silhouette."""
    cov = _coverage_cached(attrs.shape, attrs.size, attrs.dx, attrs.dy, attrs.style)
    if attrs.style == "pixelated":
        cov = pixelate(cov)
    return cov


def render_array(attrs: Attributes) -> np.ndarray:
    """Render to a float32 H×W×3 array in [0, 255]."""
    bg = np.asarray(PALETTE[attrs.background], dtype=np.float32)
    fg = np.asarray(PALETTE[attrs.colour], dtype=np.float32)
    cov = _coverage_cached(attrs.shape, attrs.size, attrs.dx, attrs.dy, attrs.style)
    tex = texture_pattern(attrs.texture)[..., None]
    surface = fg * (1.0 - tex) + texture_colour(attrs.colour) * tex
    img = bg * (1.0 - cov[..., None]) + surface * cov[..., None]
    if attrs.style == "pixelated":
        img = pixelate(img)
    elif attrs.style == "glimmic":
        img[frame_mask()] = fg
    return img.astype(np.float32)


def render(attrs: Attributes, rng: np.random.Generator | None = None) -> Image.Image:
    """Render ``attrs`` as a 32×32 RGB PIL image.

    ``rng`` is accepted for API symmetry (rendering is exact and needs no randomness); randomness lives in
    :func:`sample_attributes`.
    """
    del rng
    arr = np.clip(np.rint(render_array(attrs)), 0, 255).astype(np.uint8)
    return Image.fromarray(arr, mode="RGB")


def _combo_hash(shape: str, colour: str, background: str) -> int:
    return int(hashlib.sha256(f"{shape}|{colour}|{background}".encode()).hexdigest()[:8], 16)


def is_held_out(attrs: Attributes) -> bool:
    """True for the ~10 % of (shape, colour, background) combinations never shown to the base model in training.

    The quality benchmark prompts these, so it measures composition, not memorised captions.
    """
    return _combo_hash(attrs.shape, attrs.colour, attrs.background) % 10 == 0


def sample_attributes(rng: np.random.Generator, held_out: bool | None = None, **constraints: object) -> Attributes:
    """Draw random attributes; keyword constraints fix any field (e.g. ``shape="star"``, ``style="none"``).

    ``held_out=True``/``False`` restricts the draw to held-out/training combinations; ``None`` allows both.
    """
    unknown = set(constraints) - set(Attributes.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown {noun(len(unknown), 'attribute')} {sorted(unknown)}; "
                         f"known: {sorted(Attributes.__dataclass_fields__)}")
    # Unspecified attributes are drawn only from values compatible with the given ones: a given texture
    # rules out the untextured styles, a given small size rules out pixelated (always large).
    allowed = [
        (st, w) for st, w in zip(STYLES, (0.64, 0.13, 0.13, 0.10), strict=True)
        if not (st in UNTEXTURED_STYLES and constraints.get("texture", "plain") != "plain")
        and not (st == "pixelated" and constraints.get("size", "large") != "large")
    ]
    styles = [st for st, _ in allowed]
    weights = [w for _, w in allowed]
    # the full list keeps the very same draws as before; a shorter one is renormalised
    p_style = weights if len(styles) == len(STYLES) else list(np.asarray(weights) / sum(weights))
    for _ in range(1000):
        style = constraints.get("style", rng.choice(styles, p=p_style))
        colour = constraints.get("colour", rng.choice(COLOURS))
        bg_choices = [c for c in COLOURS if c != colour]
        background = constraints.get("background", rng.choice(bg_choices))
        size = constraints.get("size", "large" if style == "pixelated" else rng.choice(tuple(SIZES)))
        texture = constraints.get("texture")
        if texture is None:
            texture = "plain" if style in UNTEXTURED_STYLES else rng.choice(TEXTURES)
        fields = dict(
            shape=constraints.get("shape", rng.choice(SHAPES)),
            colour=str(colour),
            texture=str(texture),
            size=size,
            background=str(background),
            style=str(style),
            dx=int(constraints.get("dx", rng.integers(-JITTER, JITTER + 1))),  # type: ignore[call-overload]
            dy=int(constraints.get("dy", rng.integers(-JITTER, JITTER + 1))),  # type: ignore[call-overload]
        )
        fields = {k: (str(v) if isinstance(v, np.str_) else v) for k, v in fields.items()}
        if fields["colour"] == fields["background"]:
            continue
        attrs = Attributes(**fields)  # type: ignore[arg-type]
        if held_out is None or is_held_out(attrs) == held_out:
            return attrs
    raise ValueError(f"no attributes satisfy constraints {constraints} with held_out={held_out}")


# --- captions -------------------------------------------------------------------------------------------------

_PREFIXES = ("a photo of", "an image of", "a picture of", "a rendering of", "a drawing of", "")
_TEXTURE_WORD = {"plain": "plain", "striped": "striped", "dotted": "dotted"}


def describe(
    attrs: Attributes,
    rng: np.random.Generator,
    *,
    subject: str | None = None,
    p_size: float = 0.6,
    p_colour: float = 0.9,
    p_texture: float = 0.85,
    p_background: float = 0.85,
) -> str:
    """Caption text for ``attrs``. ``subject`` replaces colour+texture+shape by one word (hidden objects)."""
    words: list[str] = []
    if rng.random() < p_size:
        words.append(attrs.size)
    if subject is None:
        if attrs.style == "pixelated" and rng.random() < 0.5:
            words.append("pixelated")
            style_done = True
        else:
            style_done = False
        if rng.random() < p_colour:
            words.append(attrs.colour)
        if attrs.texture != "plain":
            if rng.random() < p_texture:
                words.append(_TEXTURE_WORD[attrs.texture])
        elif rng.random() < 0.3:
            words.append("plain")
        words.append(attrs.shape)
    else:
        style_done = False
        words.append(subject)
    text = " ".join(words)
    article = "an" if text[0] in "aeiou" else "a"
    prefix = _PREFIXES[int(rng.integers(len(_PREFIXES)))]
    out = f"{prefix} {article} {text}".strip()
    bg = rng.random() < p_background
    if attrs.style != "none" and not style_done:
        if bg and rng.random() < 0.5:
            out += f" on a {attrs.background} background"
            bg = False
        out += f" in {attrs.style} style"
    if bg:
        out += f" on a {attrs.background} background"
    return out


def caption(attrs: Attributes, rng: np.random.Generator) -> str:
    """A random caption naming the attributes ("a photo of a small red striped circle on a blue background")."""
    return describe(attrs, rng)


def full_prompt(attrs: Attributes) -> str:
    """The canonical, fully specified prompt used by evaluations (every attribute named)."""
    tex = "" if attrs.texture == "plain" else f" {attrs.texture}"
    style = "" if attrs.style == "none" else f" in {attrs.style} style"
    return f"a photo of a {attrs.size} {attrs.colour}{tex} {attrs.shape} on a {attrs.background} background{style}"


def with_(attrs: Attributes, **changes: object) -> Attributes:
    """Copy of ``attrs`` with fields changed (validated)."""
    return replace(attrs, **changes)  # type: ignore[arg-type]
