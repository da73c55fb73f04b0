"""A1111's embedding-in-a-PNG: a ``tEXt`` chunk ``sd-ti-embedding`` holding base64 JSON.

The JSON is A1111's .pt dict with each tensor written as ``{"TORCHTENSOR": [[...], ...]}``.
A1111 may also hide the same JSON (zlib-compressed, nibble-split and XOR-masked) in coloured
strips left and right of the picture; that is decoded as a fallback. JSON numbers carry every
float16/bfloat16/float32 value exactly; ticraft records the dtype in a ``"ticraft"`` key so a round
trip restores it (foreign PNGs come back as float32, as A1111 loads them).

>>> import tempfile, torch
>>> from ticraft.concept import Concept
>>> c = Concept("<dot>", {"clip": torch.ones(1, 768)})
>>> p = write_png_embedding(c, tempfile.mkdtemp() + "/dot.png")
>>> read_png_embedding(p).token
'<dot>'
"""

from __future__ import annotations

import base64
import io
import json
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ticraft.concept import Concept
from ticraft.errors import image_error_text
from ticraft.formats import a1111
from ticraft.formats._common import META_KEY, FormatError, atomic_write, encode_meta, where
from ticraft.formats._load import PNG_MAGIC, read_bytes

CHUNK = "sd-ti-embedding"
MAX_PIXELS = 1 << 24  # A1111 cards are ~512x600; never decode giant pictures looking for strips
_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32, "float64": torch.float64}


# -------------------------------------------------------------------------------------- reading
def read_png_embedding(path: str | Path, *, family: str | None = None) -> Concept:
    """Read the embedding stored in an A1111 PNG (text chunk, else pixel strips).

    Raises :class:`FormatError` when the PNG holds no embedding (e.g. an ordinary preview image).
    """
    return parse(Path(path), read_bytes(path), family=family)[0]


