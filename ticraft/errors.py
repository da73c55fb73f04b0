"""The one exception family ticraft raises for bad input.

Every error a user can cause (a wrong file, a mismatched concept, a missing model) is a
:class:`TicraftError` with a message that says what is wrong and what to do. The CLI prints the
message alone, without a traceback; Python callers can catch the base class.
"""


class TicraftError(ValueError):
    """Base class of ticraft's user-facing errors."""
