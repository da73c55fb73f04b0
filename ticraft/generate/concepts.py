"""Concept tokens in prompts: find each one's concept (explicit, library, loaded, default library) and splice it in."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ticraft.concept import Concept
from ticraft.errors import TicraftError
from ticraft.generate.errors import PromptBudgetWarning, SampleError
from ticraft.prompts import PromptError, budget_warning, find_concept_tokens
from ticraft.wording import noun

if TYPE_CHECKING:
    from ticraft.models.backbone import Backbone

__all__ = ["prepare_concepts", "concept_hashes", "warn_budget"]


def _open_library(library: Any) -> Any:
    if library is None or hasattr(library, "get"):
        return library
    from ticraft.library import Library

    return Library.resolve(Path(library))


def _default_library() -> Any:
    """The library the user would get from the CLI (None when ticraft.library is unavailable)."""
    try:
        from ticraft.library import Library
    except ImportError:
        return None
    try:
        return Library.resolve(None)
    except TicraftError:
        return None


def _library_get(library: Any, token: str) -> Concept | None:
    if library is None:
        return None
    has = getattr(library, "has", None)
    if has is None:  # a mapping-like stand-in
        try:
            return library.get(token)
        except KeyError:
            return None
    # An entry that exists but cannot be read raises its own clear error (not "unknown token").
    return library.get(token) if has(token) else None


def prepare_concepts(backbone: "Backbone", texts: Iterable[str], *, library: Any = None,
                     concepts: Iterable[Concept | str] = ()) -> dict[str, Concept]:
    """Load every concept token used in ``texts`` into ``backbone``; return ``{token: Concept}`` used.

    Where a token comes from, first match wins: ``concepts`` (Concept objects; strings name tokens to
    take from the library), ``library``, concepts already loaded in the backbone, then — only when
    ``library`` is ``None`` — the default library (``$TICRAFT_LIBRARY``, ``./embeddings``, …).
    Unknown tokens are named in one :class:`~ticraft.prompts.PromptError`; a concept whose family or
    widths do not fit the model raises the backbone's clear error.
    """
    needed: list[str] = []
    for text in texts:
        needed += [t for t in find_concept_tokens(text) if t not in needed]
    if not needed:
        return {}
    explicit: dict[str, Concept] = {}
    lib = _open_library(library)
    for c in concepts:
        if isinstance(c, Concept):
            explicit[c.token] = c
        elif isinstance(c, str):
            found = _library_get(lib if lib is not None else _default_library(), c)
            if found is None:
                raise PromptError(f"concept {c} is not in the library")
            explicit[found.token] = found
        else:
            raise SampleError(f"concepts must be Concept objects or token strings, got {type(c).__name__}")

    loaded = backbone.loaded_concepts
    chosen: dict[str, Concept] = {}
    missing: list[str] = []
    default_lib: Any = None
    for tok in needed:
        hit = explicit.get(tok)
        hit = hit if hit is not None else _library_get(lib, tok)
        hit = hit if hit is not None else loaded.get(tok)
        if hit is None and library is None:
            default_lib = default_lib if default_lib is not None else _default_library()
            hit = _library_get(default_lib, tok)
        if hit is None:
            missing.append(tok)
        else:
            # The library matches "<Cat-Toy>" to "<cat-toy>"; the placeholder must be the prompt's spelling.
            chosen[tok] = hit if hit.token == tok else hit.replace(token=tok)
    if missing:
        searched = lib if lib is not None else default_lib  # (an empty Library is falsy: compare with None)
        where = getattr(searched, "root", None)
        place = f" (library: {where})" if where is not None else ""
        raise PromptError(
            f"unknown {noun(len(missing), 'concept token')} {', '.join(missing)}{place}: import or train them first, "
            "or pass them as concepts"
        )
    for tok, c in chosen.items():
        current = loaded.get(tok)
        if current is c or (current is not None and current.sha256() == c.sha256()):
            continue  # already spliced in: no reload
        backbone.load_concept(c)
    return chosen


def concept_hashes(concepts: dict[str, Concept], texts: Iterable[str]) -> dict[str, str]:
    """``{token: short content hash}`` for the concepts these texts use (12 hex digits, like A1111)."""
    used: list[str] = []
    for t in texts:
        used += [tok for tok in find_concept_tokens(t) if tok not in used]
    return {tok: concepts[tok].sha256()[:12] for tok in used if tok in concepts}


def warn_budget(backbone: "Backbone", texts: Iterable[str], counts: dict[str, int]) -> None:
    tokenizer = backbone.encoders[0].tokenizer
    for text in dict.fromkeys(texts):
        msg = budget_warning(text, counts, tokenizer) if text else None
        if msg:
            warnings.warn(f"{text[:60]!r}…: {msg}", PromptBudgetWarning, stacklevel=3)

