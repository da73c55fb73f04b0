"""An exact, analytic judge: reads shape, colour, texture, size, position, background and style back from an image.

It is the toy world's stand-in for the paper's CLIP measures. It works on renders and on generated images alike:
- background: vote of the nearest palette colour over a ring of pixels the object never reaches;
- hidden style (frame): most of the outer ring differs from the background;
- pixelated: image gradients concentrate on the pixel-block boundaries;
- foreground: pixels nearer the object colours than the background;
- colour: weighted vote of the nearest palette colour over the foreground (texture pixels abstain);
- shape, size, position, outline: best IoU against every rendered silhouette (7 shapes × 2 sizes × 25 offsets);
- texture: which fixed pattern (stripes/dots) the secondary-colour pixels follow.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from functools import lru_cache

import numpy as np
from PIL import Image

from ticraft.toyworld.render import (
    COLOURS,
    FRAME,
    IMAGE_SIZE,
    JITTER,
    PALETTE,
    PIXEL_BLOCK,
    SHAPES,
    SIZES,
    Attributes,
    frame_mask,
    shape_mask,
    texture_colour,
    texture_pattern,
)

_PAL = np.array([PALETTE[c] for c in COLOURS], dtype=np.float32)  # [C, 3]
_MIX = np.stack([texture_colour(c) for c in COLOURS]).astype(np.float32)  # [C, 3]
BLOCKY_THRESHOLD = 0.62
FRAME_THRESHOLD = 0.6
TEXTURE_THRESHOLD = 0.12
PIXEL_IOU_MARGIN = -0.005

JUDGED_FIELDS: tuple[str, ...] = ("shape", "colour", "texture", "size", "background", "style")


@dataclass(frozen=True)
class Judgement:
    """What the judge read from one image; ``shape_iou`` says how well the best silhouette fitted (0–1)."""

    shape: str
    colour: str
    texture: str
    size: str
    background: str
    style: str
    dx: int
    dy: int
    shape_iou: float

    def to_dict(self) -> dict[str, object]:
        """Plain-dict form."""
        return asdict(self)

    def matches(self, attrs: Attributes, fields: tuple[str, ...] = JUDGED_FIELDS) -> dict[str, bool]:
        """Per-field agreement with the attributes an image was meant to have."""
        return {f: getattr(self, f) == getattr(attrs, f) for f in fields}


def _as_array(image: Image.Image | np.ndarray) -> np.ndarray:
    if isinstance(image, Image.Image):
        arr = np.asarray(image.convert("RGB"), dtype=np.float32)
    else:
        arr = np.asarray(image, dtype=np.float32)
        if arr.ndim != 3 or arr.shape[2] != 3:
            raise ValueError(f"expected an H×W×3 RGB array, got shape {arr.shape}")
        if arr.max() <= 1.0 + 1e-6:  # a [0, 1] float image
            arr = arr * 255.0
    if arr.shape[:2] != (IMAGE_SIZE, IMAGE_SIZE):
        img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
        img = img.resize((IMAGE_SIZE, IMAGE_SIZE), Image.Resampling.BOX)
        arr = np.asarray(img, dtype=np.float32)
    return arr


def _nearest(pixels: np.ndarray, refs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Index of and distance to the nearest reference colour for each pixel ([N, 3] against [K, 3])."""
    d = np.linalg.norm(pixels[:, None, :] - refs[None, :, :], axis=-1)
    idx = d.argmin(axis=1)
    return idx, d[np.arange(len(pixels)), idx]


def _ring_mask() -> np.ndarray:
    """Pixels FRAME..FRAME+1 px in from the border: never covered by the object nor by the frame."""
    m = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=bool)
    a, b = FRAME, IMAGE_SIZE - FRAME - 1
    m[a, a : b + 1] = m[b, a : b + 1] = m[a : b + 1, a] = m[a : b + 1, b] = True
    return m


