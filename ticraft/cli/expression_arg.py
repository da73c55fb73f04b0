"""A command whose positional argument may start with ``-``: ``ticraft mix "-<zorb>"``.

Click reads every argument that starts with ``-`` as an option, so ``-<zorb> + painting`` failed with
"No such option: -<". :class:`ExpressionCommand` keeps real options working and hands any other
``-…`` argument to the command as text: a single-dash argument whose first two characters name no
option of the command (``-<``, ``-0``, ``-(``, ``-p`` when there is no ``-p``) gets a leading space, which
Click does not take for an option and the expression parser skips. Commands strip it again
(:func:`strip_marker`).

>>> ExpressionCommand.shield(["-<zorb>", "--as", "<x>"], {"--as", "-t"})
[' -<zorb>', '--as', '<x>']
>>> ExpressionCommand.shield(["-t", "a"], {"--as", "-t"})
['-t', 'a']
>>> ExpressionCommand.shield(["<a>", "--tag", "-x"], {"--tag"}, frozenset({"--tag"}))
['<a>', '--tag', '-x']
"""

from __future__ import annotations

from typing import Any

import typer


class ExpressionCommand(typer.core.TyperCommand):
    """A Typer command that lets its positional arguments begin with ``-`` (see the module docstring)."""

    @staticmethod
    def shield(args: list[str], options: set[str], takes_value: frozenset[str] = frozenset()) -> list[str]:
        """``args`` with every single-dash non-option (e.g. ``-<a>``) prefixed by a space.

        The value after an option in ``takes_value`` (``--tag -x``) is left to Click.
        """
        out = []
        after_double_dash = value_next = False
        for arg in args:
            if value_next or after_double_dash or arg == "-" or not arg.startswith("-") or arg.startswith("--"):
                after_double_dash = after_double_dash or arg == "--"
                value_next = not value_next and arg in takes_value
                out.append(arg)
                continue
            value_next = arg in takes_value
            out.append(arg if arg[:2] in options else " " + arg)
        return out

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # ctx: typer's vendored click.Context
        names: set[str] = set()
        valued: set[str] = set()
        for param in self.get_params(ctx):
            opts = [*getattr(param, "opts", ()), *getattr(param, "secondary_opts", ())]
            names.update(opts)
            if getattr(param, "param_type_name", "") == "option" and not getattr(param, "is_flag", False):
                valued.update(getattr(param, "opts", ()))
        options = {n for n in names if n.startswith("-")}
        return super().parse_args(ctx, self.shield(list(args), options, frozenset(valued)))


def strip_marker(text: Any) -> Any:
    """Undo :meth:`ExpressionCommand.shield`'s leading space."""
    return text[1:] if isinstance(text, str) and text.startswith(" -") else text
