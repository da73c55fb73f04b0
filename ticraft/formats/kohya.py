"""kohya-ss sd-scripts' layout: ``{"emb_params": Tensor[N, D]}``; SDXL ``{"clip_l": T, "clip_g": T}``.

One file for both SDXL encoders — the layout A1111 and ComfyUI read for SDXL embeddings. In
``.safetensors`` ticraft's metadata rides in the header; a ``.pt`` holds the tensors alone
(A1111 rejects extra keys beside them), so its token comes from the file name.
"""

from __future__ import annotations

from pathlib import Path

from ticraft.concept import Concept
from ticraft.formats import _safetensors, _torch
from ticraft.formats._common import (
    META_KEY,
    FormatError,
    as_matrix,
    decode_meta,
    encode_meta,
    make_concept,
    token_from_stem,
    where,
)
from ticraft.formats._load import Loaded

SUFFIXES = (".safetensors", ".pt", ".bin")


def parse(loaded: Loaded, *, family: str | None) -> list[Concept]:
    """The one concept of a kohya file."""
    data, path = loaded.data, loaded.path
    if set(data) == {"clip_l", "clip_g"}:
        vectors = {k: as_matrix(data[k], path, f"key {k!r}") for k in ("clip_l", "clip_g")}
        layout = "kohya-sdxl"
    else:
        vectors = {"clip": as_matrix(data["emb_params"], path, "key 'emb_params'")}
        layout = "kohya"
    record = decode_meta(loaded.metadata.get(META_KEY), path)
    if record is not None:
        return [make_concept(record.get("token") or token_from_stem(path), vectors, path, family_arg=family,
                             declared_family=record.get("family"), meta=record.get("meta"))]
    return [make_concept(token_from_stem(path), vectors, path, family_arg=family, meta={"imported_from": layout})]


def build(concept: Concept, path: Path) -> list[tuple[Path, bytes]]:
    """The file of a kohya export (``emb_params``, or ``clip_l`` + ``clip_g`` for SDXL)."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(f"{where(path)}: a kohya export ends in .safetensors (or .pt)")
    tensors = dict(concept.vectors) if concept.is_sdxl else {"emb_params": concept.vectors["clip"]}
    if suffix == ".safetensors":
        return [(path, _safetensors.save(tensors, {"format": "pt", META_KEY: encode_meta(concept)}))]
    return [(path, _torch.dumps({k: v.detach().contiguous().clone() for k, v in tensors.items()}))]