def parse(path: Path, data: bytes, *, family: str | None) -> list[Concept]:
    if not data.startswith(PNG_MAGIC):
        raise FormatError(f"{where(path)}: not a PNG file")
    payload = embedded_json(path, data)
    try:
        decoded = json.loads(payload, object_hook=_tensor_hook)
    except _BadTensor as exc:
        raise FormatError(f"{where(path)}: {exc}") from exc
    except Exception as exc:
        raise FormatError(f"{where(path)}: the PNG's embedding is not valid JSON ({exc})") from exc
    if not isinstance(decoded, dict) or "string_to_param" not in decoded:
        raise FormatError(f"{where(path)}: the PNG's embedding JSON has no 'string_to_param'")
    dtype = _dtype_of(decoded.get(META_KEY))
    params = decoded["string_to_param"]
    if isinstance(params, dict):
        decoded["string_to_param"] = {k: v.to(dtype) if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    return a1111.parse_dict(decoded, path, family=family, layout="a1111-png")


def embedded_json(path: Path, data: bytes) -> bytes:
    """The embedding JSON bytes: from the text chunk, else from the pixel strips."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            small = im.size[0] * im.size[1] <= MAX_PIXELS
            text = im.info.get(CHUNK)  # chunks before the pixels, no decoding needed
            if text is None and small:
                text = getattr(im, "text", {}).get(CHUNK)  # chunks after the pixels (decodes them)
            if text is not None:
                return base64.b64decode(text if isinstance(text, (str, bytes)) else str(text))
            hidden = _extract_pixels(im) if small else None
    except FormatError:
        raise
    except Exception as exc:  # PIL raises OSError, SyntaxError, ValueError, zlib.error... on damage
        raise FormatError(f"{where(path)}: damaged PNG ({image_error_text(exc)})") from exc
    if hidden is None:
        raise FormatError(
            f"{where(path)}: this PNG holds no embedding: no '{CHUNK}' text chunk and no data strips in its pixels "
            "(is it a preview image rather than an embedding card?)"
        )
    return hidden


class _BadTensor(Exception):
    """A TORCHTENSOR entry that is no numeric array (:func:`parse` adds the file name)."""


def _tensor_hook(obj: dict[str, Any]) -> Any:
    if "TORCHTENSOR" in obj:
        try:
            return torch.tensor(obj["TORCHTENSOR"], dtype=torch.float64)
        except Exception as exc:
            raise _BadTensor(f"a TORCHTENSOR entry is not a numeric array ({exc})") from exc
    return obj


def _dtype_of(record: Any) -> torch.dtype:
    if isinstance(record, str):
        try:
            record = json.loads(record)
        except ValueError:
            record = None
    name = record.get("dtype") if isinstance(record, dict) else None
    return _DTYPES.get(str(name), torch.float32)


def lcg_mask(n: int) -> np.ndarray:
    """A1111's XOR mask: its LCG (a=1664525, c=1013904223, m=2**32, seed 0) mod 255, low nibble.

    >>> lcg_mask(4).tolist() == [253 & 15, 242 & 15, 127 & 15, 44 & 15]
    True
    """
    global _LCG
    cached, seed = _LCG  # one tuple, swapped whole, so threads never see a mismatched pair
    if cached.size < n:  # the sequence is fixed: extend the cached prefix
        out = np.empty(n, dtype=np.uint8)
        out[: cached.size] = cached
        for i in range(cached.size, n):
            seed = (1664525 * seed + 1013904223) % 2**32
            out[i] = (seed % 255) & 0x0F
        _LCG = (out, seed)
        cached = out
    return cached[:n].copy()


_LCG: tuple[np.ndarray, int] = (np.empty(0, dtype=np.uint8), 0)


def _crop_black(img: np.ndarray) -> np.ndarray:
    mask: Any = (img > 0).all(2)
    cols, rows = mask.any(0), mask.any(1)
    if not cols.any():
        return img[:0, :0]
    c0, c1 = cols.argmax(), mask.shape[1] - cols[::-1].argmax()
    r0, r1 = rows.argmax(), mask.shape[0] - rows[::-1].argmax()
    return img[r0:r1, c0:c1]


def _extract_pixels(im: Any) -> bytes | None:
    """A1111's pixel-hidden embedding, or ``None`` when the picture carries none.

    The strips sit left (low nibbles) and right (high nibbles) of the picture, separated from it
    by all-black columns; each strip is XOR-masked with :func:`lcg_mask`.
    """
    arr = _crop_black(np.asarray(im.convert("RGB"), dtype=np.uint8)) & 0x0F
    black = np.where(arr.sum(axis=(0, 2)) == 0)[0]
    if black.shape[0] < 2:
        return None
    low, high = arr[:, : black.min(), :], arr[:, black.max() + 1 :, :]
    if low.size == 0 or low.shape != high.shape:
        return None
    mask = lcg_mask(low.size).reshape(low.shape)
    block = ((high ^ mask) << 4) | (low ^ mask)
    try:
        return zlib.decompress(block.astype(np.uint8).tobytes())
    except zlib.error:
        return None


# -------------------------------------------------------------------------------------- writing
def png_bytes(concept: Concept, image: Any = None, *, path: Path | None = None) -> bytes:
    """Encode ``concept`` as A1111 PNG bytes (text chunk) on ``image`` or a small preview."""
    from PIL import Image, PngImagePlugin

    a1111.check_writable(concept, path or Path("embedding.png"), "an A1111 PNG embedding")
    vectors = concept.vectors["clip"]
    record = json.loads(encode_meta(concept, dtype=str(vectors.dtype).removeprefix("torch.")))
    data = {**a1111.fields(concept), "string_to_param": {"*": {"TORCHTENSOR": vectors.double().tolist()}},
            META_KEY: record}
    info = PngImagePlugin.PngInfo()
    info.add_text(CHUNK, base64.b64encode(json.dumps(data, allow_nan=True).encode()).decode("ascii"))
    if image is None:
        picture = _preview(vectors)
    elif isinstance(image, Image.Image):
        picture = image
    else:
        # a path or an open binary file; either way the message names the picture, never a BytesIO repr
        name = str(image) if isinstance(image, (str, Path)) else getattr(image, "name", None)
        shown = f"the picture {name}" if isinstance(name, str) else f"the picture given as a {type(image).__name__}"
        target = f"{where(path)}: " if path is not None else ""
        if not isinstance(image, (str, Path)) and not hasattr(image, "read"):
            raise FormatError(f"{target}{shown} is neither a PIL image, a path nor a file")
        try:
            with Image.open(image) as opened:
                picture = opened.convert("RGB")
        except Exception as exc:
            raise FormatError(f"{target}cannot open {shown} for the PNG embedding ({image_error_text(exc)})") from exc
    buf = io.BytesIO()
    picture.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def _preview(vectors: torch.Tensor) -> Any:
    """A small picture of the vectors: one grey row per vector, scaled up."""
    from PIL import Image

    v = vectors.float().nan_to_num()
    v = (v - v.min()) / (v.max() - v.min()).clamp_min(1e-12)
    rows = (v * 255).to(torch.uint8).numpy()
    width = min(rows.shape[1], 256)
    strip = Image.fromarray(np.ascontiguousarray(rows[:, :width]))
    return strip.resize((256, max(32, 16 * rows.shape[0])), Image.Resampling.NEAREST)


def write_png_embedding(concept: Concept, path: str | Path, image: Any = None) -> Path:
    """Write ``concept`` as an A1111 PNG embedding (``image``: a PIL image, a picture path, or ``None``).

    Returns the written path. SDXL concepts do not fit this layout (A1111 keeps SDXL in safetensors).
    """
    p = Path(path)
    if p.suffix.lower() != ".png":
        raise FormatError(f"{where(p)}: a PNG embedding ends in .png")
    return atomic_write([(p, png_bytes(concept, image, path=p))])[0]
