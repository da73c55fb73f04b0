"""The user's ticraft settings (`ticraft config set model PATH`), one small JSON file.

Location: ``$TICRAFT_CONFIG`` if set, else the platform config dir (``~/.config/ticraft/config.json``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ticraft.errors import TicraftError

KNOWN_KEYS = {
    "model": "default model for every command (toy | diffusers folder | checkpoint file | cached hub id)",
    "model_dirs": "extra folders (os.pathsep-separated) where `ticraft models` looks for models",
    "library": "default library folder",
    "device": "default device: auto | cpu | cuda | cuda:N",
}


def config_path() -> Path:
    env = os.environ.get("TICRAFT_CONFIG")
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ticraft")) / "config.json"


def load_config() -> dict[str, Any]:
    path = config_path()
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise TicraftError(f"the config file {path} is unreadable ({exc}); fix or delete it") from exc
    return data if isinstance(data, dict) else {}


def get_config_value(key: str) -> Any:
    return load_config().get(key)


def set_config_value(key: str, value: str | None) -> Path:
    """Set (or with ``None`` unset) a key; written atomically."""
    if key not in KNOWN_KEYS:
        raise TicraftError(f"unknown setting {key!r}; known: {', '.join(sorted(KNOWN_KEYS))}")
    data = load_config()
    if value is None:
        data.pop(key, None)
    else:
        data[key] = value
    from ticraft.io import atomic_write_text

    return atomic_write_text(config_path(), json.dumps(data, indent=2) + "\n")
