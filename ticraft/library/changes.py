"""The changing half of :class:`~ticraft.library.Library`: add, import, rename, remove, tag, set_meta, samples.

Every change holds the library's lock, journals the folders it will touch, builds new folders under
``.tmp/`` (or replaces single files atomically), and commits its index rows in one transaction that also
clears the journal: an operation killed before that commit is rolled back by the next process.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from ticraft.library import index as ix
from ticraft.library._common import (
    _RESERVED_META,
    EMBEDDING,
    IMAGES,
    META,
    SAMPLES,
    SCHEMA,
    LibraryError,
    _dump_json,
    _now,
    atomic_write_bytes,
    collect_images,
    to_jsonable,
)
from ticraft.library.canonical import encode_canonical
from ticraft.library.entry import Entry, _summary_fields
from ticraft.library.folders import (
    build_dir,
    copy_images,
    empty_trash,
    entry_from_meta,
    is_pil,
    park,
    png_bytes,
    read_meta,
    rewrite_header,
    swap_in,
)
from ticraft.library.interop import read_file
from ticraft.library.naming import normalize_tags, slugify, token_key, validate_token
from ticraft.library.sync import IndexKeeper, suggest

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept


class LibraryChanges(IndexKeeper):
    """Writing operations of :class:`~ticraft.library.Library` (see there for the whole API)."""

    # ------------------------------------------------------------ writing
    def add(
        self,
        concept: "Concept",
        *,
        images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        tags: Iterable[str] | str = (),
        overwrite: bool = False,
    ) -> Entry:
        """Store ``concept`` (and copies of its training ``images``) as a new entry.

        A token already in the library (brackets and case ignored) raises LibraryError unless
        ``overwrite``; an overwritten entry keeps its tags (plus ``tags``) and loses its old samples.
        """
        return self.add_many([concept], images=images, tags=tags, overwrite=overwrite, origin=concept.token)[0]

    def import_file(
        self,
        path: str | os.PathLike[str],
        *,
        token: str | None = None,
        family: str | None = None,
        tags: Iterable[str] | str = (),
        images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        overwrite: bool = False,
    ) -> list[Entry]:
        """Import every concept in an embedding file of any layout (see :func:`read_file`).

        ``token`` renames a one-concept file's concept or picks one out of several, ``family``
        sets or checks the family, ``images`` are files or folders of training images to keep with
        the concept. Nothing is written unless every concept in the file can be added.
        """
        return self.add_many(
            read_file(path, token=token, family=family), images=images, tags=tags, overwrite=overwrite, origin=str(path)
        )

    def add_many(
        self,
        concepts: Sequence["Concept"],
        *,
        images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
        tags: Iterable[str] | str | Sequence[Sequence[str]] = (),
        overwrite: bool = False,
        origin: str = "the input",
    ) -> list[Entry]:
        """Add several concepts under one lock and one index transaction (the bulk path).

        Every concept is checked before anything is written, so bad input writes nothing; the folders
        are built under ``.tmp/``, flushed to disk together (one ``os.sync``) and renamed in. ``tags``
        applies to all, or is a list with one tag list per concept.
        """
        image_files = collect_images(images)
        if image_files and len(concepts) > 1:
            raise LibraryError(f"{origin} holds {len(concepts)} concepts; images can go with a single concept only")
        per_tags = _per_concept_tags(tags, len(concepts))
        prepared, seen = [], set()
        for c, t in zip(concepts, per_tags, strict=False):
            token = validate_token(c.token)
            if token_key(token) in seen:
                raise LibraryError(f"{origin} holds token {token} twice")
            seen.add(token_key(token))
            cmeta = to_jsonable(c.meta, f"the metadata of {token}")
            prepared.append((c, token, cmeta, encode_canonical(c, cmeta), c.sha256(), t))  # fails before writing
        if not prepared:
            return []
        durable_each = len(prepared) == 1
        with self._writing(create=True) as conn:
            olds = [self._find_fresh(conn, p[1]) for p in prepared]
            for old in olds:
                if old is not None and not overwrite:
                    hint = (
                        "pick another token or overwrite it"
                        if len(prepared) == 1
                        else "rename with --token or overwrite"
                    )
                    raise LibraryError(
                        f"{old.token} is already in the library ({old.folder}); {hint} (--overwrite / overwrite=True)"
                    )
            names: list[str] = []
            taken: set[str] = set()
            for p, old in zip(prepared, olds, strict=True):
                name = old.folder.name if old is not None else self._unique_name(conn, p[1], taken)
                taken.add(name)
                names.append(name)
            self._announce(conn, names)
            builds = []
            for (c, token, cmeta, payload, sha, t), old, name in zip(prepared, olds, names, strict=False):
                now = _now()
                meta: dict[str, Any] = {
                    "schema": SCHEMA,
                    "token": token,
                    "family": c.family,
                    "num_vectors": c.num_vectors,
                    "dims": c.dims,
                    "tags": normalize_tags([*(old.tags if old else ()), *t]),
                    "created": now,
                    "updated": now,
                    **_summary_fields(cmeta),
                    "sha256": sha,
                    "images": [],
                    "meta": cmeta,
                }
                build = build_dir(self.root, name)
                (build / IMAGES).mkdir()
                (build / SAMPLES).mkdir()
                _write(build / EMBEDDING, payload, durable_each)
                meta["images"] = copy_images(image_files, build / IMAGES)
                _write(build / META, _dump_json(meta), durable_each)
                builds.append((build, name, old is not None, meta))
            if not durable_each and hasattr(os, "sync"):
                os.sync()  # one flush for the whole batch instead of two fsyncs per concept
            rows = []
            for build, name, replacing, meta in builds:
                swap_in(self.root, build, name, replacing=replacing)
                rows.append((entry_from_meta(meta, self.root / name), _stat(self.root / name / META)))
            self._commit(conn, upserts=rows)
            empty_trash(self.root)
        return [r[0] for r in rows]

    def rename(self, old: str, new: str) -> Entry:
        """Give ``old``'s entry the token ``new`` (folder, header and meta.json follow; vectors untouched)."""
        validate_token(new)
        with self._writing() as conn:
            src = self._fresh(self._require(conn, old))
            other = self._find_fresh(conn, new)
            if other is not None and other.folder != src.folder:
                raise LibraryError(f"{other.token} is already in the library ({other.folder}); remove it first")
            if src.token == new:
                return src
            same_folder = slugify(new) == src.folder.name or token_key(new) == token_key(src.token)
            name = src.folder.name if same_folder else self._unique_name(conn, new, set())
            self._announce(conn, {src.folder.name, name})
            build = build_dir(self.root, name)
            build.rmdir()
            shutil.copytree(src.folder, build, ignore=shutil.ignore_patterns(".*.tmp"))
            meta = read_meta(build)
            meta["token"], meta["updated"] = new, _now()
            rewrite_header(build / EMBEDDING, token=new)
            atomic_write_bytes(build / META, _dump_json(meta))
            deletes = []
            if same_folder:
                swap_in(self.root, build, name, replacing=True)
            else:
                # New folder first, old one parked after: a crash in between leaves both, never neither.
                os.rename(build, self.root / name)
                park(self.root, src.folder.name)
                deletes.append(src.folder.name)
            entry = entry_from_meta(meta, self.root / name)
            self._commit(conn, upserts=[(entry, _stat(self.root / name / META))], deletes=deletes)
            empty_trash(self.root)
        return entry

    def remove(self, token: str) -> Entry:
        """Delete ``token``'s entry with all its files; returns what was removed."""
        with self._writing() as conn:
            entry = self._require(conn, token)
            self._announce(conn, [entry.folder.name])
            park(self.root, entry.folder.name)
            self._commit(conn, deletes=[entry.folder.name])
            empty_trash(self.root)
        return entry

    def tag(self, token: str, add: Iterable[str] | str = (), remove: Iterable[str] | str = ()) -> Entry:
        """Add and remove tags (case-insensitive); removing an absent tag is not an error."""
        to_add, to_remove = normalize_tags(add), {t.casefold() for t in normalize_tags(remove)}
        with self._writing() as conn:
            entry = self._fresh(self._require(conn, token))
            self._announce(conn, [entry.folder.name])
            meta = read_meta(entry.folder)
            kept = [t for t in entry.tags if t.casefold() not in to_remove]
            meta["tags"] = normalize_tags([*kept, *to_add])
            meta["updated"] = _now()
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = entry_from_meta(meta, entry.folder)
            self._commit(conn, upserts=[(new, _stat(entry.folder / META))])
        return new

    def set_meta(self, token: str, /, **fields: Any) -> Entry:
        """Update the concept's metadata (steps, initializer, notes, loss, …); ``None`` deletes a field.

        Both meta.json and the embedding header are updated, so :meth:`get` sees the change.
        Tokens, tags and shapes have their own methods and cannot be set here.
        """
        bad = sorted(set(fields) & _RESERVED_META)
        if bad:
            raise LibraryError(f"set_meta cannot change {', '.join(bad)}: use rename()/tag(), or add(overwrite=True)")
        if (
            "steps" in fields
            and fields["steps"] is not None
            and (isinstance(fields["steps"], bool) or not isinstance(fields["steps"], int) or fields["steps"] < 0)
        ):
            raise LibraryError(f"steps must be a non-negative integer, got {fields['steps']!r}")
        clean = to_jsonable(fields, "set_meta fields")
        with self._writing() as conn:
            entry = self._require(conn, token)
            self._announce(conn, [entry.folder.name])
            meta = read_meta(entry.folder)
            cmeta = dict(meta.get("meta") or {})
            for key, value in clean.items():
                if value is None:
                    cmeta.pop(key, None)
                else:
                    cmeta[key] = value
            meta.update(_summary_fields(cmeta), meta=cmeta, updated=_now())
            rewrite_header(entry.embedding, concept_meta=cmeta)
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = entry_from_meta(meta, entry.folder)
            self._commit(conn, upserts=[(new, _stat(entry.folder / META))])
        return new

    def add_samples(self, token: str, images: Iterable[Any], *, prefix: str = "sample") -> list[Path]:
        """Store generated images (PIL images or image files) under ``samples/``, numbered after the
        existing ones (``sample-0001.png``, …). PNG text chunks of PIL images are kept."""
        items = list(images)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", prefix):
            raise LibraryError(f"sample prefix {prefix!r} must be letters, digits, '_' or '-'")
        for item in items:
            if not is_pil(item):
                collect_images([item])  # validates paths before anything is written
        written: list[Path] = []
        with self._writing() as conn:
            folder = self._require(conn, token).folder / SAMPLES
            folder.mkdir(exist_ok=True)
            pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.")
            number = max((int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))), default=0)
            for item in items:
                number += 1
                if is_pil(item):
                    target = folder / f"{prefix}-{number:04d}.png"
                    atomic_write_bytes(target, png_bytes(item))
                else:
                    src = Path(item)
                    target = folder / f"{prefix}-{number:04d}{src.suffix.lower()}"
                    atomic_write_bytes(target, src.read_bytes())
                written.append(target)
        return written

    # ------------------------------------------------------------ internals
    def _require(self, conn: Any, token: str) -> Entry:
        if not isinstance(token, str) or not token:
            raise LibraryError("give a token such as '<cat-toy>'")
        found = ix.find(conn, self.root, token)
        if found is None:
            raise LibraryError(f"no concept {token!r} in the library at {self.root}{suggest(token, ix.tokens(conn))}")
        return found

    def _find_fresh(self, conn: Any, token: str) -> Entry | None:
        found = ix.find(conn, self.root, token)
        return None if found is None else self._fresh(found)

    def _unique_name(self, conn: Any, token: str, taken: set[str]) -> str:
        """The token's slug, made unique (case-insensitively) among existing folders and ``taken``."""
        import hashlib

        def free(name: str) -> bool:
            return (
                name.casefold() not in {t.casefold() for t in taken}
                and not os.path.lexists(self.root / name)
                and ix.by_folder(conn, self.root, name) is None
            )

        slug = slugify(token)
        if free(slug):
            return slug
        slug = f"{slug}-{hashlib.sha1(token.encode()).hexdigest()[:8]}"
        candidate, n = slug, 2
        while not free(candidate):
            candidate, n = f"{slug}-{n}", n + 1
        return candidate


def _per_concept_tags(tags: Any, n: int) -> list[list[str]]:
    """``tags`` for every concept, or a list of tag lists (one per concept); validated."""
    if isinstance(tags, (list, tuple)) and tags and all(isinstance(t, (list, tuple)) for t in tags):
        if len(tags) != n:
            raise LibraryError(f"{len(tags)} tag lists for {n} concepts")
        return [normalize_tags(t) for t in tags]
    common = normalize_tags(tags)
    return [common] * n


def _write(path: Path, data: bytes, durable: bool) -> None:
    if durable:
        atomic_write_bytes(path, data)
    else:  # inside a private build folder: nobody reads it before the batch's os.sync and rename
        path.write_bytes(data)


def _stat(path: Path) -> os.stat_result | None:
    with contextlib.suppress(OSError):
        return path.stat()
    return None
