"""The :class:`Library` itself: scanning, locking, atomic changes, recovery."""

from __future__ import annotations

import contextlib
import difflib
import hashlib
import io
import os
import re
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Sequence

from ticraft.errors import TicraftError
from ticraft.library._common import (
    _RESERVED_META, CANONICAL_KEYS, EMBEDDING, ENV_VAR, IMAGES, LOCK, LOCK_TIMEOUT_S, MANIFEST, META, SAMPLES,
    SCHEMA, TMP_DIR, TRASH_DIR, LibraryError, _dump_json, _now, _read_json, _sha256_file, atomic_write_bytes,
    collect_images, to_jsonable,
)
from ticraft.library.canonical import (
    _tensor_sha256, _with_header_metadata, encode_canonical, header_metadata, parse_header_metadata, read_canonical,
    read_safetensors_header,
)
from ticraft.library.entry import Entry, _summary_fields, filter_entries
from ticraft.library.interop import read_file, write_file
from ticraft.library.naming import normalize_tags, slugify, token_key, validate_token

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept


@dataclass
class _State:
    """A consistent view of the library: entries by folder name, and what is broken."""

    entries: dict[str, Entry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    manifest_names: set[str] | None = None  # None when the manifest is missing or unreadable
    newer_schema: bool = False

    def find(self, token: str) -> Entry | None:
        exact = [e for e in self.entries.values() if e.token == token]
        if exact:
            return exact[0]
        key = token_key(token)
        return next((e for e in self.entries.values() if token_key(e.token) == key), None)


# --------------------------------------------------------------------------- the library
def default_library_path() -> Path:
    """The per-user library folder (platformdirs' user data dir, ``…/ticraft/library``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("ticraft", appauthor=False)) / "library"


class Library:
    """A folder of concepts. Creating the object touches nothing; the folder appears on first write.

    >>> import tempfile
    >>> lib = Library(Path(tempfile.mkdtemp()) / "new")
    >>> lib.entries(), lib.root.exists()
    ([], False)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"{self.root} is a file, not a library folder")
        self._lock_obj: Any = None

    def __repr__(self) -> str:
        return f"Library({str(self.root)!r})"

    # ------------------------------------------------------------ location
    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> "Library":
        """The library the user meant: ``path`` > ``$TICRAFT_LIBRARY`` > ``./embeddings`` (if it holds a
        manifest) > the user data dir (see :func:`default_library_path`)."""
        if path is not None and str(path):
            return cls(path)
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return cls(env)
        local = Path.cwd() / "embeddings"
        if (local / MANIFEST).is_file():
            return cls(local)
        return cls(default_library_path())

    # ------------------------------------------------------------ reading
    def entries(self) -> list[Entry]:
        """Every readable entry, sorted by token (case-insensitive). Never raises for broken entries."""
        return self.listing()[0]

    def problems(self) -> list[str]:
        """Human-readable descriptions of broken entries and manifest trouble (empty when healthy)."""
        return list(self._scan().problems)

    def listing(self) -> tuple[list[Entry], list[str]]:
        """``(entries(), problems())`` from a single scan."""
        state = self._scan()
        return sorted(state.entries.values(), key=lambda e: (e.token.casefold(), e.token)), list(state.problems)

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.has(token)

    def has(self, token: str) -> bool:
        """Whether ``token`` (``"<tok>"`` or ``"tok"``, any case) names an entry."""
        return self._scan().find(token) is not None

    def entry(self, token: str) -> Entry:
        """The :class:`Entry` for ``token``; an unknown token raises LibraryError with suggestions."""
        return self._require(self._scan(), token)

    def folder(self, token: str) -> Path:
        """The folder holding ``token``'s files."""
        return self.entry(token).folder

    def get(self, token: str) -> "Concept":
        """Load ``token``'s concept (reads one safetensors file).

        The concept's ``meta`` is the training metadata; tags and other library bookkeeping live in
        :meth:`entry`.
        """
        if not isinstance(token, str) or not token:
            raise LibraryError("give a token such as '<cat-toy>'")
        # Fast path: the folder is usually the token's slug, so no scan is needed.
        guess = self.root / slugify(token) / EMBEDDING
        if guess.is_file():
            with contextlib.suppress(TicraftError):
                concept = read_canonical(guess)
                if token_key(concept.token) == token_key(token):
                    return concept
        entry = self.entry(token)
        try:
            return read_canonical(entry.embedding)
        except TicraftError as exc:
            raise LibraryError(f"entry {entry.token} is broken: {exc}") from exc

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list[Entry]:
        """Entries matching every given filter: ``text`` (substring of token/tags/initializer/source),
        ``tag`` (exact, case-insensitive), ``family`` (exact)."""
        return filter_entries(self.entries(), text=text, tag=tag, family=family)

    def images(self, token: str) -> list[Path]:
        """Training images stored with ``token``."""
        return self._files(self.folder(token) / IMAGES)

    def samples(self, token: str) -> list[Path]:
        """Generated samples stored with ``token``."""
        return self._files(self.folder(token) / SAMPLES)

    def meta(self, token: str) -> dict[str, Any]:
        """The full ``meta.json`` of ``token`` (rebuilt from the embedding header if it was lost)."""
        return self._read_meta(self.folder(token))

    # ------------------------------------------------------------ writing
    def add(self, concept: "Concept", *, images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] = (),
            tags: Iterable[str] | str = (), overwrite: bool = False) -> Entry:
        """Store ``concept`` (and copies of its training ``images``) as a new entry.

        A token already in the library (brackets and case ignored) raises LibraryError unless
        ``overwrite``; an overwritten entry keeps its tags (plus ``tags``) and loses its old samples.
        """
        token = validate_token(concept.token)
        new_tags = normalize_tags(tags)
        image_files = collect_images(images)
        concept_meta = to_jsonable(concept.meta, f"the metadata of {token}")
        payload = encode_canonical(concept, concept_meta)  # fails before anything is written
        sha = concept.sha256()
        with self._writing(create=True) as state:
            old = state.find(token)
            if old is not None and not overwrite:
                raise LibraryError(
                    f"{old.token} is already in the library ({old.folder}); pick another token or overwrite it "
                    "(--overwrite / overwrite=True)"
                )
            name = old.folder.name if old is not None else self._unique_name(token)
            now = _now()
            meta: dict[str, Any] = {
                "schema": SCHEMA, "token": token, "family": concept.family, "num_vectors": concept.num_vectors,
                "dims": concept.dims, "tags": normalize_tags([*(old.tags if old else ()), *new_tags]),
                "created": now, "updated": now, **_summary_fields(concept_meta), "sha256": sha,
                "images": [], "meta": concept_meta,
            }
            build = self._build_dir(name)
            (build / IMAGES).mkdir()
            (build / SAMPLES).mkdir()
            atomic_write_bytes(build / EMBEDDING, payload)
            meta["images"] = self._copy_images(image_files, build / IMAGES)
            atomic_write_bytes(build / META, _dump_json(meta))
            self._swap_in(build, name, replacing=old is not None)
            entry = Entry.from_record(meta, self.root / name)
            state.entries[name] = entry
            self._write_manifest(state)
        return entry

    def import_file(self, path: str | os.PathLike[str], *, token: str | None = None, family: str | None = None,
                    tags: Iterable[str] | str = (), images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
                    overwrite: bool = False) -> list[Entry]:
        """Import every concept in an embedding file of any layout (see :func:`read_file`).

        ``token`` renames a one-concept file's concept or picks one out of several, ``family``
        sets or checks the family, ``images`` are files or folders of training images to keep with
        the concept. Nothing is written unless every concept in the file can be added.
        """
        return self.add_many(read_file(path, token=token, family=family), images=images, tags=tags,
                             overwrite=overwrite, origin=str(path))

    def add_many(self, concepts: Sequence["Concept"], *, images: Iterable[str | os.PathLike[str]] | str | os.PathLike[str] | None = None,
                 tags: Iterable[str] | str = (), overwrite: bool = False, origin: str = "the input") -> list[Entry]:
        """Add several concepts, checking all of them first so that bad input writes nothing."""
        image_files = collect_images(images)
        if image_files and len(concepts) > 1:
            raise LibraryError(f"{origin} holds {len(concepts)} concepts; images can go with a single concept only")
        normalize_tags(tags)
        state = self._scan()
        seen: set[str] = set()
        for c in concepts:
            validate_token(c.token)
            if set(c.vectors) not in CANONICAL_KEYS:
                raise LibraryError(f"{c.token} has encoders {sorted(c.vectors)}; a library stores 'clip' or 'clip_l' + 'clip_g'")
            to_jsonable(c.meta, f"the metadata of {c.token}")
            if token_key(c.token) in seen:
                raise LibraryError(f"{origin} holds token {c.token} twice")
            seen.add(token_key(c.token))
            existing = state.find(c.token)
            if existing is not None and not overwrite:
                raise LibraryError(
                    f"{existing.token} is already in the library ({existing.folder}); rename with --token or overwrite "
                    "(--overwrite / overwrite=True)"
                )
        return [self.add(c, images=image_files, tags=tags, overwrite=overwrite) for c in concepts]

    def export(self, token: str, path: str | os.PathLike[str], layout: str = "diffusers", *,
               overwrite: bool = False) -> list[Path]:
        """Write ``token`` to ``path`` in ``layout`` (``diffusers``, ``a1111`` or ``kohya``).

        A folder ``path`` gets ``<slug>.safetensors`` / ``<slug>.pt``. Returns the files written
        (SDXL in diffusers layout gives two).
        """
        return write_file(self.get(token), path, layout, overwrite=overwrite)

    def rename(self, old: str, new: str) -> Entry:
        """Give ``old``'s entry the token ``new`` (folder, header and meta.json follow; vectors untouched)."""
        validate_token(new)
        with self._writing() as state:
            src = self._require(state, old)
            other = state.find(new)
            if other is not None and other.folder != src.folder:
                raise LibraryError(f"{other.token} is already in the library ({other.folder}); remove it first")
            if src.token == new:
                return src
            same_folder = slugify(new) == src.folder.name or token_key(new) == token_key(src.token)
            name = src.folder.name if same_folder else self._unique_name(new)
            build = self._build_dir(name)
            build.rmdir()
            shutil.copytree(src.folder, build, ignore=shutil.ignore_patterns(".*.tmp"))
            meta = self._read_meta(build)
            meta["token"], meta["updated"] = new, _now()
            self._rewrite_header(build / EMBEDDING, token=new)
            atomic_write_bytes(build / META, _dump_json(meta))
            if same_folder:
                self._swap_in(build, name, replacing=True)
            else:
                # New folder first, old one parked after: a crash in between leaves both, never neither.
                os.rename(build, self.root / name)
                self._park(src.folder.name)
                del state.entries[src.folder.name]
            entry = Entry.from_record(meta, self.root / name)
            state.entries[name] = entry
            self._write_manifest(state)
            self._empty_trash()
        return entry

    def remove(self, token: str) -> Entry:
        """Delete ``token``'s entry with all its files; returns what was removed."""
        with self._writing() as state:
            entry = self._require(state, token)
            self._park(entry.folder.name)
            del state.entries[entry.folder.name]
            self._write_manifest(state)
            self._empty_trash()
        return entry

    def tag(self, token: str, add: Iterable[str] | str = (), remove: Iterable[str] | str = ()) -> Entry:
        """Add and remove tags (case-insensitive); removing an absent tag is not an error."""
        to_add, to_remove = normalize_tags(add), {t.casefold() for t in normalize_tags(remove)}
        with self._writing() as state:
            entry = self._require(state, token)
            meta = self._read_meta(entry.folder)
            kept = [t for t in normalize_tags(meta.get("tags") or []) if t.casefold() not in to_remove]
            meta["tags"] = normalize_tags([*kept, *to_add])
            meta["updated"] = _now()
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = Entry.from_record(meta, entry.folder)
            state.entries[entry.folder.name] = new
            self._write_manifest(state)
        return new

    def set_meta(self, token: str, /, **fields: Any) -> Entry:
        """Update the concept's metadata (steps, initializer, loss, …); ``None`` deletes a field.

        Both meta.json and the embedding header are updated, so :meth:`get` sees the change.
        Tokens, tags and shapes have their own methods and cannot be set here.
        """
        bad = sorted(set(fields) & _RESERVED_META)
        if bad:
            raise LibraryError(f"set_meta cannot change {', '.join(bad)}: use rename()/tag(), or add(overwrite=True)")
        if "steps" in fields and fields["steps"] is not None and (
            isinstance(fields["steps"], bool) or not isinstance(fields["steps"], int) or fields["steps"] < 0
        ):
            raise LibraryError(f"steps must be a non-negative integer, got {fields['steps']!r}")
        clean = to_jsonable(fields, "set_meta fields")
        with self._writing() as state:
            entry = self._require(state, token)
            meta = self._read_meta(entry.folder)
            cmeta = dict(meta.get("meta") or {})
            for key, value in clean.items():
                if value is None:
                    cmeta.pop(key, None)
                else:
                    cmeta[key] = value
            meta.update(_summary_fields(cmeta), meta=cmeta, updated=_now())
            self._rewrite_header(entry.embedding, concept_meta=cmeta)
            atomic_write_bytes(entry.folder / META, _dump_json(meta))
            new = Entry.from_record(meta, entry.folder)
            state.entries[entry.folder.name] = new
            self._write_manifest(state)
        return new

    def add_samples(self, token: str, images: Iterable[Any], *, prefix: str = "sample") -> list[Path]:
        """Store generated images (PIL images or image files) under ``samples/``, numbered after the
        existing ones (``sample-0001.png``, …). PNG text chunks of PIL images are kept."""
        items = list(images)
        if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", prefix):
            raise LibraryError(f"sample prefix {prefix!r} must be letters, digits, '_' or '-'")
        for item in items:
            if not _is_pil(item):
                collect_images([item])  # validates paths before anything is written
        written: list[Path] = []
        with self._locked():
            folder = self._require(self._scan(), token).folder / SAMPLES
            folder.mkdir(exist_ok=True)
            pattern = re.compile(rf"{re.escape(prefix)}-(\d+)\.")
            taken = [int(m.group(1)) for p in folder.iterdir() if (m := pattern.match(p.name))]
            number = max(taken, default=0)
            for item in items:
                number += 1
                if _is_pil(item):
                    target = folder / f"{prefix}-{number:04d}.png"
                    atomic_write_bytes(target, _png_bytes(item))
                else:
                    src = Path(item)
                    target = folder / f"{prefix}-{number:04d}{src.suffix.lower()}"
                    atomic_write_bytes(target, src.read_bytes())
                written.append(target)
        return written

    def repair(self) -> list[str]:
        """Finish or undo interrupted writes and rewrite the manifest from the folders.

        Returns the problems that remain (entries that are broken beyond repair are left in place
        for a person to inspect, never deleted).
        """
        with self._writing() as state:
            self._write_manifest(state)
            return list(state.problems)

    # ------------------------------------------------------------ internals: scanning
    def _scan(self) -> _State:
        state = _State()
        records = self._read_manifest(state)
        try:
            on_disk = {d.name for d in os.scandir(self.root) if d.is_dir() and not d.name.startswith(".")}
        except FileNotFoundError:
            on_disk = set()
        except OSError as exc:
            state.problems.append(f"cannot read the library folder {self.root}: {exc}")
            return state
        for name in sorted(on_disk | set(records)):
            folder = self.root / name
            if name not in on_disk:
                parked = self.root / TRASH_DIR / name
                if not parked.is_dir():
                    state.problems.append(f"{name}: listed in the manifest, but its folder is missing")
                    continue
                folder = parked  # an interrupted replace/remove: the old version still counts
            try:
                entry = self._load_entry(folder, records.get(name))
            except LibraryError as exc:
                state.problems.append(f"{name}: {exc}")
                continue
            if entry is None:
                if name in records:
                    state.problems.append(f"{name}: listed in the manifest, but the folder holds no {EMBEDDING}")
                continue
            twin = state.find(entry.token)
            if twin is not None and token_key(twin.token) == token_key(entry.token):
                keep, drop = (entry, twin) if name == slugify(entry.token) else (twin, entry)
                state.entries.pop(twin.folder.name, None)
                state.entries[keep.folder.name] = keep
                state.problems.append(
                    f"{drop.folder.name}: token {drop.token} is also in folder {keep.folder.name}; skipped this copy"
                )
                continue
            state.entries[name] = entry
        return state

    def _read_manifest(self, state: _State) -> dict[str, dict[str, Any]]:
        path = self.root / MANIFEST
        try:
            data = _read_json(path)
            schema = data.get("schema")
            if not isinstance(schema, int) or not isinstance(data.get("entries"), list):
                raise LibraryError(f"{MANIFEST} lacks a schema number or an entries list")
        except FileNotFoundError:
            return {}
        except (LibraryError, OSError) as exc:
            state.problems.append(f"{exc}; listing the concept folders instead (any change rewrites it)")
            return {}
        if schema > SCHEMA:
            state.newer_schema = True
            state.problems.append(
                f"{MANIFEST} has schema {schema}, newer than this ticraft understands ({SCHEMA}); "
                "reading the concept folders instead, changes are refused: upgrade ticraft"
            )
            return {}
        records = {
            rec["folder"]: rec for rec in data["entries"]
            if isinstance(rec, dict) and isinstance(rec.get("folder"), str)
            and rec["folder"] and not rec["folder"].startswith(".") and not set(rec["folder"]) & {"/", "\\"}
        }
        state.manifest_names = set(records)
        return records

    def _load_entry(self, folder: Path, record: Mapping[str, Any] | None) -> Entry | None:
        try:
            st = (folder / META).stat()
        except FileNotFoundError:
            st = None
        if not (folder / EMBEDDING).is_file():
            if st is None:
                return None  # not a concept folder (e.g. a stray directory): ignore it
            raise LibraryError(f"{EMBEDDING} is missing")
        # meta.json is only ever replaced (new inode), so inode + mtime + size tell a stale record.
        if (record is not None and st is not None and record.get("meta_mtime_ns") == st.st_mtime_ns
                and record.get("meta_size") == st.st_size and record.get("meta_ino") == st.st_ino):
            with contextlib.suppress(LibraryError):  # a bad record falls back to meta.json
                return Entry.from_record(record, folder)
        return Entry.from_record(self._read_meta(folder), folder)

    def _read_meta(self, folder: Path) -> dict[str, Any]:
        """meta.json, or a reconstruction from the embedding header when meta.json was lost."""
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
            "schema": SCHEMA, "token": token, "family": family,
            "num_vectors": shapes[keys[0]][0], "dims": {k: s[1] for k, s in shapes.items()}, "tags": [],
            "created": "", **_summary_fields(cmeta), "sha256": _tensor_sha256(header, data, start, EMBEDDING),
            "images": [], "meta": cmeta,
        }

    @staticmethod
    def _files(folder: Path) -> list[Path]:
        try:
            return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))
        except FileNotFoundError:
            return []

    def _require(self, state: _State, token: str) -> Entry:
        if not isinstance(token, str) or not token:
            raise LibraryError("give a token such as '<cat-toy>'")
        found = state.find(token)
        if found is not None:
            return found
        known = sorted(e.token for e in state.entries.values())
        close = difflib.get_close_matches(token, known, n=3, cutoff=0.5)
        if close:
            hint = f"; did you mean {', '.join(close)}?"
        elif not known:
            hint = "; it is empty"
        elif len(known) <= 8:
            hint = f"; it holds {', '.join(known)}"
        else:
            hint = f"; it holds {len(known)} concepts (see `ticraft library list`)"
        raise LibraryError(f"no concept {token!r} in the library at {self.root}{hint}")

    # ------------------------------------------------------------ internals: writing
    @contextlib.contextmanager
    def _locked(self, *, create: bool = False) -> Iterator[None]:
        """Hold the library's file lock; OS errors become one clear LibraryError.

        Only adding creates a missing library: a mistyped ``--library`` given to rm/tag/rename
        must not leave an empty folder behind.
        """
        from filelock import FileLock, Timeout

        if not self.root.is_dir():
            if not create:
                raise LibraryError(f"there is no library at {self.root}")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LibraryError(f"cannot create the library folder {self.root}: {exc}") from exc
        if self._lock_obj is None:
            self._lock_obj = FileLock(str(self.root / LOCK), timeout=LOCK_TIMEOUT_S)
        try:
            self._lock_obj.acquire()
        except Timeout as exc:
            raise LibraryError(
                f"the library at {self.root} is busy: another ticraft process holds {LOCK}; try again"
            ) from exc
        except OSError as exc:
            raise LibraryError(f"cannot lock the library at {self.root}: {exc}") from exc
        try:
            yield
        except OSError as exc:
            raise LibraryError(f"could not write to the library at {self.root}: {exc}") from exc
        finally:
            self._lock_obj.release()

    @contextlib.contextmanager
    def _writing(self, *, create: bool = False) -> Iterator[_State]:
        """Lock, tidy up after interrupted writers, and yield a fresh view to change."""
        with self._locked(create=create):
            self._recover()
            state = self._scan()
            if state.newer_schema:
                raise LibraryError(f"{self.root / MANIFEST} was written by a newer ticraft; upgrade to change it")
            yield state

    def _recover(self) -> None:
        """Clear half-built folders and settle parked ones (called under the lock).

        A parked folder whose name is back in place, or that the manifest no longer lists, was
        replaced or removed on purpose: delete it. Otherwise the writer died mid-way: restore it.
        """
        shutil.rmtree(self.root / TMP_DIR, ignore_errors=True)
        # Temp files of atomic writes cut short (every writer holds the lock, so none is live).
        for pattern in (".*.tmp", "*/.*.tmp", f"*/{SAMPLES}/.*.tmp"):
            for stale in self.root.glob(pattern):
                with contextlib.suppress(OSError):
                    stale.unlink()
        trash = self.root / TRASH_DIR
        if not trash.is_dir():
            return
        probe = _State()
        listed = self._read_manifest(probe)
        for item in trash.iterdir():
            if (self.root / item.name).exists() or (probe.manifest_names is not None and item.name not in listed):
                shutil.rmtree(item, ignore_errors=True)
            else:
                os.rename(item, self.root / item.name)

    def _write_manifest(self, state: _State) -> None:
        records = []
        for name, entry in sorted(state.entries.items()):
            rec = entry.to_record()
            rec["folder"] = name
            with contextlib.suppress(OSError):
                st = (self.root / name / META).stat()
                rec["meta_mtime_ns"], rec["meta_size"], rec["meta_ino"] = st.st_mtime_ns, st.st_size, st.st_ino
            records.append(rec)
        doc = {"schema": SCHEMA, "kind": "ticraft-library", "updated": _now(), "entries": records}
        atomic_write_bytes(self.root / MANIFEST, _dump_json(doc))

    def _unique_name(self, token: str) -> str:
        """The token's slug, made unique (case-insensitively) among the root's current folders."""
        taken = {p.name.casefold() for p in self.root.iterdir()} if self.root.is_dir() else set()
        slug = slugify(token)
        if slug.casefold() not in taken:
            return slug
        slug = f"{slug}-{hashlib.sha1(token.encode()).hexdigest()[:8]}"
        candidate, n = slug, 2
        while candidate.casefold() in taken:
            candidate, n = f"{slug}-{n}", n + 1
        return candidate

    def _build_dir(self, name: str) -> Path:
        tmp = self.root / TMP_DIR
        tmp.mkdir(exist_ok=True)
        build = tmp / f"{name}.{secrets.token_hex(4)}"
        build.mkdir()
        return build

    def _park(self, name: str) -> None:
        """Move folder ``name`` into ``.trash/`` (same name); it is deleted once the manifest agrees."""
        trash = self.root / TRASH_DIR
        trash.mkdir(exist_ok=True)
        target = trash / name
        if target.exists():
            shutil.rmtree(target)
        os.rename(self.root / name, target)

    def _swap_in(self, build: Path, name: str, *, replacing: bool) -> None:
        """Move a finished ``build`` folder to ``root/name``, parking the folder it replaces."""
        if replacing and (self.root / name).exists():
            self._park(name)  # a crash right here is undone by _recover (the manifest still lists it)
        os.rename(build, self.root / name)
        self._empty_trash_item(name)

    def _empty_trash(self) -> None:
        shutil.rmtree(self.root / TRASH_DIR, ignore_errors=True)

    def _empty_trash_item(self, name: str) -> None:
        shutil.rmtree(self.root / TRASH_DIR / name, ignore_errors=True)

    def _rewrite_header(self, path: Path, *, token: str | None = None,
                        concept_meta: Mapping[str, Any] | None = None) -> None:
        data = path.read_bytes()
        header, _ = read_safetensors_header(data, EMBEDDING)
        old_token, family, old_meta = parse_header_metadata(header.get("__metadata__"), EMBEDDING)
        meta = header_metadata(token or old_token, family, old_meta if concept_meta is None else concept_meta)
        atomic_write_bytes(path, _with_header_metadata(data, meta, EMBEDDING))

    @staticmethod
    def _copy_images(files: Sequence[Path], dest: Path) -> list[dict[str, str]]:
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


def _is_pil(item: Any) -> bool:
    return hasattr(item, "save") and hasattr(item, "mode") and hasattr(item, "size")


def _png_bytes(image: Any) -> bytes:
    """PNG bytes of a PIL image, keeping its text chunks (prompt, seed, … written by the sampler)."""
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    for key, value in (getattr(image, "text", None) or image.info or {}).items():
        if isinstance(key, str) and isinstance(value, str):
            info.add_text(key, value)
    buf = io.BytesIO()
    image.save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


def resolve_library(path: str | os.PathLike[str] | None = None) -> Library:
    """Alias of :meth:`Library.resolve`."""
    return Library.resolve(path)
