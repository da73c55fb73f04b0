"""`ticraft models` (what models are on this machine) and `ticraft config …` (the user's settings).

Every command with ``--model`` falls back to the configured default (``ticraft config set model …``),
then to the toy model. Heavy imports stay inside the command bodies.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from ticraft.cli.common import console
from ticraft.cli.options import DEVICE_PATTERN


# ------------------------------------------------------------------- models
def models(
    dirs: Annotated[
        Optional[list[Path]],
        typer.Option("--dir", "-d", help="Also look in this folder (repeatable); see also `config set model_dirs`."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List the models ticraft can find: the toy model, the Hugging Face cache, your model folders."""
    from rich.table import Table

    from ticraft.models.listing import find_models, human_size, is_default
    from ticraft.models.single_file import hf_hub_cache_dir
    from ticraft.user_config import get_config_value

    not_folders = [str(d) for d in dirs or () if not d.expanduser().is_dir()]
    if not_folders:  # a typo would otherwise list nothing from it, silently
        from ticraft.errors import TicraftError

        raise TicraftError(f"--dir: not a folder: {', '.join(not_folders)}")
    found = find_models(dirs or ())
    default = get_config_value("model")
    if as_json:
        rows = [dict(m.to_json(), default=is_default(m, default)) for m in found]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        console.print(
            "No models found. Looked for the toy model, the Hugging Face cache "
            f"({hf_hub_cache_dir()}) and your model folders.\n"
            "Add a folder with `ticraft config set model_dirs DIR` or pass `--dir DIR`."
        )
        return
    table = Table(title="Models", title_justify="left")
    table.add_column("", width=1)
    for col in ("name", "family", "kind"):
        table.add_column(col)
    table.add_column("size", justify="right")
    table.add_column("path", overflow="fold")
    for m in found:
        mark = "*" if is_default(m, default) else ""
        table.add_row(mark, m.name, m.family, m.kind, human_size(m.size_bytes), str(m.path))
    console.print(table)
    shown = default or "toy (no default set)"
    console.print(f"* default model: {shown} — change it with `ticraft config set model NAME|PATH`")


# ------------------------------------------------------------------- config
def validate_model_spec(value: str) -> str:
    """The value to store for ``model``: 'toy', an absolute path to a model, or a cached hub id.

    Raises a TicraftError (shown without traceback) that says what is wrong and what to do.
    """
    from ticraft.errors import TicraftError
    from ticraft.models.single_file import CHECKPOINT_SUFFIXES, find_in_hf_cache

    if value == "toy":
        return value
    path = Path(value).expanduser()
    if path.is_dir():
        if not (path / "model_index.json").is_file():
            raise TicraftError(
                f"{path} is a folder but not a diffusers pipeline (no model_index.json); "
                "give a pipeline folder, a .safetensors/.ckpt file, a cached hub id or 'toy'"
            )
        return str(path.resolve())
    if path.is_file():
        if path.suffix not in CHECKPOINT_SUFFIXES:
            raise TicraftError(f"{path} is not a checkpoint ({', '.join(CHECKPOINT_SUFFIXES)}) or a pipeline folder")
        return str(path.resolve())
    parts = value.split("/")
    if len(parts) == 2 and all(parts) and not value.startswith((".", "~", "/")):
        find_in_hf_cache(value)  # raises with the cache searched and how to get the model here
        return value
    raise TicraftError(
        f"model {value!r} not found: no such file or folder, and not a hub id (org/name). "
        "Give 'toy', a diffusers folder, a .safetensors/.ckpt file or a hub id already in the HF cache; "
        "`ticraft models` lists what is available."
    )


def normalize_setting(key: str, value: str) -> str:
    """Validate ``value`` for ``key`` and return what to store."""
    from ticraft.errors import TicraftError

    if key == "model":
        return validate_model_spec(value)
    if key == "model_dirs":
        dirs = [Path(d).expanduser() for d in value.split(os.pathsep) if d.strip()]
        missing = [str(d) for d in dirs if not d.is_dir()]
        if missing or not dirs:
            raise TicraftError(f"model_dirs: not a folder: {', '.join(missing) or repr(value)}")
        return os.pathsep.join(str(d.resolve()) for d in dirs)
    if key == "library":
        return str(Path(value).expanduser().resolve())
    if key == "device" and not DEVICE_PATTERN.match(value):
        raise TicraftError(f"device {value!r} is not one of auto, cpu, mps, cuda, cuda:N")
    return value


def config_show(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Show every setting, its value and what it does."""
    from rich.table import Table

    from ticraft.user_config import KNOWN_KEYS, config_path, load_config

    data = load_config()
    if as_json:
        typer.echo(json.dumps(data, indent=2))
        return
    table = Table(title=f"Settings ({config_path()})", title_justify="left")
    for col in ("key", "value", "meaning"):
        table.add_column(col, overflow="fold")
    for key in sorted(set(KNOWN_KEYS) | set(data)):
        value = data.get(key)
        shown = "[dim]not set[/dim]" if value is None else str(value)
        table.add_row(key, shown, KNOWN_KEYS.get(key, "[yellow]unknown key[/yellow]"))
    console.print(table)


def config_set(
    key: Annotated[str, typer.Argument(help="Setting: model | model_dirs | library | device.")],
    value: Annotated[str, typer.Argument(help="New value (checked: a model must exist, folders must exist).")],
) -> None:
    """Set a setting, e.g. `ticraft config set model ~/models/v1-5.safetensors`."""
    from ticraft.errors import TicraftError
    from ticraft.user_config import KNOWN_KEYS, set_config_value

    if key not in KNOWN_KEYS:
        raise TicraftError(f"unknown setting {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
    stored = normalize_setting(key, value)
    path = set_config_value(key, stored)
    console.print(f"{key} = {stored}  [dim]({path})[/dim]")


def config_unset(key: Annotated[str, typer.Argument(help="Setting to remove.")]) -> None:
    """Remove a setting (commands then use their built-in default)."""
    from ticraft.errors import TicraftError
    from ticraft.user_config import KNOWN_KEYS, load_config, set_config_value

    if key not in KNOWN_KEYS and key not in load_config():
        raise TicraftError(f"unknown setting {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
    path = set_config_value(key, None) if key in KNOWN_KEYS else _drop_unknown(key)
    console.print(f"{key} unset  [dim]({path})[/dim]")


def _drop_unknown(key: str) -> Path:
    # set_config_value refuses unknown keys; a stale one (from another version) may still be removed.
    from ticraft.user_config import config_path, load_config

    data = load_config()
    data.pop(key, None)
    from ticraft.io import atomic_write_text

    return atomic_write_text(config_path(), json.dumps(data, indent=2) + "\n")


def config_path_cmd() -> None:
    """Print where the settings file lives ($TICRAFT_CONFIG overrides it)."""
    from ticraft.user_config import config_path

    typer.echo(str(config_path()))


def register(app: typer.Typer) -> None:
    """Add `models` and the `config` group to the CLI."""
    app.command("models")(models)
    config_app = typer.Typer(
        help="Show and change your settings: default model, model folders, library, device.",
        no_args_is_help=True,
    )
    config_app.command("show")(config_show)
    config_app.command("set")(config_set)
    config_app.command("unset")(config_unset)
    config_app.command("path")(config_path_cmd)
    app.add_typer(config_app, name="config")
