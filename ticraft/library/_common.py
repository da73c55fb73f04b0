"""Constants, the error type and small file helpers shared by the library modules."""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from ticraft.errors import TicraftError

#: Version of manifest.json / meta.json / the embedding header this code writes.
SCHEMA = 1
MANIFEST = "manifest.json"
EMBEDDING = "embedding.safetensors"
META = "meta.json"
IMAGES = "images"
SAMPLES = "samples"
LOCK = ".lock"
TMP_DIR = ".tmp"
TRASH_DIR = ".trash"
ENV_VAR = "TICRAFT_LIBRARY"
LOCK_TIMEOUT_S = 30.0
MAX_TOKEN_LEN = 100
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff"})
#: Encoder-key sets the canonical file may hold.
CANONICAL_KEYS = ({"clip"}, {"clip_l", "clip_g"}, {"clip_l", "clip_g", "t5"}, {"clip_l", "t5"})  # +SD3, Flux
#: Layouts :meth:`Library.export` can write, with the file suffix used when given a folder.
EXPORT_LAYOUTS = {"diffusers": ".safetensors", "a1111": ".pt", "kohya": ".safetensors",
                  "comfyui": ".safetensors", "diffusers-t5": ".safetensors",  # these two: SD3/Flux
                  "kohya-xti": ".safetensors", "ticraft-xti": ".safetensors"}  # per-layer concepts (formats/xti.py)
#: meta fields that only dedicated methods may change.
_RESERVED_META = frozenset({"token", "family", "tags", "num_vectors", "dims", "sha256", "created", "images", "schema"})
#: safetensors dtype names → the ``str(torch.dtype)`` that Concept.sha256 hashes.
_ST_DTYPES = {
    "F64": "torch.float64", "F32": "torch.float32", "F16": "torch.float16", "BF16": "torch.bfloat16",
    "F8_E4M3": "torch.float8_e4m3fn", "F8_E5M2": "torch.float8_e5m2",
}
_WINDOWS_RESERVED = frozenset({"con", "prn", "aux", "nul", *(f"com{i}" for i in range(10)),
                               *(f"lpt{i}" for i in range(10))})
_BAD_TOKEN_CHARS = re.compile(r"[\s\x00-\x1f\x7f]")
_BAD_TAG_CHARS = re.compile(r"[\s,\x00-\x1f\x7f]")


class LibraryError(TicraftError):
    """A library operation failed because of bad input or a broken library (message says which)."""


LibraryError.__module__ = "ticraft.library"  # its public home, as tracebacks should show it


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a torn one."""
    from ticraft.io import atomic_write_bytes as write

    write(path, data)


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    if isinstance(value, (_dt.datetime, _dt.date)):
        return value.isoformat()
    if hasattr(value, "tolist"):  # torch / numpy tensors and scalars
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def to_jsonable(value: Mapping[str, Any], what: str = "metadata") -> dict[str, Any]:
    """A JSON-clean copy of ``value`` (paths → str, tensors → lists); unserialisable → LibraryError."""
    try:
        return json.loads(json.dumps(dict(value), default=_json_default))
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"{what} must be JSON-serialisable: {exc}") from exc


# Only arrays json.dumps laid out over several lines: strings never hold a raw newline, so text
# inside a string value can never match.
_NUMBER_ARRAY = re.compile(r"\[\n\s*((?:-?\d[\d.eE+-]*,\n\s*)*-?\d[\d.eE+-]*)\n\s*\]")


def _dump_json(data: Any) -> bytes:
    """Indented JSON for people to read, with arrays of plain numbers (loss curves) on one line.

    >>> _dump_json({"loss": [1, 0.5]}).decode()
    '{\\n  "loss": [1, 0.5]\\n}\\n'
    """
    text = json.dumps(data, indent=2, ensure_ascii=False, default=_json_default)
    return (_NUMBER_ARRAY.sub(lambda m: "[" + re.sub(r"\s+", " ", m.group(1)) + "]", text) + "\n").encode()


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise LibraryError(f"{path.name} is unreadable ({exc})") from exc
    if not isinstance(data, dict):
        raise LibraryError(f"{path.name} does not hold a JSON object")
    return data


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def collect_images(images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None) -> list[Path]:
    """Expand files and folders into a sorted list of image files; missing paths raise LibraryError.

    Folders contribute their image files (by suffix, not recursively); files are taken as given.
    """
    if images is None:
        return []
    if isinstance(images, (str, os.PathLike)):
        images = [images]
    out: list[Path] = []
    for item in images:
        path = Path(item).expanduser()
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
            if not found:
                raise LibraryError(f"no images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {path}")
            out.extend(found)
        elif path.is_file():
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                raise LibraryError(f"{path} is not an image file ({', '.join(sorted(IMAGE_SUFFIXES))})")
            out.append(path)
        else:
            raise LibraryError(f"image path {path} does not exist")
    return out
