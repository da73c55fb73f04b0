"""Importing a whole embeddings folder (AUTOMATIC1111 / ComfyUI ``embeddings/``) into a library.

``ticraft library import DIR --recursive`` walks the folder, reads every embedding file through
:mod:`ticraft.formats` (pickles never run code), names each single-concept file's concept after the
file (``bad_prompt.pt`` → ``<bad_prompt>``, as webui does: the file name is the word you type), turns
sub-folder names into tags (``styles/anime/x.pt`` → tags ``styles``, ``anime``), skips files whose
vectors are already in the library or earlier in the folder (same content hash), and refuses, with a
reason, every file it cannot take. Everything accepted is then added in one batch
(:meth:`Library.add_many`): folders built aside and renamed in, one index transaction — nothing
half-written.

>>> report = import_folder(lib, "~/stable-diffusion-webui/embeddings")   # doctest: +SKIP
>>> len(report.added), len(report.duplicates), report.refused[:1]           # doctest: +SKIP
(412, 3, [(PosixPath('.../broken.pt'), 'file is truncated ...')])
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from ticraft.errors import TicraftError
from ticraft.library._common import LibraryError
from ticraft.library.entry import Entry
from ticraft.library.naming import normalize_tags, token_key, validate_token

if TYPE_CHECKING:  # pragma: no cover
    from ticraft.concept import Concept
    from ticraft.library.store import Library

#: File suffixes an embeddings folder holds embeddings in (others, e.g. .txt/.json notes, are ignored).
EMBEDDING_SUFFIXES = frozenset({".pt", ".safetensors", ".bin", ".ckpt", ".png"})


@dataclass
class ImportReport:
    """What :func:`import_folder` did: ``added`` entries, ``duplicates`` as ``(file, token it duplicates)``,
    ``refused`` as ``(file, reason)``, and how many other files were ``ignored`` (not embedding files)."""

    added: list[Entry] = field(default_factory=list)
    duplicates: list[tuple[Path, str]] = field(default_factory=list)
    refused: list[tuple[Path, str]] = field(default_factory=list)
    ignored: int = 0


def folder_tags(rel_parent: Path) -> list[str]:
    """Tags from the sub-folders a file sits in (spaces and commas become ``-``).

    >>> folder_tags(Path("Styles/oil paint"))
    ['Styles', 'oil-paint']
    """
    out = []
    for part in rel_parent.parts:
        tag = re.sub(r"[\s,\x00-\x1f\x7f]+", "-", part).strip("-")[:64]
        if tag and tag != ".":
            out.append(tag)
    return normalize_tags(out)


def embedding_files(folder: Path, recursive: bool) -> tuple[list[Path], int]:
    """``(candidate files in natural order, number of other files)``; hidden files and folders are skipped."""
    files, other = [], 0
    walker: Iterable[tuple[str, list[str], list[str]]] = (
        os.walk(folder) if recursive else [(str(folder), [], [p.name for p in folder.iterdir() if p.is_file()])]
    )
    for dirpath, dirnames, filenames in walker:
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            if Path(name).suffix.lower() in EMBEDDING_SUFFIXES:
                files.append(Path(dirpath) / name)
            else:
                other += 1
    return files, other


def _file_token(path: Path) -> str:
    """The token webui would give a file: its name without suffix (whitespace → ``-``), in brackets."""
    return "<" + re.sub(r"\s+", "-", path.stem.strip()) + ">"


def _read(path: Path, family: str | None) -> list["Concept"]:
    from ticraft.library.interop import _pick_or_rename, read_file

    concepts = read_file(path, family=family)
    if len(concepts) == 1:
        token = validate_token(_file_token(path))
        concepts = [_pick_or_rename(concepts, token, path)]
        concepts[0].meta.setdefault("source", path.name)
    return concepts


def import_folder(
    lib: "Library",
    folder: str | os.PathLike[str],
    *,
    recursive: bool = True,
    family: str | None = None,
    tags: Iterable[str] = (),
    overwrite: bool = False,
    progress: Callable[[int, int], Any] | None = None,
) -> ImportReport:
    """Import every embedding file under ``folder`` (see the module docstring); returns what happened.

    ``tags`` are added to every concept, after the sub-folder tags; ``overwrite`` replaces entries with
    the same token instead of refusing the file; ``progress(done, total)`` is called after each file read.
    """
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise LibraryError(f"{root} is not a folder; give the embeddings folder to import")
    extra = normalize_tags(tags)
    files, report_ignored = embedding_files(root, recursive)
    report = ImportReport(ignored=report_ignored)
    accepted: list[tuple["Concept", list[str]]] = []
    seen_sha: dict[str, str] = {}
    seen_token: dict[str, Path] = {}
    for i, path in enumerate(files, 1):
        try:
            concepts = _read(path, family)
        except TicraftError as exc:
            if path.suffix.lower() == ".png" and "embedding" in str(exc).lower():
                report.ignored += 1  # a preview picture next to its embedding, not an embedding itself
            else:
                report.refused.append((path, str(exc)))
            concepts = []
        except (OSError, ValueError, RuntimeError) as exc:  # damage the readers did not classify
            report.refused.append((path, f"unreadable ({exc})"))
            concepts = []
        for c in concepts:
            sha = c.sha256()
            dup = seen_sha.get(sha) or (None if overwrite else _dup_in_library(lib, sha))
            if dup is not None:
                report.duplicates.append((path, dup))
                continue
            key = token_key(c.token)
            if key in seen_token:
                report.refused.append((path, f"token {c.token} is also the name of {seen_token[key]}"))
                continue
            if not overwrite and lib.has(c.token):
                report.refused.append(
                    (
                        path,
                        f"{c.token} is already in the library with other vectors "
                        "(import with --overwrite to replace it)",
                    )
                )
                continue
            seen_sha[sha], seen_token[key] = c.token, path
            accepted.append((c, normalize_tags([*folder_tags(path.parent.relative_to(root)), *extra])))
        if progress is not None:
            progress(i, len(files))
    if accepted:
        report.added = lib.add_many(
            [c for c, _ in accepted], tags=[t for _, t in accepted], overwrite=overwrite, origin=str(root)
        )
    return report


def _dup_in_library(lib: "Library", sha: str) -> str | None:
    found = lib.find_duplicate(sha)
    return None if found is None else found.token