@lru_cache(maxsize=1)
def _templates() -> tuple[np.ndarray, list[tuple[str, str, int, int, str]]]:
    """All silhouettes, flattened: [T, H*W] coverage and their (shape, size, dx, dy, variant) keys."""
    keys, rows = [], []
    for variant in ("none", "outline", "pixelated"):
        for shape in SHAPES:
            for size in SIZES:
                if variant == "pixelated" and size != "large":
                    continue
                for dy in range(-JITTER, JITTER + 1):
                    for dx in range(-JITTER, JITTER + 1):
                        a = Attributes(shape=shape, size=size, dx=dx, dy=dy, style=variant)
                        rows.append(shape_mask(a).reshape(-1))
                        keys.append((shape, size, dx, dy, variant))
    return np.stack(rows).astype(np.float32), keys


@lru_cache(maxsize=1)
def _variants() -> np.ndarray:
    return np.array([k[4] for k in _templates()[1]])


def blockiness(arr: np.ndarray) -> float:
    """Share of the image's gradient energy on pixel-block boundaries: ~1 for pixelated images, ~0.3 otherwise."""
    gx = np.abs(np.diff(arr, axis=1)).sum(axis=2)  # [H, W-1], column j is the step j -> j+1
    gy = np.abs(np.diff(arr, axis=0)).sum(axis=2)
    on = (np.arange(IMAGE_SIZE - 1) + 1) % PIXEL_BLOCK == 0
    total = gx.sum() + gy.sum()
    if total < 1e-6:
        return 0.0
    return float((gx[:, on].sum() + gy[on, :].sum()) / total)


