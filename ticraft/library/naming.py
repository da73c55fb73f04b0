"""Tokens, tags and folder names: validation and normalisation."""

from __future__ import annotations

import re
import unicodedata
from typing import Iterable

from ticraft.library._common import _BAD_TAG_CHARS, _BAD_TOKEN_CHARS, _WINDOWS_RESERVED, MAX_TOKEN_LEN, LibraryError


def bare_token(token: str) -> str:
    """The token without its angle brackets.

    >>> bare_token("<cat-toy>"), bare_token("cat-toy")
    ('cat-toy', 'cat-toy')
    """
    return token[1:-1] if len(token) >= 2 and token.startswith("<") and token.endswith(">") else token


def token_key(token: str) -> str:
    """Identity of a token inside a library: brackets and letter case do not matter.

    ``<Cat>``, ``<cat>`` and ``cat`` name the same entry (CLIP tokenizers lower-case prompts, and
    folder names must not collide on case-insensitive filesystems).

    >>> token_key("<Cat-Toy>") == token_key("cat-toy")
    True
    """
    return bare_token(token).casefold()


def validate_token(token: object) -> str:
    """Return ``token`` if it can name a concept, else raise :class:`LibraryError`.

    A token is a non-empty string without whitespace or control characters; ``<name>`` is the
    recommended form because it never collides with a real word.

    >>> validate_token("<cat-toy>")
    '<cat-toy>'
    >>> validate_token("cat toy")
    Traceback (most recent call last):
    ...
    ticraft.library.LibraryError: token 'cat toy' contains whitespace or control characters; try '<cat-toy>'
    """
    if not isinstance(token, str) or not token:
        raise LibraryError("a token must be a non-empty string such as '<cat-toy>'")
    if _BAD_TOKEN_CHARS.search(token):
        raise LibraryError(f"token {token!r} contains whitespace or control characters; try '<{slugify(token)}>'")
    if len(token) > MAX_TOKEN_LEN:
        raise LibraryError(f"token {token[:20]!r}… is {len(token)} characters long; the limit is {MAX_TOKEN_LEN}")
    if not bare_token(token):
        raise LibraryError("token '<>' has no name; use e.g. '<cat-toy>'")
    return token


def slugify(token: str) -> str:
    """A filesystem-safe folder name for ``token`` (lower-case ASCII letters, digits, ``.``, ``_``, ``-``).

    >>> slugify("<Cat Toy!>"), slugify("<猫>"), slugify("<con>")
    ('cat-toy', 'concept', 'con_')
    """
    text = unicodedata.normalize("NFKD", bare_token(token)).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9._-]+", "-", text).strip("-._")[:60].rstrip("-._") or "concept"
    if slug.split(".")[0] in _WINDOWS_RESERVED:
        slug += "_"
    return slug


_DIGITS = re.compile(r"(\d+)")


def natural_key(token: str) -> str:
    """A text key whose plain (byte-wise) order is the natural order of tokens.

    Brackets and letter case are ignored, and runs of digits compare as numbers: ``<c9>`` sorts
    before ``<c10>`` and ``<c99>``. Being a plain string, the key can be stored in the index and
    sorted by SQLite without a custom collation.

    >>> sorted(["<c99>", "<c10>", "<C9>", "<b>"], key=natural_key)
    ['<b>', '<C9>', '<c10>', '<c99>']
    """
    parts = []
    for i, chunk in enumerate(_DIGITS.split(bare_token(token).casefold())):
        if i % 2:  # a run of digits: its length (zero-padded) first, so 9 < 10 < 99 < 100
            digits = chunk.lstrip("0") or "0"
            parts.append(f"\x01{len(digits):04d}{digits}")
        else:
            parts.append(chunk)
    return "".join(parts)


def normalize_tags(tags: Iterable[str] | str | None) -> list[str]:
    """Validate and de-duplicate tags (case-insensitively, first spelling wins, order kept).

    >>> normalize_tags(["style", " Style", "object"])
    ['style', 'object']
    """
    if tags is None:
        return []
    if isinstance(tags, str):
        tags = [tags]
    out: list[str] = []
    seen: set[str] = set()
    for raw in tags:
        if not isinstance(raw, str) or not raw.strip():
            raise LibraryError(f"a tag must be a non-empty string, got {raw!r}")
        tag = raw.strip()
        if _BAD_TAG_CHARS.search(tag) or len(tag) > 64:
            raise LibraryError(f"tag {tag!r} must be at most 64 characters, without spaces or commas")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    return out
