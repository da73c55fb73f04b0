"""Counted nouns in messages: "1 folder", "3 folders" — never "folder(s)"."""

from __future__ import annotations

# a noun phrase's noun is the word before its first preposition ("folder under .tmp/", "row without a folder")
_PREPOSITIONS = frozenset({"under", "without", "of", "from", "in", "to", "before", "near", "on", "smaller", "missing"})


def noun(n: int, singular: str, plural: str | None = None) -> str:
    """The noun phrase for ``n`` things: ``singular`` for one, else its plural.

    The plural adds "s" to the noun: the last word before the first preposition, else the last word. Give
    ``plural`` where that rule does not fit.

    >>> noun(1, "concept token"), noun(2, "concept token"), noun(2, "half-built folder under .tmp/")
    ('concept token', 'concept tokens', 'half-built folders under .tmp/')
    >>> noun(3, "match", "matches")
    'matches'
    """
    if n == 1:
        return singular
    if plural is None:
        words = singular.split(" ")
        cut = next((i for i, w in enumerate(words) if i > 0 and w in _PREPOSITIONS), len(words))
        words[cut - 1] += "s"
        plural = " ".join(words)
    return plural


def counted(n: int, singular: str, plural: str | None = None) -> str:
    """``n`` and the noun phrase for that many (see :func:`noun`).

    >>> counted(1, "image"), counted(3, "image"), counted(0, "index row")
    ('1 image', '3 images', '0 index rows')
    """
    return f"{n} {noun(n, singular, plural)}"