def judge(image: Image.Image | np.ndarray) -> Judgement:
    """Read an image's attributes (any RGB image; resized to 32 px if needed)."""
    arr = _as_array(image)
    flat = arr.reshape(-1, 3)

    # background: weighted vote over the ring
    ring = _ring_mask().reshape(-1)
    idx, dist = _nearest(flat[ring], _PAL)
    votes = np.bincount(idx, weights=np.exp(-((dist / 60.0) ** 2)) + 1e-3, minlength=len(COLOURS))
    bg_i = int(votes.argmax())
    bg = _PAL[bg_i]

    # foreground colour: each inner pixel's nearest among palette and texture colours; texture pixels abstain
    frame = frame_mask().reshape(-1)
    inner = ~frame
    refs = np.concatenate([_PAL, _MIX])
    idx_all, dist_all = _nearest(flat, refs)
    d_bg = np.linalg.norm(flat - bg, axis=1)
    candidate = inner & (d_bg > 40.0)
    pure = candidate & (idx_all < len(COLOURS)) & (idx_all != bg_i)
    if pure.sum() == 0:
        pure = candidate
    if pure.sum() == 0:  # an empty image: report the most likely colour that is not the background
        fg_i = int(np.argsort(-np.linalg.norm(_PAL - bg, axis=1))[0])
    else:
        w = np.exp(-((dist_all[pure] / 60.0) ** 2)) + 1e-3
        v = np.bincount(idx_all[pure] % len(COLOURS), weights=w, minlength=len(COLOURS))
        v[bg_i] = -1
        fg_i = int(v.argmax())
    fg, mix = _PAL[fg_i], _MIX[fg_i]

    # foreground mask: nearer to the object colours than to the background; alpha: soft coverage in [0, 1]
    d_fg = np.minimum(np.linalg.norm(flat - fg, axis=1), np.linalg.norm(flat - mix, axis=1))
    fgmask = (d_fg < d_bg) & inner
    # alpha along the background→colour line, or along background→texture colour where that explains the pixel
    # clearly better (when the two lines nearly coincide, the colour line wins: texture only dims the interior)
    alphas, resid = [], []
    for c in (fg, mix):
        k = np.clip(((flat - bg) @ (c - bg)) / max(float((c - bg) @ (c - bg)), 1e-6), 0.0, 1.0)
        alphas.append(k)
        resid.append(np.linalg.norm(flat - (bg + k[:, None] * (c - bg)), axis=1))
    alpha = np.where(resid[1] < resid[0] - 15.0, alphas[1], alphas[0]) * inner

    # hidden style: the frame has the object's colour rather than the background's
    framed = float(((d_fg < d_bg) & frame).sum()) / float(frame.sum()) >= FRAME_THRESHOLD

    # shape, size, position, variant: soft IoU against every silhouette
    tmpl, keys = _templates()
    variants = _variants()
    a = alpha.astype(np.float32)
    inter = np.minimum(tmpl, a[None, :]).sum(axis=1)
    union = np.maximum(tmpl, a[None, :]).sum(axis=1)
    iou = inter / np.maximum(union, 1e-6)
    pix = variants == "pixelated"
    # pixelated when the blocky silhouettes fit better than the smooth ones (robust to blur), or when the image's
    # edges sit on block boundaries (exact renders)
    inner_img = arr.copy()
    if framed:
        inner_img[frame_mask()] = bg
    blocky = bool(iou[pix].max() - iou[~pix].max() > PIXEL_IOU_MARGIN) or blockiness(inner_img) >= BLOCKY_THRESHOLD
    iou = np.where(pix if blocky else ~pix, iou, -1.0)
    best = int(iou.argmax())
    shape, size, dx, dy, variant = keys[best]

    if framed:
        style = "glimmic"
    elif blocky:
        style = "pixelated"
    else:
        style = "outline" if variant == "outline" else "none"

    # texture: does the secondary colour follow the stripes or the dots? Each body pixel's position along the
    # colour→texture-colour line (0 = colour, 1 = texture colour) is compared on and off each fixed pattern.
    texture = "plain"
    if variant == "none":
        body = (tmpl[best].reshape(IMAGE_SIZE, IMAGE_SIZE) > 0.99).reshape(-1) & fgmask
        if body.sum() > 8:
            px = flat[body]
            axis = mix - fg
            t = np.clip(((px - fg) @ axis) / max(float(axis @ axis), 1e-6), 0.0, 1.0)
            scores = {}
            for name in ("striped", "dotted"):
                pat = texture_pattern(name).reshape(-1)[body] > 0.5
                on = t[pat].mean() if pat.any() else 0.0
                off = t[~pat].mean() if (~pat).any() else 0.0
                scores[name] = on - off
            name = max(scores, key=lambda k: scores[k])
            texture = name if scores[name] > TEXTURE_THRESHOLD else "plain"

    return Judgement(
        shape=shape,
        colour=COLOURS[fg_i],
        texture=texture,
        size=size,
        background=COLOURS[bg_i],
        style=style,
        dx=dx,
        dy=dy,
        shape_iou=float(iou[best]),
    )


def judge_many(images: list[Image.Image] | list[np.ndarray]) -> list[Judgement]:
    """Judge several images."""
    return [judge(im) for im in images]


def accuracy(
    judgements: list[Judgement], targets: list[Attributes], fields: tuple[str, ...] = JUDGED_FIELDS
) -> dict[str, float]:
    """Per-field share of judgements that match their targets."""
    if len(judgements) != len(targets):
        raise ValueError(f"{len(judgements)} judgements but {len(targets)} targets")
    if not targets:
        raise ValueError("nothing to score: no images")
    out: dict[str, float] = {}
    for f in fields:
        out[f] = sum(getattr(j, f) == getattr(t, f) for j, t in zip(judgements, targets, strict=True)) / len(targets)
    return out


def colour_distribution(judgements: list[Judgement]) -> dict[str, float]:
    """Share of each judged object colour (for bias probes)."""
    counts = Counter(j.colour for j in judgements)
    n = max(1, len(judgements))
    return {c: counts.get(c, 0) / n for c in COLOURS}
