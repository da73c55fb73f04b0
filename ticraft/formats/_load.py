"""Open a file, sniff its container by content (never by suffix), and classify its layout."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch

from ticraft.formats import _safetensors, _torch, sd3_flux
from ticraft.formats._common import FormatError, where

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_BYTES = 256 << 20  # embeddings are KBs; a GB-sized file is a model checkpoint, not a concept


@dataclass
class Loaded:
    """A decoded file: ``container`` is ``"safetensors"``, ``"torch"`` or ``"png"``.

    ``data`` is the tensor dict (safetensors), the unpickled object (torch) or the raw bytes (png,
    decoded by the png module); ``metadata`` is the safetensors header's string map.
    """

    path: Path
    container: str
    data: Any
    metadata: dict[str, str] = field(default_factory=dict)


def read_bytes(path: str | Path) -> bytes:
    """The file's bytes, or a :class:`FormatError` saying why there are none worth reading."""
    p = Path(path)
    try:
        if not p.exists():
            raise FormatError(f"{where(p)}: no such file")
        if p.is_dir():
            raise FormatError(f"{where(p)}: is a folder, not an embedding file")
        size = p.stat().st_size
        if size == 0:
            raise FormatError(f"{where(p)}: the file is empty")
        if size > MAX_BYTES:
            raise FormatError(
                f"{where(p)}: {size / 2**20:.0f} MiB is far too large for an embedding (is it a model checkpoint?)"
            )
        return p.read_bytes()
    except OSError as exc:
        raise FormatError(f"{where(p)}: cannot read ({exc.strerror or exc})") from exc


def load(path: str | Path) -> Loaded:
    """Read and decode ``path`` safely; the layout is decided afterwards by :func:`classify`."""
    p = Path(path)
    data = read_bytes(p)
    if data.startswith(PNG_MAGIC):
        return Loaded(p, "png", data)
    if _safetensors.looks_like(data):
        tensors, metadata = _safetensors.load(data, p)
        return Loaded(p, "safetensors", tensors, metadata)
    if data[:4] == b"PK\x03\x04" or data[:1] == b"\x80":
        return Loaded(p, "torch", _torch.load(data, p))
    raise FormatError(
        f"{where(p)}: not an embedding file: its content is neither safetensors, a torch/pickle file nor a PNG"
    )


def is_token_dict(data: Any) -> bool:
    """A non-empty ``{str: Tensor}`` mapping: the diffusers layout's shape."""
    return (
        isinstance(data, Mapping)
        and len(data) > 0
        and all(isinstance(k, str) for k in data)
        and all(isinstance(v, torch.Tensor) for v in data.values())
    )


def _xti_keys(keys: set[Any]) -> str | None:
    from ticraft.formats.xti import is_own_keys, is_xti_keys  # (xti imports this module)

    if not all(isinstance(k, str) for k in keys):
        return None
    return "kohya-xti" if is_xti_keys(keys) else "ticraft-xti" if is_own_keys(keys) else None


def classify(loaded: Loaded) -> str:
    """The layout of one decoded file, before diffusers-SDXL pairing (so never ``diffusers-sdxl``)."""
    data, path = loaded.data, loaded.path
    if loaded.container == "png":
        return "a1111-png"
    if loaded.container == "safetensors":
        keys = set(data)
        if not keys:
            raise FormatError(f"{where(path)}: the safetensors file holds no tensors")
        if flow := sd3_flux.classify_keys(keys):  # SD3/Flux: a T5 key (comfyui / diffusers-t5 / onetrainer)
            return flow
        if keys == {"clip_l", "clip_g"}:
            return "kohya-sdxl"
        if per_layer := _xti_keys(keys):  # kohya's per-layer (XTI) file (IN01 … OUT11) or ticraft's
            return per_layer
        if keys == {"emb_params"}:
            # Both kohya and A1111 name the single tensor "emb_params"; A1111 exports also record
            # their dict layout in the header.
            return "a1111" if "string_to_param" in loaded.metadata else "kohya"
        return "diffusers"
    if isinstance(data, torch.Tensor):
        return "diffusers"  # a bare tensor: diffusers' loader takes it with token=
    if not isinstance(data, Mapping):
        raise FormatError(f"{where(path)}: holds a {type(data).__name__}, not an embedding")
    if "string_to_param" in data:
        paper = isinstance(data["string_to_param"], torch.nn.ParameterDict) and "name" not in data
        return "paper" if paper else "a1111"
    keys = set(data)
    if keys == {"clip_l", "clip_g"}:
        return "kohya-sdxl"
    if per_layer := _xti_keys(keys):
        return per_layer
    if keys == {"emb_params"}:
        return "kohya"
    if is_token_dict(data) and (flow := sd3_flux.classify_keys(keys)):
        return flow
    if is_token_dict(data):
        return "diffusers"
    shown = ", ".join(repr(k) for k in list(data)[:8]) + (", ..." if len(data) > 8 else "")
    raise FormatError(
        f"{where(path)}: unknown embedding layout (keys: {shown or 'none'}); expected diffusers {{token: tensor}}, "
        "A1111 string_to_param, kohya emb_params or clip_l/clip_g"
    )
