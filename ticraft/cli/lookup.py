"""How the analysis commands read their arguments: ``<token>`` → library concept, a file → its concept,
anything else → a vocabulary word of the model; and where they write JSON.

Only typer/rich at the top; the library and the model code load inside the functions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from ticraft.cli.common import console

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.concept import Concept
    from ticraft.models.backbone import Backbone


def is_concept_token(text: str) -> bool:
    """``<name>`` (the way prompts name library concepts).

    >>> is_concept_token("<cat-toy>"), is_concept_token("cat"), is_concept_token("<>")
    (True, False, False)
    """
    return text.startswith("<") and text.endswith(">") and len(text) > 2


def resolve_concept(text: str, library: Any, backbone: "Backbone | None", *, words: str = "mean") -> "Concept":
    """``<token>`` → the library concept; an existing embedding file → its concept; anything else → a word."""
    if is_concept_token(text):
        return library.get(text)
    p = Path(text)
    if p.suffix in (".safetensors", ".pt", ".bin") and p.is_file():
        from ticraft.library import read_file

        return read_file(p)[0]
    if backbone is None:  # pragma: no cover - callers load a model before resolving words
        raise typer.BadParameter(f"{text!r} is a word; a model is needed to look it up")
    from ticraft.analysis.neighbors import word_concept

    return word_concept(backbone, text, mode="vectors" if words == "vectors" else "mean")


def write_json(path: Path | None, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` (``--json``) and say so; nothing when ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"wrote {escape(str(path))}")


def split_labels(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` → ``["a", "b", "c"]``; nothing → ``None``."""
    if text is None:
        return None
    labels = [t.strip() for t in text.split(",") if t.strip()]
    return labels or None
