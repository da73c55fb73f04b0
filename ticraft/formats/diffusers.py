"""The diffusers layout: ``{token: Tensor[N, D]}`` in ``.safetensors`` (metadata ``{"format": "pt"}``) or ``.bin``.

SDXL uses two such files, ``x.safetensors`` (clip_l) and ``x_2.safetensors`` (clip_g), as the
diffusers SDXL training example writes them; load them with one ``load_textual_inversion`` call
per text encoder.

>>> import tempfile, torch
>>> from ticraft.concept import Concept
>>> from ticraft.formats import read_concept, write_concept
>>> c = Concept("<cat>", {"clip": torch.ones(2, 768)})
>>> out = write_concept(c, tempfile.mkdtemp() + "/cat.safetensors")
>>> read_concept(out[0]).token
'<cat>'
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

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
from ticraft.formats._load import Loaded, classify, is_token_dict, load

SUFFIXES = (".safetensors", ".bin", ".pt")


# -------------------------------------------------------------------------------------- reading
def record_of(loaded: Loaded) -> dict[str, Any] | None:
    """ticraft's metadata record of a safetensors file (``None`` for foreign or torch files)."""
    return decode_meta(loaded.metadata.get(META_KEY), loaded.path)


def _token_vectors(loaded: Loaded) -> dict[str, torch.Tensor]:
    """``{token: [N, D]}`` of one diffusers file (a bare tensor takes the file stem as its token)."""
    data = loaded.data
    if isinstance(data, torch.Tensor):
        return {token_from_stem(loaded.path): as_matrix(data, loaded.path, "the tensor")}
    if not is_token_dict(data):
        raise FormatError(f"{where(loaded.path)}: expected a diffusers {{token: tensor}} mapping")
    return {k: as_matrix(v, loaded.path, f"token {k!r}") for k, v in data.items()}


def parse(loaded: Loaded, *, family: str | None) -> list[Concept]:
    """Concepts of a single-encoder diffusers file, one per token key."""
    vectors = _token_vectors(loaded)
    record = record_of(loaded)
    if record is not None and record.get("encoder"):
        raise FormatError(
            f"{where(loaded.path)}: this is the {record['encoder']} half of an SDXL diffusers pair; "
            "its companion file was not found (pass companion=)"
        )
    concepts = []
    for token, matrix in vectors.items():
        own = record if (record is not None and len(vectors) == 1) else None
        concepts.append(make_concept(
            token, {"clip": matrix}, loaded.path, family_arg=family,
            declared_family=own.get("family") if own else None,
            meta=own.get("meta") if own else {"imported_from": "diffusers"},
        ))
    return concepts


def parse_pair(clip_l: Loaded, clip_g: Loaded, *, family: str | None) -> list[Concept]:
    """Concepts of an SDXL pair: the same token keys in both files, clip_l first."""
    lv, gv = _token_vectors(clip_l), _token_vectors(clip_g)
    if set(lv) != set(gv):
        raise FormatError(
            f"{where(clip_l.path)} and {where(clip_g.path)} do not form an SDXL pair: "
            f"their tokens differ ({sorted(lv)} vs {sorted(gv)})"
        )
    record = record_of(clip_l) or record_of(clip_g)
    concepts = []
    for token in lv:
        own = record if (record is not None and len(lv) == 1) else None
        concepts.append(make_concept(
            token, {"clip_l": lv[token], "clip_g": gv[token]}, clip_l.path, family_arg=family,
            declared_family=own.get("family") if own else None,
            meta=own.get("meta") if own else {"imported_from": "diffusers-sdxl"},
        ))
    return concepts


# ---------------------------------------------------------------------------------- SDXL pairing
def pair_names(path: Path) -> list[tuple[Path, str]]:
    """Candidate companions of ``path`` and the role *the companion* would play.

    >>> [(p.name, r) for p, r in pair_names(Path("x_2.safetensors"))]
    [('x.safetensors', 'clip_l'), ('x_2_2.safetensors', 'clip_g')]
    """
    out = []
    if path.stem.endswith("_2") and len(path.stem) > 2:
        out.append((path.with_name(path.stem[:-2] + path.suffix), "clip_l"))
    out.append((path.with_name(path.stem + "_2" + path.suffix), "clip_g"))
    return out


def _widths(loaded: Loaded) -> set[int]:
    data = loaded.data
    values = [data] if isinstance(data, torch.Tensor) else list(data.values())
    return {int(v.shape[-1]) for v in values if v.ndim >= 1}


