"""The :class:`Library`: lookups through the SQLite index, changes through atomic folder swaps."""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from ticraft.library import index as ix
from ticraft.library._common import (
    ENV_VAR,
    IMAGES,
    MANIFEST,
    SAMPLES,
    LibraryError,
)
from ticraft.library.canonical import read_canonical
from ticraft.library.changes import LibraryChanges
from ticraft.library.entry import Entry
from ticraft.library.folders import (
    files_in,
    read_meta,
)
from ticraft.library.health import check_embedding
from ticraft.library.interop import write_file
from ticraft.library.sync import RepairReport

if TYPE_CHECKING:  # pragma: no cover - typing only; torch is imported lazily
    from ticraft.concept import Concept
    from ticraft.library.vectors import ConceptMatrix


def default_library_path() -> Path:
    """The per-user library folder (platformdirs' user data dir, ``…/ticraft/library``)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("ticraft", appauthor=False)) / "library"


def configured_library_path() -> Path | None:
    """The ``library`` setting of the user's config file (``$TICRAFT_CONFIG``), or ``None`` when it is not set.

    Raises:
        LibraryError: the setting holds something other than a folder path (the file was edited by hand).
    """
    from ticraft.user_config import config_path, get_config_value

    value = get_config_value("library")
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise LibraryError(f"the library setting in {config_path()} is {value!r}, not a folder path; "
                           "fix it with `ticraft config set library PATH`")
    return Path(value.strip()).expanduser()


class Library(LibraryChanges):
    """A folder of concepts with a SQLite index. Creating the object touches nothing; the folder
    appears on first write, the index on first use.

    Reads (:meth:`count`, :meth:`page`, :meth:`entry`, :meth:`search`) cost the same with 10 or
    10,000 concepts; :meth:`entries` and :meth:`listing` return everything. One ``Library`` may be
    shared by threads (the TUI's workers): index access is serialised inside.

    >>> import tempfile
    >>> lib = Library(Path(tempfile.mkdtemp()) / "new")
    >>> lib.entries(), lib.count(), lib.root.exists()
    ([], 0, False)
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        super().__init__(Path(root).expanduser().absolute())
        if self.root.exists() and not self.root.is_dir():
            raise LibraryError(f"{self.root} is a file, not a library folder")
        self._matrix_cache: dict[Any, Any] = {}
        self._matrix_mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"Library({str(self.root)!r})"

    # ------------------------------------------------------------ location
    @classmethod
    def resolve(cls, path: str | os.PathLike[str] | None = None) -> "Library":
        """The library the user meant: ``path`` (``--library``) > ``$TICRAFT_LIBRARY`` > the ``library`` setting
        (``ticraft config set library PATH``) > ``./embeddings`` (if it holds a library: an index or a manifest)
        > the user data dir (see :func:`default_library_path`).

        Each is opened as given, like ``--library``: a folder that does not exist yet is an empty library that
        appears on first write."""
        if path is not None and str(path):
            return cls(path)
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            return cls(env)
        configured = configured_library_path()
        if configured is not None:
            return cls(configured)
        local = Path.cwd() / "embeddings"
        if (local / MANIFEST).is_file() or ix.index_path(local).is_file():
            return cls(local)
        return cls(default_library_path())

    # ------------------------------------------------------------ reading (index only: O(log n) or O(page))
    def count(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> int:
        """How many entries match the filters (all of them without filters); see :meth:`search`.

        >>> Library("/nonexistent/lib").count(tag="style")
        0
        """
        with self._reading() as conn:
            return ix.count(conn, text, tag, family)

    def page(
        self,
        offset: int = 0,
        limit: int | None = 100,
        *,
        text: str | None = None,
        tag: str | None = None,
        family: str | None = None,
    ) -> list[Entry]:
        """Entries ``offset`` … ``offset + limit - 1`` in natural token order (``<c9>`` before ``<c10>``),
        filtered like :meth:`search`; ``limit=None`` returns the rest. Reads the index, and stats each returned
        entry's meta.json: one edited by hand since it was indexed is read again (and the index updated when no
        writer is busy), so what a page shows is what the folders hold.

        A list view of a huge library pairs this with :meth:`count`:
        ``lib.page(0, 50)`` is the first screenful, ``lib.count()`` the scrollbar's length.
        """
        with self._reading() as conn:
            rows = ix.page_with_stats(conn, self.root, offset=offset, limit=limit, text=text, tag=tag, family=family)
        return self._refresh_rows(rows)

    def entries(self) -> list[Entry]:
        """Every indexed entry in natural token order (no file is opened; see :meth:`check`)."""
        return self.page(0, None)

    def search(self, text: str | None = None, tag: str | None = None, family: str | None = None) -> list[Entry]:
        """Entries matching every given filter: ``text`` (case-insensitive substring of token, tags, notes,
        initializer, source or family; FTS5 trigram search), ``tag`` (exact, case-insensitive), ``family``."""
        return self.page(0, None, text=text, tag=tag, family=family)

    def index_problems(self) -> list[str]:
        """Folders that could not be indexed (broken meta.json, missing embedding, duplicate token), from the
        index alone: no entry is opened. :meth:`problems` adds the health check of every entry."""
        with self._reading() as conn:
            return ix.problems(conn)

    def problems(self) -> list[str]:
        """Folders that could not be indexed, and entries whose embedding fails the cheap health check
        (:meth:`check`; reads one header per entry). Empty when healthy."""
        return self.listing()[1]

    def listing(self) -> tuple[list[Entry], list[str]]:
        """``(healthy entries, problems)``: broken entries are reported and skipped, never fatal.

        Opens every entry's embedding header (one small read each); :meth:`page` does not.
        """
        with self._reading() as conn:
            entries, problems = ix.page(conn, self.root), ix.problems(conn)
        flagged = self.check(entries)
        problems += [f"{e.folder.name}: {flagged[e.token]}" for e in entries if e.token in flagged]
        return [e for e in entries if e.token not in flagged], problems

    def check(self, entries: Iterable[Entry]) -> dict[str, str]:
        """The cheap health check of ``entries`` (header + size, and meta.json against the index):
        token → one sentence for each entry that is broken. See :mod:`ticraft.library.health`."""
        out = {}
        entries = list(entries)
        for e, (fresh, problem) in zip(entries, self._refresh_many(entries), strict=True):
            problem = problem or check_embedding(fresh)
            if problem:
                out[e.token] = problem
        return out

    def __contains__(self, token: object) -> bool:
        return isinstance(token, str) and self.has(token)

    def has(self, token: str) -> bool:
        """Whether ``token`` (``"<tok>"`` or ``"tok"``, any case) names an entry."""
        with self._reading() as conn:
            return ix.find(conn, self.root, token) is not None

    def entry(self, token: str) -> Entry:
        """The :class:`Entry` for ``token``; an unknown token raises LibraryError with suggestions.

        The folder's meta.json is stat'ed: a hand-edited one wins over the index.
        """
        with self._reading() as conn:
            return self._fresh(self._require(conn, token))

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
        entry = self.entry(token)
        try:
            return read_canonical(entry.embedding)
        except LibraryError as exc:
            raise LibraryError(f"entry {entry.token} is broken: {exc}") from exc

    def images(self, token: str) -> list[Path]:
        """Training images stored with ``token``."""
        return files_in(self.folder(token) / IMAGES)

    def samples(self, token: str) -> list[Path]:
        """Generated samples stored with ``token``."""
        return files_in(self.folder(token) / SAMPLES)

    def meta(self, token: str) -> dict[str, Any]:
        """The full ``meta.json`` of ``token`` (rebuilt from the embedding header if it was lost)."""
        return read_meta(self.folder(token))

    def find_duplicate(self, sha256: str) -> Entry | None:
        """An entry whose vectors have this content hash (:meth:`Concept.sha256`), if any."""
        with self._reading() as conn:
            return ix.by_sha(conn, self.root, sha256)

    def generation(self) -> int:
        """A number that changes whenever any entry changes (for caches of library contents)."""
        with self._reading() as conn:
            return int(ix.get_state(conn, "generation") or 0)

    def matrix(
        self, *, dims: dict[str, int] | None = None, family: str | None = None, tag: str | None = None
    ) -> "ConceptMatrix":
        """Mean vectors of every entry with these ``dims`` (and ``family``/``tag``) as one matrix per encoder,
        read once and cached (in memory and under ``.index/``) until the index changes.
        See :class:`ticraft.library.vectors.ConceptMatrix`."""
        from ticraft.library.vectors import library_matrix

        return library_matrix(self, dims=dims, family=family, tag=tag)

    def verify(self, progress: Any = None) -> list[str]:
        """Read every vector of every entry, check its sha256 and finiteness: one line per problem.

        ``progress(done, total)`` is called after each entry. Slow by design (every byte is read).
        """
        from ticraft.library.health import verify_embedding

        with self._reading() as conn:
            entries, problems = ix.page(conn, self.root), ix.problems(conn)
        for i, e in enumerate(entries, 1):
            fresh, problem = self._refresh(e)
            problem = problem or verify_embedding(fresh)
            if problem:
                problems.append(f"{e.folder.name}: {problem}")
            if progress is not None:
                progress(i, len(entries))
        return problems

    def export(
        self, token: str, path: str | os.PathLike[str], layout: str = "diffusers", *, overwrite: bool = False
    ) -> list[Path]:
        """Write ``token`` to ``path`` in ``layout`` (``diffusers``, ``a1111`` or ``kohya``).

        A folder ``path`` gets ``<slug>.safetensors`` / ``<slug>.pt``. Returns the files written
        (SDXL in diffusers layout gives two).
        """
        return write_file(self.get(token), path, layout, overwrite=overwrite)

    def repair(self) -> list[str]:
        """Finish or undo interrupted writes and rebuild the index from the folders; returns the problems
        that remain (broken entries are left in place for a person, never deleted). See :meth:`repair_report`."""
        return self.repair_report().problems

    def repair_report(self) -> RepairReport:
        """Like :meth:`repair`, saying what was found and what was done (see :class:`RepairReport`)."""
        report = self._repair()
        with self._reading() as conn:
            entries = ix.page(conn, self.root)
        flagged = self.check(entries)
        report.problems += [f"{e.folder.name}: {flagged[e.token]}" for e in entries if e.token in flagged]
        return report


def resolve_library(path: str | os.PathLike[str] | None = None) -> Library:
    """Alias of :meth:`Library.resolve`."""
    return Library.resolve(path)


__all__ = ["Library", "RepairReport", "configured_library_path", "default_library_path", "resolve_library"]
