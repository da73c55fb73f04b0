"""Counted nouns in messages: "1 folder", "3 folders" — never "folder(s)"."""

from __future__ import annotations


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The noun for ``n`` things: ``singular`` for one, else ``plural`` (default: ``singular + "s"``).

    Only the noun goes in; what qualifies it follows outside ("2 index rows out of date" is
    ``f"{counted(2, 'index row')} out of date"``), so no rule has to guess which word is the noun.

    >>> noun(1, "concept token"), noun(2, "concept token"), noun(3, "match", "matches")
    ('concept token', 'concept tokens', 'matches')
    """
    return singular if n == 1 else (plural if plural is not None else singular + "s")


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun for that many (see :func:`noun`).

    >>> counted(1, "image"), counted(3, "image"), counted(0, "index row")
    ('1 image', '3 images', '0 index rows')
    """
    return f"{n} {noun(n, singular, plural)}"
