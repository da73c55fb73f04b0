"""Read and write safetensors bytes together with their string metadata.

The header is parsed here (8-byte little-endian length + JSON) so the ``__metadata__`` strings come
back with the tensors; the tensors themselves are decoded by ``safetensors.torch.load``.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load as _st_load
from safetensors.torch import save as _st_save

from ticraft.formats._common import FormatError, where


def looks_like(data: bytes) -> bool:
    """True when ``data`` starts like a safetensors file (a plausible header length, then ``{``).

    >>> looks_like(save({"a": torch.zeros(1, 2)}, {}))
    True
    """
    if len(data) < 10:
        return False
    n = int.from_bytes(data[:8], "little")
    return 2 <= n <= len(data) - 8 and data[8:9] == b"{"


def load(data: bytes, path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Decode safetensors bytes into ``(tensors, metadata)``; any damage is a :class:`FormatError`."""
    n = int.from_bytes(data[:8], "little")
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as exc:
        raise FormatError(f"{where(path)}: damaged safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise FormatError(f"{where(path)}: damaged safetensors header (not a JSON object)")
    metadata = header.get("__metadata__") or {}
    strings = isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    if not strings:
        raise FormatError(f"{where(path)}: damaged safetensors header (__metadata__ must map strings to strings)")
    try:
        tensors = _st_load(data)
    except Exception as exc:  # SafetensorError, and whatever a damaged buffer provokes
        raise FormatError(f"{where(path)}: damaged safetensors file ({exc})") from exc
    # safetensors keeps no insertion order (it sorts by dtype and size): list keys by name.
    return {k: tensors[k] for k in sorted(tensors)}, dict(metadata)


def save(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> bytes:
    """Encode tensors + string metadata as safetensors bytes (each tensor copied to its own memory)."""
    own = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    return _st_save(own, metadata=metadata or None)
