"""SD3/SD3.5 and Flux embedding files: one tensor per text encoder, T5 included.

==============  =============================================  ==========================================
layout          keys                                            written by
==============  =============================================  ==========================================
comfyui         ``clip_l``, ``clip_g`` (SD3 only), ``t5xxl``   ComfyUI's embedding loader reads these
diffusers-t5    ``clip_l``, ``clip_g`` (SD3 only), ``t5``      diffusers' advanced DreamBooth scripts;
                                                                OneTrainer's input vectors use the same keys
onetrainer      the above plus output-space ``*_out`` keys      OneTrainer ("output embedding" on): read-
                (e.g. ``t5_out``)                               only, refused — see below
==============  =============================================  ==========================================

ticraft's encoder keys are ``clip_l``, ``clip_g``, ``t5``; ComfyUI names T5's ``t5xxl``. The family comes
from the caller's ``family=``, else the file's ticraft metadata, else the keys and widths: keys
``clip_l`` + ``clip_g`` + T5 are SD3, ``clip_l`` + T5 Flux, and without a declared family the widths must
be the real models' (CLIP-L 768, CLIP-G 1280, T5-XXL 4096). A file lacking a key its family needs is
refused with one sentence naming the key — never silently read from another tensor, as ComfyUI does.

OneTrainer's ``*_out`` tensors replace the text encoder's *output* at the token's place; ticraft splices
input vectors only, so such a file is refused (one sentence) rather than read without them.

Round trips are exact: tensors are stored as they are (dtype kept), token/family/meta ride in the
safetensors header.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Iterable

from ticraft.concept import Concept, ConceptError
from ticraft.formats import _safetensors, _torch
from ticraft.formats._common import META_KEY, FormatError, as_matrix, decode_meta, encode_meta, token_from_stem, where

if TYPE_CHECKING:
    from ticraft.formats._load import Loaded

#: ticraft key → file key, per layout.
FILE_KEYS = {
    "comfyui": {"clip_l": "clip_l", "clip_g": "clip_g", "t5": "t5xxl"},
    "diffusers-t5": {"clip_l": "clip_l", "clip_g": "clip_g", "t5": "t5"},
}
LAYOUTS = ("comfyui", "diffusers-t5", "onetrainer")
WRITABLE = ("comfyui", "diffusers-t5")
FAMILY_KEYS = {"sd3": ("clip_l", "clip_g", "t5"), "flux": ("clip_l", "t5")}
STANDARD_WIDTHS = {"clip_l": 768, "clip_g": 1280, "t5": 4096}
_KNOWN = {"clip_l", "clip_g", "t5", "t5xxl"}


def classify_keys(keys: Iterable[str]) -> str | None:
    """The layout of a tensor dict with these keys, or ``None`` when it is not an SD3/Flux file.

    >>> classify_keys(["clip_l", "t5xxl"]), classify_keys(["clip_l", "t5"]), classify_keys(["t5", "t5_out"])
    ('comfyui', 'diffusers-t5', 'onetrainer')
    >>> classify_keys(["clip_l", "clip_g"]) is None
    True
    """
    ks = set(keys)
    inputs = {k for k in ks if not k.endswith("_out")}
    outputs = {k[:-4] for k in ks if k.endswith("_out")}
    if outputs and outputs <= _KNOWN and inputs <= _KNOWN:
        return "onetrainer"
    if ks == {"clip_l", "clip_g"} or not ks or not ks <= _KNOWN:
        return None  # SDXL (kohya-sdxl), or not an encoder-keyed file at all
    # A lone clip_l / clip_g, or one with T5: an SD3/Flux file (perhaps missing a key, which parse refuses) —
    # never a diffusers {token: tensor} file whose token happens to be "clip_l".
    return "comfyui" if "t5xxl" in ks else "diffusers-t5"


def handles(concept: Concept) -> bool:
    """Whether ``concept`` has SD3/Flux vectors (a ``t5`` key)."""
    return "t5" in concept.vectors


def _family(keys: set[str], dims: dict[str, int], path: Path, layout: str, argument: str | None,
            declared: str | None) -> str:
    name = FILE_KEYS[layout]
    family = argument or declared
    if family is None:
        guessed = [f for f, need in FAMILY_KEYS.items() if keys == set(need)]
        fits = [f for f, need in FAMILY_KEYS.items() if keys <= set(need)]
        if not guessed and len(fits) > 1:
            raise FormatError(
                f"{where(path)}: the file holds only {', '.join(sorted(name[k] for k in keys))}, which SD3 and Flux "
                "both use, so its family is ambiguous (and either would also need vectors it lacks)"
            )
        if not guessed:  # one family fits but a key is missing: say which (below)
            family = fits[0]
        else:
            family = guessed[0]
    if declared is None and argument is None and set(FAMILY_KEYS[family]) == keys:
        odd = {k: w for k, w in dims.items() if STANDARD_WIDTHS[k] != w}
        if odd:
            raise FormatError(
                f"{where(path)}: looks like {family} by its keys, but its widths {odd} are not the real model's "
                f"({ {k: STANDARD_WIDTHS[k] for k in odd} }); give the family (family= / --family) to read it"
            )
        return family
    if family not in FAMILY_KEYS:
        raise FormatError(f"{where(path)}: family {family!r} does not read T5 vectors; SD3 and Flux files are "
                          f"{', '.join(LAYOUTS)}")
    missing = [k for k in FAMILY_KEYS[family] if k not in keys]
    if missing:
        raise FormatError(f"{where(path)}: the file lacks key {name[missing[0]]!r}, which a {family} concept needs")
    extra = sorted(keys - set(FAMILY_KEYS[family]))
    if extra:
        raise FormatError(f"{where(path)}: key {name[extra[0]]!r} does not belong to a {family} concept")
    return family


def parse(loaded: "Loaded", layout: str, *, family: str | None) -> list[Concept]:
    """The one concept of an SD3/Flux embedding file (see the module docstring)."""
    data, path = loaded.data, loaded.path
    if layout == "onetrainer":
        outs = sorted(k for k in data if k.endswith("_out"))
        raise FormatError(
            f"{where(path)}: holds OneTrainer output-space vectors ({', '.join(outs)}), which act after the text "
            "encoder; ticraft splices input vectors only, so re-export it from OneTrainer without output embeddings"
        )
    name = FILE_KEYS[layout]
    vectors = {k: as_matrix(data[fk], path, f"key {fk!r}") for k, fk in name.items() if fk in data}
    record = decode_meta(loaded.metadata.get(META_KEY), path) if loaded.container == "safetensors" else None
    dims = {k: int(v.shape[1]) for k, v in vectors.items()}
    fam = _family(set(vectors), dims, path, layout, family, (record or {}).get("family"))
    token = (record or {}).get("token") or token_from_stem(path)
    meta = (record or {}).get("meta") if record is not None else {"imported_from": layout}
    try:
        return [Concept(token=token, vectors=vectors, family=fam, meta=dict(meta or {}))]
    except ConceptError as exc:
        raise FormatError(f"{where(path)}: {exc}") from exc


def build(concept: Concept, path: Path, layout: str) -> list[tuple[Path, bytes]]:
    """The file of an SD3/Flux export: ``comfyui`` (also for ``kohya``) or ``diffusers-t5`` (also ``diffusers``)."""
    target = {"comfyui": "comfyui", "kohya": "comfyui", "diffusers": "diffusers-t5", "diffusers-t5": "diffusers-t5"}
    if layout not in target:
        raise FormatError(f"{where(path)}: an SD3/Flux concept is written as comfyui (ComfyUI's clip_l/clip_g/t5xxl) "
                          f"or diffusers-t5 (clip_l/clip_g/t5), not {layout!r}")
    if not handles(concept):
        raise FormatError(f"{where(path)}: layout {layout!r} needs an SD3/Flux concept (with t5 vectors), "
                          f"{concept.token!r} has {sorted(concept.vectors)}")
    if set(concept.vectors) not in [set(v) for v in FAMILY_KEYS.values()]:
        raise FormatError(f"{where(path)}: concept {concept.token!r} has encoders {sorted(concept.vectors)}; SD3 files "
                          "hold clip_l + clip_g + t5, Flux files clip_l + t5")
    if path.suffix.lower() not in (".safetensors", ".pt"):
        raise FormatError(f"{where(path)}: an SD3/Flux embedding file ends in .safetensors (or .pt)")
    name = FILE_KEYS[target[layout]]
    tensors = {name[k]: v.detach().contiguous() for k, v in concept.vectors.items()}
    if path.suffix.lower() == ".pt":
        return [(path, _torch.dumps({k: v.clone() for k, v in tensors.items()}))]
    return [(path, _safetensors.save(tensors, {"format": "pt", META_KEY: encode_meta(concept)}))]


__all__ = ["FILE_KEYS", "LAYOUTS", "WRITABLE", "build", "classify_keys", "handles", "parse"]
