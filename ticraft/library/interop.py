"""Reading and writing embedding files of other layouts (through :mod:`ticraft.formats`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from ticraft.library._common import EXPORT_LAYOUTS, LibraryError
from ticraft.library.canonical import is_canonical, read_canonical
from ticraft.library.naming import slugify, token_key, validate_token

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept

def apply_family(concept: "Concept", family: str | None) -> "Concept":
    """``concept`` with ``family`` set, after checking that its encoders and widths fit that family."""
    if family is None or family == concept.family:
        return concept
    from ticraft.concept import FAMILY_ENCODERS, Concept

    if family not in FAMILY_ENCODERS:
        raise LibraryError(f"unknown family {family!r}; known: {', '.join(FAMILY_ENCODERS)}")
    want = FAMILY_ENCODERS[family]
    # Same rule as ticraft.formats: encoder keys must match; fixed single-encoder widths (sd1 768,
    # sd2 1024) too. SDXL is told by its two keys alone, so tiny stand-in test models stay usable.
    wrong_width = family != "sdxl" and any(
        w is not None and w != concept.dims[k] for k, w in want.items() if k in concept.dims)
    if set(want) != set(concept.dims) or wrong_width:
        expect = ", ".join(f"{k}={w or 'any'}" for k, w in want.items())
        have = ", ".join(f"{k}={d}" for k, d in concept.dims.items())
        raise LibraryError(f"{concept.token}: family {family} expects {expect}, but the vectors are {have}")
    return Concept(concept.token, concept.vectors, family=family, meta=dict(concept.meta))


def read_file(path: str | os.PathLike[str], *, token: str | None = None, family: str | None = None) -> list["Concept"]:
    """Every concept in an embedding file of any layout (library ``embedding.safetensors`` included).

    ``token`` renames the concept of a one-concept file, or picks that token out of a file holding
    several; ``family`` sets the family after checking it fits the widths. Each concept's meta
    records where it came from: ``source`` (file name), ``source_layout`` and, when renamed,
    ``source_token``.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise LibraryError(f"no such file: {path}")
    if path.is_dir():
        raise LibraryError(f"{path} is a folder; give an embedding file")
    if token is not None:
        validate_token(token)
    if is_canonical(path):
        concepts, layout = [apply_family(read_canonical(path), family)], "ticraft"
    else:
        from ticraft import formats

        layout = formats.detect_layout(path)
        concepts = list(formats.read_concepts(path, family=family))
    if not concepts:
        raise LibraryError(f"{path} holds no embedding")
    if token is not None:
        concepts = [_pick_or_rename(concepts, token, path)]
    for c in concepts:
        c.meta.update(source=path.name, source_layout=layout)
    return concepts


def _pick_or_rename(concepts: list["Concept"], token: str, path: Path) -> "Concept":
    """The concept ``token`` names: the file's only one (renamed), or the matching one of several."""
    if len(concepts) > 1:
        picked = [c for c in concepts if token_key(c.token) == token_key(token)]
        if not picked:
            names = ", ".join(c.token for c in concepts)
            raise LibraryError(f"{path} holds {len(concepts)} concepts ({names}) and none is {token}; pick one of them")
        return picked[0]
    only = concepts[0]
    if only.token == token:
        return only
    renamed = only.replace(token=token)
    renamed.meta["source_token"] = only.token
    return renamed


def write_file(concept: "Concept", path: str | os.PathLike[str], layout: str = "diffusers", *,
               overwrite: bool = False) -> list[Path]:
    """Write ``concept`` in ``layout`` (``diffusers``, ``a1111`` or ``kohya``) to a file or folder."""
    if layout == "auto":  # no format asked for: ComfyUI's layout for SD3/Flux (T5) concepts, else diffusers
        from ticraft.formats.xti import layout_for  # per-layer (XTI) concepts: kohya's layout, or ticraft's

        layout = "comfyui" if "t5" in concept.vectors else layout_for(concept) or "diffusers"
    if layout not in EXPORT_LAYOUTS:
        raise LibraryError(f"unknown export format {layout!r}; choose one of {', '.join(EXPORT_LAYOUTS)}")
    path = Path(path).expanduser()
    if path.is_dir():
        path = path / f"{slugify(concept.token)}{EXPORT_LAYOUTS[layout]}"
    # SDXL in diffusers layout also writes x_2.safetensors beside x.safetensors.
    targets = [path]
    if layout == "diffusers" and concept.is_sdxl:
        targets.append(path.with_name(f"{path.stem}_2{path.suffix}"))
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise LibraryError(
            f"{existing[0]} already exists; choose another name or overwrite it (--force / overwrite=True)")
    if not path.parent.is_dir():
        raise LibraryError(f"folder {path.parent} does not exist")
    from ticraft import formats

    return [Path(p) for p in formats.write_concept(concept, path, layout=layout)]
