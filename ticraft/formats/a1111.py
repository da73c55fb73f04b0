"""AUTOMATIC1111's layout and the paper code's (rinongal/textual_inversion), which it grew from.

``.pt``: ``{"string_to_token": {"*": 265}, "string_to_param": {"*": Tensor[N, D]}, "name": str,
"step": int, "sd_checkpoint": str, "sd_checkpoint_name": str}``. The paper code saves the same two
first keys with ``string_to_param`` an ``nn.ParameterDict`` (read safely, see ``_torch``).

``.safetensors`` cannot nest dicts, so an A1111 export there holds one tensor ``emb_params`` and
keeps the other fields, JSON-encoded, in the header (with ``string_to_param: {"*": "emb_params"}``
marking the layout) — the convention ai-toolkit uses; A1111 and ComfyUI read it as a one-tensor file.

ticraft adds one key, ``"ticraft"`` (JSON: token, family, meta), which A1111, ComfyUI and diffusers
ignore.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from ticraft.concept import Concept
from ticraft.formats import _safetensors, _torch
from ticraft.formats._common import (
    A1111_STAR_ID,
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

SUFFIXES = (".pt", ".bin", ".safetensors")
#: A1111 fields kept in ``meta`` when a foreign file is imported.
_FIELDS = ("step", "sd_checkpoint", "sd_checkpoint_name")


# -------------------------------------------------------------------------------------- reading
def parse(loaded: Loaded, *, family: str | None, layout: str = "a1111") -> list[Concept]:
    """Concepts of an A1111 / paper-code file (.pt, or the A1111 .safetensors variant)."""
    if loaded.container == "safetensors":
        data = _from_safetensors(loaded)
    else:
        data = loaded.data
    return parse_dict(data, loaded.path, family=family, layout=layout)


def _from_safetensors(loaded: Loaded) -> dict[str, Any]:
    data: dict[str, Any] = {k: _json_or_str(v) for k, v in loaded.metadata.items()}
    data["string_to_param"] = {"*": loaded.data["emb_params"]}
    return data


def _json_or_str(value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        return value


def parse_dict(data: Mapping[str, Any], path: Path, *, family: str | None, layout: str) -> list[Concept]:
    """Concepts of an A1111-shaped dict (also what the PNG chunk decodes to)."""
    raw = data.get("string_to_param")
    params = _torch.parameter_dict_items(raw)
    if params is None:
        if not isinstance(raw, Mapping):
            raise FormatError(f"{where(path)}: 'string_to_param' should map placeholder strings to tensors")
        params = dict(raw)
    if not params:
        raise FormatError(f"{where(path)}: 'string_to_param' is empty: the file holds no vectors")
    record = decode_meta(data.get(META_KEY), path)
    name = data.get("name")
    name = name if isinstance(name, str) and name.strip() else None
    foreign_meta: dict[str, Any] = {"imported_from": layout}
    for key in _FIELDS:
        value = data.get(key)
        if isinstance(value, (int, str)) and not isinstance(value, bool):
            foreign_meta[key] = value
    concepts = []
    for i, (placeholder, value) in enumerate(params.items()):
        matrix = as_matrix(value, path, f"string_to_param[{placeholder!r}]")
        single = len(params) == 1
        if record is not None and single:
            token = record.get("token") or name or token_from_stem(path)
        elif single:
            token = name or token_from_stem(path)
        else:  # the paper code can learn several placeholders in one file
            token = str(placeholder) if str(placeholder) not in ("*", "") else f"{token_from_stem(path)[:-1]}-{i}>"
        own = record if (record is not None and single) else None
        concepts.append(make_concept(
            token, {"clip": matrix}, path, family_arg=family,
            declared_family=own.get("family") if own else None,
            meta=own.get("meta") if own else foreign_meta,
        ))
    return concepts


# -------------------------------------------------------------------------------------- writing
def fields(concept: Concept) -> dict[str, Any]:
    """A1111's non-tensor fields for ``concept`` (step and checkpoint taken from its meta)."""
    step = concept.meta.get("step", concept.meta.get("steps"))
    step = step if isinstance(step, int) and not isinstance(step, bool) else None
    ckpt = concept.meta.get("sd_checkpoint")
    ckpt_name = concept.meta.get("sd_checkpoint_name")
    return {
        "string_to_token": {"*": A1111_STAR_ID},
        "name": concept.token,
        "step": step,
        "sd_checkpoint": ckpt if isinstance(ckpt, str) else None,
        "sd_checkpoint_name": ckpt_name if isinstance(ckpt_name, str) else None,
    }


def check_writable(concept: Concept, path: Path, what: str = "an A1111 export") -> None:
    if concept.is_sdxl:
        raise FormatError(
            f"{where(path)}: {what} holds one text encoder; write SDXL concepts with layout='kohya' "
            "(clip_l + clip_g in one file, which A1111 and ComfyUI read) or 'diffusers' (two files)"
        )


def build(concept: Concept, path: Path) -> list[tuple[Path, bytes]]:
    """The file of an A1111 export: ``.pt``/``.bin`` (torch) or ``.safetensors``."""
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise FormatError(f"{where(path)}: an A1111 export ends in .pt (or .safetensors)")
    check_writable(concept, path)
    vectors = concept.vectors["clip"].detach().contiguous().clone()
    meta = encode_meta(concept)
    if suffix == ".safetensors":
        header = {k: json.dumps(v, ensure_ascii=False) for k, v in fields(concept).items()}
        header.update({"string_to_param": json.dumps({"*": "emb_params"}), "format": "pt", META_KEY: meta})
        return [(path, _safetensors.save({"emb_params": vectors}, header))]
    data = {**fields(concept), "string_to_param": {"*": vectors}, META_KEY: meta}
    return [(path, _torch.dumps(data))]
