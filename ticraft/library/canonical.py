"""The canonical ``embedding.safetensors`` of a library entry.

Keys ``"clip"`` (sd1/sd2/toy) or ``"clip_l"`` + ``"clip_g"`` (sdxl); the header metadata (str→str)
carries ``token``, ``family``, ``ticraft`` (the concept's meta as JSON) and ``ticraft_schema``.
Headers are parsed and rewritten here without torch, so renaming or re-tagging never loads it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ticraft.io import SafetensorsHeaderError, parse_safetensors_header
from ticraft.io import read_safetensors_header as _read_file_header
from ticraft.library._common import _ST_DTYPES, CANONICAL_KEYS, SCHEMA, LibraryError

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept

def read_safetensors_header(data: bytes, name: str = "file") -> tuple[dict[str, Any], int]:
    """Parse a safetensors header without torch: ``(header, data_start)``.

    The parsing is :func:`ticraft.io.parse_safetensors_header`'s; its error is raised as a
    :class:`LibraryError` (same message) for a truncated or corrupt file.
    """
    try:
        return parse_safetensors_header(data, name)
    except SafetensorsHeaderError as exc:
        raise LibraryError(str(exc)) from exc


def _with_header_metadata(data: bytes, metadata: Mapping[str, str], name: str) -> bytes:
    """``data`` (a safetensors file) with its ``__metadata__`` replaced; tensor bytes untouched.

    Tensor offsets are relative to the end of the header, so only the header is rewritten: no torch
    needed to rename or re-tag a concept.
    """
    header, start = read_safetensors_header(data, name)
    header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)  # keep tensor data 8-byte aligned, as safetensors does
    return len(raw).to_bytes(8, "little") + raw + data[start:]


def _tensor_sha256(header: Mapping[str, Any], data: bytes, start: int, name: str) -> str:
    """Concept.sha256() computed from the file bytes (same keys, shapes, dtype names and raw bytes)."""
    h = hashlib.sha256()
    for key in sorted(k for k in header if k != "__metadata__"):
        info = header[key]
        try:
            begin, end = (int(x) for x in info["data_offsets"])
            dtype = _ST_DTYPES[info["dtype"]]
            shape = tuple(int(x) for x in info["shape"])
        except (KeyError, TypeError, ValueError) as exc:
            raise LibraryError(f"{name}: tensor {key!r} has a malformed header entry") from exc
        if not 0 <= begin <= end <= len(data) - start:
            raise LibraryError(f"{name}: tensor {key!r} lies outside the file (truncated?)")
        h.update(key.encode())
        h.update(str(shape).encode())
        h.update(dtype.encode())
        h.update(data[start + begin : start + end])
    return h.hexdigest()


def header_metadata(token: str, family: str | None, meta: Mapping[str, Any]) -> dict[str, str]:
    """The str→str safetensors metadata of a library embedding.

    ``ticraft`` holds the same JSON record :mod:`ticraft.formats` writes (``version``, ``token``,
    ``family``, ``meta``), so either reader understands the other's files; plain ``token`` and
    ``family`` keys make the header readable at a glance.

    >>> header_metadata("<a>", "toy", {"steps": 3})["ticraft"]
    '{"family": "toy", "meta": {"steps": 3}, "token": "<a>", "version": 1}'
    """
    record = {"version": SCHEMA, "token": token, "family": family, "meta": dict(meta)}
    return {
        "format": "pt",  # the conventional safetensors marker; other tools expect it
        "token": token,
        "family": family or "",
        "ticraft": json.dumps(record, ensure_ascii=False, sort_keys=True),
    }


def parse_header_metadata(metadata: Any, name: str) -> tuple[str, str | None, dict[str, Any]]:
    """``(token, family, meta)`` from a library embedding's header metadata; LibraryError if absent."""
    if not isinstance(metadata, dict):
        raise LibraryError(f"{name} has no ticraft metadata in its header: not a library embedding")
    try:
        record = json.loads(metadata.get("ticraft") or "{}")
    except (TypeError, ValueError) as exc:
        raise LibraryError(f"{name}: the 'ticraft' header field is not JSON ({exc})") from exc
    if not isinstance(record, dict):
        raise LibraryError(f"{name}: the 'ticraft' header field is not a JSON object")
    version = record.get("version", SCHEMA)
    if isinstance(version, int) and version > SCHEMA:
        raise LibraryError(f"{name} was written by a newer ticraft (record version {version}); upgrade to read it")
    token = record.get("token") or metadata.get("token")
    family = record.get("family") or metadata.get("family") or None
    meta = record.get("meta") or {}
    if not isinstance(token, str) or not token:
        raise LibraryError(f"{name} has no token in its header: not a library embedding")
    if family is not None and not isinstance(family, str):
        raise LibraryError(f"{name}: bad family {family!r} in its header")
    if not isinstance(meta, dict):
        raise LibraryError(f"{name}: the header's meta is not a JSON object")
    return token, family, meta


def encode_canonical(concept: "Concept", meta: Mapping[str, Any] | None = None) -> bytes:
    """The canonical ``embedding.safetensors`` bytes of ``concept`` (vectors stored as they are)."""
    keys = set(concept.vectors)
    if keys not in CANONICAL_KEYS:
        raise LibraryError(
            f"concept {concept.token!r} has encoders {sorted(keys)}; a library stores 'clip' or 'clip_l' + 'clip_g'"
        )
    from safetensors.torch import save

    tensors = {k: v.detach().cpu().contiguous() for k, v in concept.vectors.items()}
    metadata = header_metadata(concept.token, concept.family, concept.meta if meta is None else meta)
    return save(tensors, metadata=metadata)


def is_canonical(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a library-style embedding: ``clip`` or ``clip_l``/``clip_g`` tensors and a
    ticraft token in the header (checked from the header alone; never raises)."""
    try:
        header, _ = _read_file_header(path)
        if not isinstance(header, dict) or set(header) - {"__metadata__"} not in CANONICAL_KEYS:
            return False
        parse_header_metadata(header.get("__metadata__"), str(path))
    except (OSError, ValueError, SafetensorsHeaderError, LibraryError):
        return False
    return True


def read_canonical(path: str | os.PathLike[str]) -> "Concept":
    """Load a library ``embedding.safetensors`` as a :class:`~ticraft.concept.Concept`."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LibraryError(f"cannot read {path}: {exc}") from exc
    header, _ = read_safetensors_header(data, str(path))
    token, family, meta = parse_header_metadata(header.get("__metadata__"), str(path))
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ticraft.concept import Concept

    try:
        tensors = load(data)
    except (SafetensorError, ValueError, RuntimeError) as exc:
        raise LibraryError(f"{path} is corrupt: {exc}") from exc
    if set(tensors) not in CANONICAL_KEYS:
        raise LibraryError(f"{path} holds tensors {sorted(tensors)}; expected 'clip' or 'clip_l' + 'clip_g'")
    return Concept(token, tensors, family=family, meta=meta)
