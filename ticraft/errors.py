"""The one exception family ticraft raises for bad input, and the one warning family it shows.

Every error a user can cause (a wrong file, a mismatched concept, a missing model) is a
:class:`TicraftError` with a message that says what is wrong and what to do. The CLI prints the
message alone, without a traceback; Python callers can catch the base class.

Things that work but are probably not what the user wants (one training picture, an initializer of
several word pieces, a prompt near CLIP's 75-token limit) are :class:`TicraftWarning`\\ s: ordinary
Python warnings, one line each, which the CLI prints in yellow and a UI can collect with
``warnings.catch_warnings(record=True)`` (filter on the category). Training also keeps them in the
concept's ``meta["warnings"]``.
"""

from __future__ import annotations

import re


class TicraftError(ValueError):
    """Base class of ticraft's user-facing errors."""


class TicraftWarning(UserWarning):
    """Base class of ticraft's one-line warnings about input that works but probably should not."""


_OBJECT_REPR = re.compile(r"<_io\.\w+ object at 0x[0-9a-fA-F]+>|<[\w.]+ object at 0x[0-9a-fA-F]+>")


def image_error_text(exc: BaseException) -> str:
    """A short, path-free description of why PIL could not read a picture.

    PIL names in-memory data by its ``repr`` (``<_io.BytesIO object at 0x7f…>``), which tells a user
    nothing; callers put the file name in front of this text themselves.

    >>> class UnidentifiedImageError(OSError): ...
    >>> image_error_text(UnidentifiedImageError("cannot identify image file <_io.BytesIO object at 0x7f3>"))
    'not an image file (its format is not one PIL reads)'
    >>> image_error_text(OSError("image file is truncated (3 bytes not processed)"))
    'image file is truncated (3 bytes not processed)'
    """
    if type(exc).__name__ == "UnidentifiedImageError":
        return "not an image file (its format is not one PIL reads)"
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _OBJECT_REPR.sub("the data", text)[:120]
