"""User and model text as text, never as markup.

Tokens, tags, file names, nearest tokens and error messages can hold anything: ``[``, ``[/]``, ``[b]``, a
trailing backslash, emoji, right-to-left script, control characters. Everything the TUI shows is built
as :class:`rich.text.Text` from plain strings (styles are given separately), so no such string is ever
parsed as markup — a parsed one either vanishes (``[b]``) or ends the app (``[/]``: ``MarkupError``).
"""

from __future__ import annotations

import re
from typing import Union

from rich.text import Text

from ticraft.wording import counted  # noqa: F401 - screens count through here (they never import ticraft)

#: C0/C1 control characters except newline and tab: a terminal would act on them instead of showing them.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

Part = Union[str, Text, tuple[str, str]]


def clean(value: object) -> str:
    """``str(value)`` with control characters shown as ``�`` (they would move the cursor or change colours).

    >>> clean("a\\x1b[31mred")
    'a�[31mred'
    """
    return _CONTROL.sub("\ufffd", str(value))


def plain(value: object, style: str = "") -> Text:
    """``value`` as literal text (no markup), optionally in one style.

    >>> plain("[/]").plain
    '[/]'
    """
    return Text(clean(value), style=style)


def join(*parts: Part) -> Text:
    """Literal pieces, each a plain string or ``(string, style)``, joined into one Text.

    >>> join(("Nearest tokens", "bold"), "\\n", "[b]x[/b]").plain
    'Nearest tokens\\n[b]x[/b]'
    """
    out = Text()
    for part in parts:
        if isinstance(part, Text):
            out.append_text(part)
        elif isinstance(part, tuple):
            out.append(clean(part[0]), style=part[1])
        else:
            out.append(clean(part))
    return out


def lines(rows: list[Text]) -> Text:
    """Texts joined by newlines."""
    return Text("\n").join(rows)
