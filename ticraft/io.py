"""Files written whole or not at all, and safetensors headers read without torch.

Every file ticraft writes (library entries, concept files, checkpoints, PNGs, the user config, caches)
goes through :func:`atomic_file` or one of its short forms: the data goes to a temp file in the same
folder, is flushed to disk, and is moved over the target with :func:`os.replace`, so a reader (or a crash)
sees the old file or the new one, never half of one. Temp files get the target's mode (or ``0644`` for a
new file: :func:`tempfile.mkstemp` would leave ``0600``).

The safetensors header (8-byte little-endian length, then JSON) is parsed here once, for the library, the
format readers and the single-file model loader; a damaged header is a :class:`SafetensorsHeaderError`
naming the file.

>>> import tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
>>> _ = atomic_write_text(p, "hello")
>>> p.read_text()
'hello'
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from ticraft.errors import TicraftError

__all__ = ["MAX_HEADER", "SafetensorsHeaderError", "atomic_file", "atomic_write_bytes", "atomic_write_text",
           "atomic_write_many", "atomic_folder", "parse_safetensors_header", "read_safetensors_header"]

#: The largest safetensors header ticraft reads (the format's own limit is 100 MB).
MAX_HEADER = 100 * 1024 * 1024


def _new_mode(path: Path) -> int:
    """An existing file's permission bits, else the usual ``rw-r--r--``."""
    try:
        return path.stat().st_mode & 0o777
    except OSError:
        return 0o644


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[IO[bytes]]:
    """A binary file object whose contents replace ``path`` when the block ends without an error.

    On an error the temp file is removed and ``path`` is untouched. Parent folders are created.

    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "b.bin"
    >>> with atomic_file(p) as fh:
    ...     _ = fh.write(b"xy")
    >>> p.read_bytes()
    b'xy'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            yield fh
            fh.flush()
            if fsync:
                os.fsync(fh.fileno())
        os.chmod(tmp, _new_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` atomically; returns the path."""
    with atomic_file(path, fsync=fsync) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically; returns the path."""
    return atomic_write_bytes(path, text.encode(encoding))


def atomic_write_many(files: Sequence[tuple[Path, bytes]]) -> list[Path]:
    """Write several files, each atomically, staging all of them before moving any into place.

    A crash leaves either the old files or the new ones (a pair is swapped back to back, not as one
    transaction). Raises :class:`OSError` as the file system does.
    """
    staged: list[tuple[str, Path]] = []
    try:
        for path, data in files:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
            staged.append((tmp, path))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, _new_mode(path))
        for tmp, path in staged:
            os.replace(tmp, path)
        staged.clear()
    finally:
        for tmp, _ in staged:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
    return [p for p, _ in files]


@contextlib.contextmanager
def atomic_folder(dest: str | os.PathLike[str]) -> Iterator[Path]:
    """A temp folder next to ``dest`` that replaces it when the block ends without an error.

    Meant for caches several processes may fill at once: when another process got there first, its
    (equal) folder is kept.
    """
    target = Path(dest)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        yield tmp
        if target.exists():
            shutil.rmtree(target, ignore_errors=True)
        try:
            os.replace(tmp, target)
        except OSError:
            if not target.exists():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


# ------------------------------------------------------------------------------- safetensors headers
class SafetensorsHeaderError(TicraftError):
    """A file that is not a safetensors file: too short, an impossible header length, or a header that is not JSON."""


def _decode_header(raw: bytes, name: str) -> dict[str, Any]:
    try:
        header = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        raise SafetensorsHeaderError(f"{name} has a corrupt safetensors header ({exc})") from exc
    if not isinstance(header, dict):
        raise SafetensorsHeaderError(f"{name} has a corrupt safetensors header (not a JSON object)")
    return header


def parse_safetensors_header(data: bytes, name: str = "file") -> tuple[dict[str, Any], int]:
    """``(header, data_start)`` of safetensors bytes; ``header`` maps keys to ``{dtype, shape, data_offsets}``.

    >>> parse_safetensors_header(b"\\x02\\x00\\x00\\x00\\x00\\x00\\x00\\x00{}")
    ({}, 10)
    """
    if len(data) < 8:
        raise SafetensorsHeaderError(f"{name} is truncated ({len(data)} bytes): not a safetensors file")
    size = int.from_bytes(data[:8], "little")
    if size > MAX_HEADER or 8 + size > len(data):
        raise SafetensorsHeaderError(f"{name} is truncated or not a safetensors file (header size {size})")
    return _decode_header(data[8:8 + size], name), 8 + size


def read_safetensors_header(path: str | os.PathLike[str]) -> tuple[dict[str, Any], int]:
    """``(header, data_start)`` of a ``.safetensors`` file, reading only the header (never the tensors)."""
    path = Path(path)
    with path.open("rb") as fh:
        file_size = os.fstat(fh.fileno()).st_size
        head = fh.read(8)
        if len(head) < 8:
            raise SafetensorsHeaderError(f"{path} is truncated ({len(head)} bytes): not a safetensors file")
        size = int.from_bytes(head, "little")
        if size > MAX_HEADER or 8 + size > file_size:
            raise SafetensorsHeaderError(f"{path} is truncated or not a safetensors file (header size {size})")
        return _decode_header(fh.read(size), str(path)), 8 + size
