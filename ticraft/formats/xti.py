"""kohya's XTI (per-layer textual inversion) layout: ``{"IN01": T[N, D], …, "MID": …, "OUT11": …}``.

kohya-ss sd-scripts' ``train_textual_inversion_XTI.py`` writes one tensor per cross-attention layer of an
SD-1.x/2.x UNet, keyed by the layer's place in the original LDM UNet (input blocks 1, 2, 4, 5, 7, 8, the middle
block, output blocks 3–11), in that order, as ``.safetensors`` or ``.pt``; its loader concatenates the 16
values in file order. Those 16 layers are exactly :func:`ticraft.models.layers.cross_attention_layers` of an
SD-1.x/2.x UNet (down, mid, up), so a ticraft per-layer concept is these tensors stacked layer-major.

Which tools load it: kohya's sd-scripts only — ``train_textual_inversion_XTI.py --weights`` (to continue
training) and ``gen_img_diffusers.py --XTI_embeddings`` (to sample; kohya's release note says the Web UI does not
load it). AUTOMATIC1111, ComfyUI and diffusers condition every layer on one encoding: for them, write a single-token
approximation (``ticraft library export --flatten``, :func:`ticraft.analysis.flatten.flatten`).

Per-layer concepts of other models (SDXL's two encoders, the toy model's 7 layers, any layer count but SD's 16)
have no kohya file; ticraft writes them as ``ticraft-xti``: ``{"<encoder>.L00": T[N, D], …}``, one key per
encoder and layer, read back by ticraft only.

In ``.safetensors`` ticraft's metadata (token, family, meta) rides in the header, so a round trip is exact;
a ``.pt`` holds the tensors alone, as kohya writes it.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

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
from ticraft.wording import counted

#: kohya's layer keys, in its order (= ticraft's layer order on SD-1.x/2.x).
KOHYA_LAYERS = ("IN01", "IN02", "IN04", "IN05", "IN07", "IN08", "MID", "OUT03", "OUT04", "OUT05", "OUT06",
                "OUT07", "OUT08", "OUT09", "OUT10", "OUT11")
SUFFIXES = (".safetensors", ".pt")
_OWN_KEY = re.compile(r"^(clip|clip_l|clip_g)\.L(\d{2,3})$")


def layout_for(concept: Concept) -> str | None:
    """The per-layer layout a concept is written in (``None`` for an ordinary concept)."""
    if concept.layers <= 1:
        return None
    return "kohya-xti" if concept.layers == len(KOHYA_LAYERS) and set(concept.vectors) == {"clip"} else "ticraft-xti"


def is_own_keys(keys: set[str]) -> bool:
    """Whether a file's keys are ticraft's per-layer ``<encoder>.L<nn>`` keys (layers 0…L-1 of each encoder)."""
    found: dict[str, set[int]] = {}
    for k in keys:
        m = _OWN_KEY.match(k)
        if m is None:
            return False
        found.setdefault(m.group(1), set()).add(int(m.group(2)))
    counts = {len(v) for v in found.values()}
    return bool(found) and len(counts) == 1 and all(v == set(range(len(v))) for v in found.values())


def is_xti_keys(keys: set[str]) -> bool:
    """Whether a file's keys are kohya's 16 XTI layer names."""
    return keys == set(KOHYA_LAYERS)


def _stack(data: dict, keys: list[str], path: Path) -> torch.Tensor:
    rows = [as_matrix(data[k], path, f"key {k!r}") for k in keys]
    if len({tuple(r.shape) for r in rows}) != 1 or len({r.dtype for r in rows}) != 1:
        shapes = {k: tuple(r.shape) for k, r in zip(keys, rows, strict=True)}
        raise FormatError(f"{where(path)}: the per-layer tensors disagree on shape or dtype: {shapes}")
    return torch.cat(rows)


def parse(loaded: Loaded, *, family: str | None, layout: str = "kohya-xti") -> list[Concept]:
    """The one per-layer concept of a kohya XTI file (16 layers of one encoder) or a ``ticraft-xti`` file."""
    data, path = loaded.data, loaded.path
    if layout == "kohya-xti":
        vectors = {"clip": _stack(data, list(KOHYA_LAYERS), path)}
        layers = len(KOHYA_LAYERS)
    else:
        encoders = sorted({k.split(".")[0] for k in data})
        layers = len(data) // len(encoders)
        vectors = {e: _stack(data, [f"{e}.L{i:02d}" for i in range(layers)], path) for e in encoders}
    record = decode_meta(loaded.metadata.get(META_KEY), path)
    meta = dict(record.get("meta") or {}) if record is not None else {"imported_from": layout}
    meta.update({"method": "xti", "xti_layers": layers})
    token = (record.get("token") if record is not None else None) or token_from_stem(path)
    declared = record.get("family") if record is not None else None
    return [make_concept(token, vectors, path, family_arg=family, declared_family=declared, meta=meta)]


def build(concept: Concept, path: Path, layout: str = "kohya-xti") -> list[tuple[Path, bytes]]:
    """The file of a per-layer export: kohya's 16 layer keys, or ticraft's ``<encoder>.L<nn>`` keys."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(f"{where(path)}: a per-layer (XTI) export ends in .safetensors (or .pt)")
    if concept.layers <= 1:
        raise FormatError(f"{where(path)}: layout {layout!r} holds per-layer concepts; {concept.token!r} has one "
                          "vector set for every layer (write it as diffusers, a1111 or kohya)")
    if layout == "kohya-xti" and layout_for(concept) != "kohya-xti":
        raise FormatError(
            f"{where(path)}: kohya's XTI layout holds 16 layers of one text encoder (SD-1.x/2.x); concept "
            f"{concept.token!r} has {counted(concept.layers, 'layer')} of {sorted(concept.vectors)}: write "
            "'ticraft-xti' (ticraft reads it back) or export it with --flatten")
    tensors: dict[str, torch.Tensor] = {}
    for key, v in concept.vectors.items():
        per_layer = v.reshape(concept.layers, concept.num_vectors, -1)
        names = list(KOHYA_LAYERS) if layout == "kohya-xti" else [f"{key}.L{i:02d}" for i in range(concept.layers)]
        tensors.update({k: per_layer[i].detach().contiguous().clone() for i, k in enumerate(names)})
    if suffix == ".safetensors":
        return [(path, _safetensors.save(tensors, {"format": "pt", META_KEY: encode_meta(concept)}))]
    return [(path, _torch.dumps(tensors))]


__all__ = ["KOHYA_LAYERS", "build", "is_own_keys", "is_xti_keys", "layout_for", "parse"]
