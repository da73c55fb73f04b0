"""How the analysis commands read their arguments: ``<token>`` → library concept, a file → its concept
(a missing file, or one holding several concepts, is refused), anything else → a vocabulary word of the model;
and where they write JSON.

Only typer/rich at the top; the library and the model code load inside the functions.
"""

from __future__ import annotations

import json
import os
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


#: Suffixes that mark an argument as an embedding file (what ``library import`` reads; PNG embeddings aside,
#: since a picture is rarely meant here).
FILE_SUFFIXES = (".safetensors", ".pt", ".bin", ".ckpt")


def names_a_file(text: str) -> bool:
    """Whether ``text`` is clearly meant as a file: a path separator or an embedding-file suffix.

    >>> names_a_file("emb/cat.safetensors"), names_a_file("cat.pt"), names_a_file("./cat"), names_a_file("cat")
    (True, True, True, False)
    """
    seps = [s for s in (os.sep, os.altsep) if s]
    return any(s in text for s in seps) or Path(text).suffix.lower() in FILE_SUFFIXES


def check_file_argument(text: str) -> None:
    """Refuse an argument meant as a file that does not exist (cheap: callers run it before loading a model).

    Without this a missing file fell through to the word lookup and printed the path's tokens.
    """
    if is_concept_token(text) or not names_a_file(text):
        return
    if not Path(text).expanduser().exists():
        raise typer.BadParameter(
            f"no such embedding file: {text} (an argument with a path separator or a "
            f"{'/'.join(FILE_SUFFIXES)} suffix is read as a file, not looked up as a word)"
        )


def read_one_concept(text: str) -> "Concept":
    """The one concept of the embedding file ``text``; a file holding several is refused, naming its tokens.

    Taking the first of several would silently pick for the user; the library is where a token names one.
    """
    from ticraft.library import read_file

    check_file_argument(text)
    concepts = read_file(Path(text))
    if len(concepts) > 1:
        tokens = ", ".join(c.token for c in concepts)
        raise typer.BadParameter(
            f"{text} holds {len(concepts)} concepts ({tokens}): import it with `ticraft library import {text}` "
            "and name the one you mean by its <token>"
        )
    return concepts[0]


def resolve_concept(text: str, library: Any, backbone: "Backbone | None", *, words: str = "mean") -> "Concept":
    """``<token>`` → the library concept; a file (see :func:`names_a_file`) → its one concept; else → a word."""
    if is_concept_token(text):
        return library.get(text)
    if names_a_file(text):
        return read_one_concept(text)
    if backbone is None:  # pragma: no cover - callers load a model before resolving words
        raise typer.BadParameter(f"{text!r} is a word; a model is needed to look it up")
    from ticraft.analysis.neighbors import word_concept

    return word_concept(backbone, text, mode="vectors" if words == "vectors" else "mean")


def resolve_without_model(text: str, library: Any) -> "Concept | None":
    """The concept of a ``<token>`` or a file, read before any model loads (so a typo costs no load); ``None`` for
    a word, which needs the model (then call :func:`resolve_concept` with it)."""
    if is_concept_token(text) or names_a_file(text):
        return resolve_concept(text, library, None)
    return None


def write_json(path: Path | None, data: object) -> None:
    """Write ``data`` as indented JSON to ``path`` (``--json``) and say so; nothing when ``path`` is None."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")
    console.print(f"wrote {escape(str(path))}")


def split_labels(text: str | None) -> list[str] | None:
    """``"a, b,,c"`` → ``["a", "b", "c"]``; no ``--labels`` → ``None`` (the attribute's default labels).

    A string with no label in it (``" , "``) is refused: falling back to the defaults would hide the typo.
    """
    if text is None:
        return None
    labels = [t.strip() for t in text.split(",") if t.strip()]
    if not labels:
        raise typer.BadParameter(f"--labels {text!r} holds no label; give comma-separated labels such as 'red, blue'")
    return labels
