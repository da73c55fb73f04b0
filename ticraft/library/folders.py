"""The file-system side of the library: reading a concept folder, building, parking and sweeping.

Every change follows one pattern (see :mod:`ticraft.library`): a new folder is built under
``.tmp/`` and renamed in; a folder being replaced or removed is parked under ``.trash/`` until the
index no longer lists it; single files are replaced atomically. These helpers never touch the index.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from ticraft.library._common import (
    EMBEDDING,
    IMAGES,
    META,
    SAMPLES,
    SCHEMA,
    TMP_DIR,
    TRASH_DIR,
    LibraryError,
    _read_json,
    _sha256_file,
    atomic_write_bytes,
)
from ticraft.library.canonical import (
    _tensor_sha256,
    _with_header_metadata,
    header_metadata,
    parse_header_metadata,
    read_safetensors_header,
)
from ticraft.library.entry import Entry, _summary_fields


def read_meta(folder: Path) -> dict[str, Any]:
    """meta.json of ``folder``, or a reconstruction from the embedding header when meta.json was lost."""
    try:
        return _read_json(folder / META)
    except FileNotFoundError:
        pass
    path = folder / EMBEDDING
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LibraryError(f"{META} is missing and {EMBEDDING} is unreadable ({exc})") from exc
    header, start = read_safetensors_header(data, EMBEDDING)
    token, family, cmeta = parse_header_metadata(header.get("__metadata__"), EMBEDDING)
    keys = sorted(k for k in header if k != "__metadata__")
    try:
        shapes = {k: [int(x) for x in header[k]["shape"]] for k in keys}
    except (KeyError, TypeError, ValueError) as exc:
        raise LibraryError(f"{EMBEDDING} has a malformed header") from exc
    if not shapes or any(len(s) != 2 for s in shapes.values()):
        raise LibraryError(f"{EMBEDDING} does not hold [N, D] vectors")
    return {
        "schema": SCHEMA,
        "token": token,
        "family": family,
        "num_vectors": shapes[keys[0]][0],
        "dims": {k: s[1] for k, s in shapes.items()},
        "tags": [],
        "created": "",
        **_summary_fields(cmeta),
        "sha256": _tensor_sha256(header, data, start, EMBEDDING),
        "images": [],
        "meta": cmeta,
    }


def entry_from_meta(meta: Mapping[str, Any], folder: Path) -> Entry:
    """The :class:`Entry` of a meta.json record (summary fields re-derived from the concept's meta when the
    record predates them)."""
    cmeta = meta.get("meta")
    if isinstance(cmeta, dict) and ("method" not in meta or "notes" not in meta):
        meta = {**_summary_fields(cmeta), **meta}
    return Entry.from_record(meta, folder)


def load_folder(folder: Path) -> tuple[Entry, os.stat_result | None] | None:
    """``(entry, stat of meta.json)`` for a concept folder; ``None`` if it is not one (no embedding, no meta).

    Raises :class:`LibraryError` for a broken concept folder (the message says what is wrong).
    """
    try:
        st: os.stat_result | None = (folder / META).stat()
    except FileNotFoundError:
        st = None
    except NotADirectoryError:
        return None
    if not (folder / EMBEDDING).is_file():
        if st is None:
            return None  # not a concept folder (e.g. a stray directory): ignore it
        raise LibraryError(f"{EMBEDDING} is missing")
    return entry_from_meta(read_meta(folder), folder), st


def concept_dirs(root: Path) -> set[str]:
    """Names of the non-hidden sub-folders of ``root`` (one ``scandir``)."""
    try:
        return {d.name for d in os.scandir(root) if not d.name.startswith(".") and d.is_dir()}
    except FileNotFoundError:
        return set()


def build_dir(root: Path, name: str) -> Path:
    """A fresh, empty folder under ``.tmp/`` to build ``name`` in."""
    tmp = root / TMP_DIR
    tmp.mkdir(exist_ok=True)
    build = tmp / f"{name}.{secrets.token_hex(4)}"
    build.mkdir()
    return build


def park(root: Path, name: str) -> None:
    """Move folder ``name`` into ``.trash/`` (same name); it is deleted once the index agrees."""
    trash = root / TRASH_DIR
    trash.mkdir(exist_ok=True)
    target = trash / name
    if target.exists():
        shutil.rmtree(target)
    os.rename(root / name, target)


def swap_in(root: Path, build: Path, name: str, *, replacing: bool) -> None:
    """Move a finished ``build`` folder to ``root/name``, parking the folder it replaces."""
    if replacing and (root / name).exists():
        park(root, name)  # a crash right here is undone by recovery (the index still lists it)
    os.rename(build, root / name)


def empty_trash(root: Path) -> None:
    """Delete everything parked (call only once the index no longer lists it)."""
    if (root / TRASH_DIR).exists():
        shutil.rmtree(root / TRASH_DIR, ignore_errors=True)


def sweep_temp_files(folder: Path) -> int:
    """Delete the temp files of atomic writes cut short in ``folder`` and its ``samples/``; returns how many."""
    n = 0
    for sub in (folder, folder / SAMPLES):
        with contextlib.suppress(OSError):
            for item in os.scandir(sub):
                if item.name.startswith(".") and item.name.endswith(".tmp") and item.is_file():
                    with contextlib.suppress(OSError):
                        os.unlink(item.path)
                        n += 1
    return n


def settle_trash(root: Path, listed: set[str]) -> tuple[list[str], list[str]]:
    """Finish what a dead writer left parked: ``(deleted, restored)`` folder names.

    A parked folder whose name is back in place, or that the index no longer lists, was replaced or
    removed on purpose: delete it. Otherwise the writer died mid-way: put it back.
    """
    deleted, restored = [], []
    trash = root / TRASH_DIR
    with contextlib.suppress(FileNotFoundError):
        for item in sorted(trash.iterdir()):
            if (root / item.name).exists() or item.name not in listed:
                shutil.rmtree(item, ignore_errors=True)
                deleted.append(item.name)
            else:
                os.rename(item, root / item.name)
                restored.append(item.name)
    return deleted, restored


def rewrite_header(path: Path, *, token: str | None = None, concept_meta: Mapping[str, Any] | None = None) -> None:
    """Replace the embedding header's token and/or concept meta; tensor bytes are copied untouched."""
    data = path.read_bytes()
    header, _ = read_safetensors_header(data, EMBEDDING)
    old_token, family, old_meta = parse_header_metadata(header.get("__metadata__"), EMBEDDING)
    meta = header_metadata(token or old_token, family, old_meta if concept_meta is None else concept_meta)
    atomic_write_bytes(path, _with_header_metadata(data, meta, EMBEDDING))


def copy_images(files: Sequence[Path], dest: Path) -> list[dict[str, str]]:
    """Copy training images into ``dest`` (names kept, clashes numbered) and hash them."""
    records, used = [], set()
    for src in files:
        name, n = src.name, 1
        while name.casefold() in used:
            n += 1
            name = f"{src.stem}-{n}{src.suffix}"
        used.add(name.casefold())
        shutil.copyfile(src, dest / name)
        records.append({"file": f"{IMAGES}/{name}", "sha256": _sha256_file(dest / name)})
    return records


def files_in(folder: Path) -> list[Path]:
    """Visible files of ``folder``, sorted (empty when it does not exist)."""
    try:
        return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
    except FileNotFoundError:
        return []


def is_pil(item: Any) -> bool:
    """Whether ``item`` looks like a PIL image (duck-typed: PIL is imported only when needed)."""
    return hasattr(item, "save") and hasattr(item, "mode") and hasattr(item, "size")


def png_bytes(image: Any) -> bytes:
    """PNG bytes of a PIL image, keeping its text chunks (prompt, seed, … written by the sampler)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (getattr(image, "text", None) or image.info or {}).items():
        if isinstance(key, str) and isinstance(value, str):
            info.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()
