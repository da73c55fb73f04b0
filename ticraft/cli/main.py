"""Entry point of the `ticraft` console script.

Each command module exposes ``register(app)``; the list below is the whole CLI. Keep module tops
free of torch/diffusers/textual imports (a test checks that `ticraft --help` imports neither).
"""

from __future__ import annotations

import importlib

import typer

from ticraft.cli.common import TicraftGroup

COMMAND_MODULES: list[str] = [
    "train_cmd",
    "train_many_cmd",
    "library_cmd",
    "tui_cmd",
    "models_cmd",
    "sample_cmd",
    "info_cmd",
    "edit_cmd",
    "analysis_cmd",
    "views_cmd",
    "probe_cmd",
    "demo_cmd",
    "toyworld_cmd",
    "bench_cmd",
    "words_cmd",
]

app = typer.Typer(
    name="ticraft",
    cls=TicraftGroup,
    help="Textual inversion: teach a frozen text-to-image model a new word, then understand what it learned.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

for _name in COMMAND_MODULES:
    importlib.import_module(f"ticraft.cli.{_name}").register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
