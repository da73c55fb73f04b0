"""Lexing for the ``ticraft mix`` expression language: its limits, :class:`ExprError` and :func:`tokenize`.

Split out of :mod:`ticraft.analysis.expr`, which re-exports every name here.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

from ticraft.errors import TicraftError

MAX_LENGTH = 10_000  # characters; longer input is refused before lexing
MAX_NUMBER = 1e30  # larger literals only ever overflow float32 vectors (max ~3.4e38) to inf
MAX_DEPTH = 64  # nesting of parentheses, unary signs and calls (keeps the parser's recursion bounded)


class ExprError(TicraftError):
    """A syntax or evaluation error in a mix expression, with the 0-based ``column`` it refers to."""

    def __init__(self, message: str, source: str, column: int) -> None:
        self.message = message
        self.source = source
        self.column = max(0, min(column, len(source)))
        shown = re.sub(r"\s", " ", source)  # tabs/newlines would misplace the caret
        caret = self.column
        if len(shown) > 100:  # a window around the column, not the whole of a 10,000-character input
            start = max(0, caret - 50)
            head, tail = ("…" if start else ""), ("…" if start + 100 < len(shown) else "")
            shown, caret = head + shown[start:start + 100] + tail, caret - start + len(head)
        super().__init__(f"{message} (column {self.column + 1})\n  {shown}\n  {' ' * caret}^")


# ----------------------------------------------------------------------------------------------------- lexing
@dataclass(frozen=True)
class Token:
    kind: Literal["num", "concept", "name", "string", "op", "end"]
    text: str
    col: int
    value: int | float | None = None


_NUMBER = re.compile(r"(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?")
_NAME = re.compile(r"[^\W\d]\w*")
_CONCEPT = re.compile(r"<[^<>\s]+>")
_OPS = {"+": "+", "-": "-", "*": "*", "/": "/", "(": "(", ")": ")", ",": ",", "\u2212": "-", "\u00d7": "*",
        "\u00f7": "/"}
_HINTS = {
    ".": "attribute access is not part of the language",
    "[": "subscripts are not part of the language; use vec(a, i)",
    "]": "subscripts are not part of the language; use vec(a, i)",
    "=": "assignments are not part of the language",
    ":": "':' is not part of the language (no lambdas, slices or annotations)",
    "@": "'@' is not part of the language",
    "%": "'%' is not part of the language",
    "^": "'^' is not part of the language",
    "{": "braces are not part of the language",
    "}": "braces are not part of the language",
}


def tokenize(source: str) -> list[Token]:
    """Split ``source`` into tokens, or raise :class:`ExprError` at the first character that fits none."""
    if len(source) > MAX_LENGTH:
        raise ExprError(f"expression too long ({len(source)} characters; the limit is {MAX_LENGTH})", source, 0)
    out: list[Token] = []
    i = 0
    while i < len(source):
        ch = source[i]
        if ch.isspace():
            i += 1
            continue
        if m := _NUMBER.match(source, i):
            out.append(Token("num", m.group(), i, _number(m.group(), source, i)))
            i = m.end()
            if i < len(source) and (source[i].isalnum() or source[i] in "_."):
                raise ExprError(f"malformed number {source[m.start():i + 1]!r}", source, i)
            continue
        if m := _NAME.match(source, i):
            out.append(Token("name", m.group(), i))
            i = m.end()
            continue
        if ch == "<":
            m = _CONCEPT.match(source, i)
            if not m:
                raise ExprError("unterminated concept token: write it as <name> (no spaces inside)", source, i)
            out.append(Token("concept", m.group(), i))
            i = m.end()
            continue
        if ch in "\"'":
            end = source.find(ch, i + 1)
            if end < 0:
                raise ExprError(f"unterminated quoted word: add the closing {ch}", source, i)
            if not source[i + 1:end].strip():
                raise ExprError("an empty quoted word", source, i)
            out.append(Token("string", source[i + 1:end], i))
            i = end + 1
            continue
        if ch in _OPS:
            out.append(Token("op", _OPS[ch], i))
            i += 1
            continue
        raise ExprError(_HINTS.get(ch, f"unexpected character {ch!r}"), source, i)
    out.append(Token("end", "", len(source)))
    return out


def _number(text: str, source: str, col: int) -> int | float:
    # Integers stay ints, as Python literals do, so number-only sub-expressions match Python exactly.
    try:
        value = int(text) if text.isdigit() else float(text)
    except ValueError:  # ints beyond Python's digit limit
        raise ExprError("number too long", source, col) from None
    # 1e999999 reads as inf in Python; a concept scaled by it is all inf/NaN, so refuse it here, by name.
    if not math.isfinite(value) or abs(value) > MAX_NUMBER:
        raise ExprError(f"number {text} is too large (the limit is {MAX_NUMBER:g})", source, col)
    return value

