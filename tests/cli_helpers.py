"""Running the Typer app in-process and reading its one clean error — shared by the CLI tests."""

from __future__ import annotations

import re

from click.testing import Result
from typer.testing import CliRunner

from ticraft.cli.main import app


def run_cli(*args: object, input: str | None = None) -> Result:
    """Invoke `ticraft ARGS…` in-process (arguments are str()-ed, so paths and numbers can be passed as they are).

    A wide terminal keeps rich from wrapping most messages; `cli_error` joins what it still wraps.
    """
    return CliRunner().invoke(app, [str(a) for a in args], input=input, env={"COLUMNS": "200"})


def cli_error(result: Result) -> str:
    """The one clean error the CLI printed (non-zero exit, "Error", no traceback), on one line without rich's panel
    borders, so a phrase that rich wrapped can still be found with `in`."""
    assert result.exit_code != 0, result.output
    assert "Error" in result.output and "Traceback" not in result.output, result.output
    return re.sub(r"[\s│╭╮╰╯─]+", " ", result.output)