def _counts(loaded: Loaded) -> dict[str, int]:
    data = loaded.data
    if isinstance(data, torch.Tensor):
        return {"": int(data.shape[0]) if data.ndim == 2 else 1}
    return {k: (int(v.shape[0]) if v.ndim == 2 else 1) for k, v in data.items()}


def _fits_pair(clip_l: Loaded, clip_g: Loaded) -> bool:
    """Do two diffusers files look like one SDXL concept (same tokens and counts, other widths)?"""
    if isinstance(clip_l.data, torch.Tensor) or isinstance(clip_g.data, torch.Tensor):
        return False
    tags = [(record_of(x) or {}).get("encoder") for x in (clip_l, clip_g)]
    if tags[0] not in (None, "clip_l") or tags[1] not in (None, "clip_g"):
        return False
    return _counts(clip_l) == _counts(clip_g) and not (_widths(clip_l) & _widths(clip_g))


def find_pair(loaded: Loaded, companion: str | Path | None = None) -> tuple[Loaded, Loaded] | str | None:
    """Find the other half of an SDXL diffusers pair.

    Returns ``(clip_l, clip_g)`` when found; a message when ``loaded`` is evidently half of a pair
    whose other half is missing; ``None`` for an ordinary single-encoder file.
    """
    path = loaded.path
    record = record_of(loaded) or {}
    tag = record.get("encoder")
    if companion is not None:
        other = load(companion)
        if classify(other) != "diffusers":
            raise FormatError(f"{where(companion)}: the companion= file is not in the diffusers layout")
        return _order_explicit(loaded, other)
    for candidate, role in pair_names(path):
        if candidate == path or not candidate.is_file():
            continue
        try:
            other = load(candidate)
            if classify(other) != "diffusers":
                continue
        except FormatError:
            if tag:
                raise
            continue  # an unrelated broken file next door does not spoil this one
        pair = (other, loaded) if role == "clip_l" else (loaded, other)
        if _fits_pair(*pair):
            return pair
    if tag in ("clip_l", "clip_g"):
        want = "x_2" if tag == "clip_l" else "x"
        return (f"{where(path)} is the {tag} half of an SDXL diffusers pair, but its companion "
                f"({want}-style name beside it) was not found; pass companion=")
    if not isinstance(loaded.data, torch.Tensor) and _widths(loaded) == {1280}:
        return (f"{where(path)} holds 1280-wide vectors, the clip_g half of an SDXL pair; its clip_l companion "
                "was not found beside it; pass companion=")
    return None


def _order_explicit(a: Loaded, b: Loaded) -> tuple[Loaded, Loaded]:
    """Order an explicitly given pair as (clip_l, clip_g): by metadata tags, then names, then widths."""
    tag_a, tag_b = ((record_of(x) or {}).get("encoder") for x in (a, b))
    if tag_a == "clip_g" or tag_b == "clip_l":
        return b, a
    if tag_a == "clip_l" or tag_b == "clip_g":
        return a, b
    if a.path.stem.endswith("_2") != b.path.stem.endswith("_2"):
        return (b, a) if a.path.stem.endswith("_2") else (a, b)
    wa, wb = max(_widths(a), default=0), max(_widths(b), default=0)
    return (b, a) if wa > wb else (a, b)


# -------------------------------------------------------------------------------------- writing
def sdxl_paths(path: Path) -> tuple[Path, Path]:
    """Where an SDXL concept goes: ``x.safetensors`` (clip_l) and ``x_2.safetensors`` (clip_g)."""
    return path, path.with_name(path.stem + "_2" + path.suffix)


def build(concept: Concept, path: Path) -> list[tuple[Path, bytes]]:
    """The files of a diffusers export (two for SDXL)."""
    if path.suffix.lower() not in SUFFIXES:
        raise FormatError(f"{where(path)}: a diffusers export ends in .safetensors or .bin")
    if concept.is_sdxl:
        lp, gp = sdxl_paths(path)
        return [(lp, _encode(concept, "clip_l", lp, "clip_l")), (gp, _encode(concept, "clip_g", gp, "clip_g"))]
    return [(path, _encode(concept, "clip", path, None))]


def _encode(concept: Concept, key: str, path: Path, encoder: str | None) -> bytes:
    tensors = {concept.token: concept.vectors[key]}
    if path.suffix.lower() == ".safetensors":
        extra = {"encoder": encoder} if encoder else {}
        return _safetensors.save(tensors, {"format": "pt", META_KEY: encode_meta(concept, **extra)})
    # diffusers' loader wants exactly one key in a .bin, so no metadata rides along here.
    return _torch.dumps({k: v.detach().contiguous().clone() for k, v in tensors.items()})
