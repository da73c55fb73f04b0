"""Where analysis results are cached on disk (normalised token tables, map coordinates).

``$TICRAFT_CACHE`` wins; otherwise the platform cache dir (``~/.cache/ticraft`` on Linux, which honours
``$XDG_CACHE_HOME``). Everything in it can be deleted at any time: it is rebuilt on demand.

>>> import os
>>> os.environ["TICRAFT_CACHE"] = "/tmp/tc"
>>> str(cache_dir("maps"))
'/tmp/tc/maps'
>>> del os.environ["TICRAFT_CACHE"]
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """The cache folder (or a sub-folder of it), not created."""
    env = os.environ.get("TICRAFT_CACHE")
    if env:
        root = Path(env).expanduser()
    else:
        from platformdirs import user_cache_dir

        root = Path(user_cache_dir("ticraft"))
    return root.joinpath(*parts)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temp file and ``os.replace`` (readers never see half a file)."""
    from ticraft.io import atomic_write_bytes as write

    write(path, data, fsync=False)  # a cache: losing it in a crash only costs recomputing it
