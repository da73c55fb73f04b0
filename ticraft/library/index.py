"""The library's SQLite index: one row per concept, full-text search, problems, a write journal.

The concept folders are the source of truth; this index is a cache of their ``meta.json`` that makes
listing, lookup and search cost the same with 10 or 10,000 concepts. It lives in
``<root>/.index/library.sqlite`` (a sub-folder, so that SQLite's ``-wal``/``-shm`` files never
touch the library folder's own mtime, which is how out-of-band changes are noticed).

* WAL mode: one writer at a time (writers also hold the library's file lock), readers never blocked.
* ``PRAGMA user_version`` is the schema version; :data:`MIGRATIONS` bring older files up to date.
* ``concepts_fts`` (FTS5, trigram tokenizer) finds any substring of token, tags, notes, initializer,
  source and family, case-insensitively; queries shorter than 3 characters fall back to ``instr``.
* ``journal`` lists the folders a writer is about to change; a writer that dies leaves them there,
  and the next process re-reads exactly those folders.
* ``state`` keeps the library folder's mtime as of the last indexed change and a ``generation``
  counter that every change bumps (caches of vectors compare it).

Nothing here touches concept folders: :mod:`ticraft.library.store` decides what to write.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from typing import Any, Iterable, Sequence

from ticraft.library._common import LibraryError
from ticraft.library.entry import Entry
from ticraft.library.naming import natural_key, token_key

INDEX_DIR = ".index"
INDEX_FILE = "library.sqlite"
#: Version of the index schema this code reads and writes (``PRAGMA user_version``).
INDEX_SCHEMA = 1

_V1 = """
CREATE TABLE concepts (
    id INTEGER PRIMARY KEY,
    folder TEXT NOT NULL UNIQUE,
    token TEXT NOT NULL,
    tkey TEXT NOT NULL UNIQUE,          -- token_key(token): identity ignores brackets and case
    sort_key TEXT NOT NULL,             -- natural_key(token): <c9> before <c10>
    family TEXT,
    num_vectors INTEGER NOT NULL,
    dims TEXT NOT NULL,                 -- JSON {encoder key: width}, any keys (sd1, sdxl, t5, ...)
    tags TEXT NOT NULL,                 -- JSON list, spelling kept
    tag_keys TEXT NOT NULL,             -- ' tag1 tag2 ' casefolded (tags hold no spaces): exact tag filter
    steps INTEGER, created TEXT, updated TEXT, sha256 TEXT, initializer TEXT, source TEXT,
    method TEXT, notes TEXT,
    meta_mtime_ns INTEGER, meta_size INTEGER, meta_ino INTEGER  -- meta.json as indexed: stale if it differs
);
CREATE INDEX concepts_sort ON concepts (sort_key, token);
CREATE INDEX concepts_sha ON concepts (sha256);
CREATE VIRTUAL TABLE concepts_fts USING fts5 (
    token, tags, notes, initializer, source, family,
    content='concepts', content_rowid='id', tokenize='trigram'
);
CREATE TRIGGER concepts_ai AFTER INSERT ON concepts BEGIN
    INSERT INTO concepts_fts (rowid, token, tags, notes, initializer, source, family)
    VALUES (new.id, new.token, new.tag_keys, new.notes, new.initializer, new.source, new.family);
    UPDATE state SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER concepts_ad AFTER DELETE ON concepts BEGIN
    INSERT INTO concepts_fts (concepts_fts, rowid, token, tags, notes, initializer, source, family)
    VALUES ('delete', old.id, old.token, old.tag_keys, old.notes, old.initializer, old.source, old.family);
    UPDATE state SET value = value + 1 WHERE key = 'generation';
END;
CREATE TRIGGER concepts_au AFTER UPDATE ON concepts BEGIN
    INSERT INTO concepts_fts (concepts_fts, rowid, token, tags, notes, initializer, source, family)
    VALUES ('delete', old.id, old.token, old.tag_keys, old.notes, old.initializer, old.source, old.family);
    INSERT INTO concepts_fts (rowid, token, tags, notes, initializer, source, family)
    VALUES (new.id, new.token, new.tag_keys, new.notes, new.initializer, new.source, new.family);
    UPDATE state SET value = value + 1 WHERE key = 'generation';
END;
CREATE TABLE problems (folder TEXT PRIMARY KEY, message TEXT NOT NULL);
CREATE TABLE journal (folder TEXT PRIMARY KEY);
CREATE TABLE state (key TEXT PRIMARY KEY, value);
INSERT INTO state (key, value) VALUES ('generation', 0), ('root_mtime_ns', NULL);
"""

#: ``MIGRATIONS[v]`` turns a schema ``v - 1`` file into schema ``v`` (0 is an empty file).
MIGRATIONS: dict[int, str] = {1: _V1}

_COLUMNS = (
    "folder",
    "token",
    "tkey",
    "sort_key",
    "family",
    "num_vectors",
    "dims",
    "tags",
    "tag_keys",
    "steps",
    "created",
    "updated",
    "sha256",
    "initializer",
    "source",
    "method",
    "notes",
    "meta_mtime_ns",
    "meta_size",
    "meta_ino",
)
_SELECT = (
    "SELECT folder, token, family, num_vectors, dims, tags, steps, created, sha256, initializer, source, "
    "updated, method, notes FROM concepts"
)


_SELECT_STATS = _SELECT.replace(" FROM concepts", ", meta_mtime_ns, meta_size, meta_ino FROM concepts")


class NewerIndex(LibraryError):
    """The index was written by a newer ticraft: read the folders instead, refuse changes."""


def index_path(root: Path) -> Path:
    """Where the index of the library at ``root`` lives."""
    return root / INDEX_DIR / INDEX_FILE


def connect(path: Path | str, *, create: bool) -> sqlite3.Connection:
    """Open (or, with ``create``, create) an index and bring it to :data:`INDEX_SCHEMA`.

    Raises :class:`NewerIndex` for a file from a newer ticraft and :class:`sqlite3.DatabaseError`
    for a file that is not an index (the caller rebuilds it from the folders).
    """
    if str(path) != ":memory:":
        path = Path(path)
        if create:
            path.parent.mkdir(exist_ok=True)
        elif not path.is_file():
            raise FileNotFoundError(str(path))
    # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE) so a writer never upgrades a
    # read lock half-way; check_same_thread=False: the TUI reads from worker threads (one at a time).
    conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA busy_timeout = 30000")
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version > INDEX_SCHEMA:
            raise NewerIndex(
                f"the index {path} has schema {version}, newer than this ticraft understands "
                f"({INDEX_SCHEMA}); upgrade ticraft to change this library"
            )
        if str(path) != ":memory:" and conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
            conn.execute("PRAGMA journal_mode = WAL")  # persistent: set once per file
        conn.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a power cut loses at most the last commit
        if version < INDEX_SCHEMA:
            migrate(conn, version)
    except BaseException:
        conn.close()
        raise
    return conn


def migrate(conn: sqlite3.Connection, version: int) -> None:
    """Apply every migration after ``version`` in one transaction."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        current = conn.execute("PRAGMA user_version").fetchone()[0]  # another process may have done it
        for v in range(max(version, current) + 1, INDEX_SCHEMA + 1):
            for stmt in _statements(MIGRATIONS[v]):
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {v}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """Split a schema script into statements (``executescript`` would commit our transaction)."""
    out, buf = [], ""
    for line in script.splitlines(keepends=True):
        buf += line.split("--")[0].rstrip() + "\n" if "--" in line else line
        if sqlite3.complete_statement(buf):
            out.append(buf.strip())
            buf = ""
    return [s for s in out if s]


# ---------------------------------------------------------------------------------------------- rows
def entry_row(entry: Entry, meta_stat: os.stat_result | None) -> tuple[Any, ...]:
    """The ``concepts`` row of ``entry`` (``meta_stat``: the stat of its meta.json when indexed)."""
    return (
        entry.folder.name,
        entry.token,
        token_key(entry.token),
        natural_key(entry.token),
        entry.family,
        entry.num_vectors,
        json.dumps(entry.dims),
        json.dumps(list(entry.tags), ensure_ascii=False),
        " " + " ".join(t.casefold() for t in entry.tags) + " ",
        entry.steps,
        entry.created,
        entry.updated,
        entry.sha256,
        entry.initializer,
        entry.source,
        entry.method,
        entry.notes,
        *((meta_stat.st_mtime_ns, meta_stat.st_size, meta_stat.st_ino) if meta_stat else (None, None, None)),
    )


def row_entry(row: Sequence[Any], root: Path) -> Entry:
    """The :class:`Entry` of a row selected with ``_SELECT``."""
    return Entry(
        token=row[1],
        family=row[2],
        num_vectors=row[3],
        dims=json.loads(row[4]),
        tags=tuple(json.loads(row[5])),
        steps=row[6],
        created=row[7] or "",
        folder=root / row[0],
        sha256=row[8] or "",
        initializer=row[9],
        source=row[10],
        updated=row[11],
        method=row[12],
        notes=row[13],
    )


def upsert(conn: sqlite3.Connection, entry: Entry, meta_stat: os.stat_result | None) -> None:
    """Insert or replace the row of ``entry``'s folder (inside the caller's transaction).

    A different folder holding the same token loses its row (the caller decides which folder wins
    and records the loser under ``problems``).
    """
    row = entry_row(entry, meta_stat)
    conn.execute("DELETE FROM concepts WHERE tkey = ? AND folder != ?", (row[2], row[0]))
    sets = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[1:])
    conn.execute(
        f"INSERT INTO concepts ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "
        f"ON CONFLICT (folder) DO UPDATE SET {sets}",
        row,
    )
    conn.execute("DELETE FROM problems WHERE folder = ?", (row[0],))


def delete(conn: sqlite3.Connection, folder: str) -> None:
    """Forget ``folder`` (its row and any problem recorded for it)."""
    conn.execute("DELETE FROM concepts WHERE folder = ?", (folder,))
    conn.execute("DELETE FROM problems WHERE folder = ?", (folder,))


def set_problem(conn: sqlite3.Connection, folder: str, message: str) -> None:
    """Record that ``folder`` could not be indexed (its row, if any, is dropped)."""
    conn.execute("DELETE FROM concepts WHERE folder = ?", (folder,))
    conn.execute("INSERT OR REPLACE INTO problems (folder, message) VALUES (?, ?)", (folder, message))


# ---------------------------------------------------------------------------------------------- queries
def _where(text: str | None, tag: str | None, family: str | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    args: list[Any] = []
    if text:
        needle = text.casefold()
        if len(needle) >= 3:  # the trigram tokenizer needs 3 characters; a quoted phrase = a substring
            clauses.append("id IN (SELECT rowid FROM concepts_fts WHERE concepts_fts MATCH ?)")
            args.append('"' + needle.replace('"', '""') + '"')
        else:
            cols = ("token", "tag_keys", "notes", "initializer", "source", "family")
            clauses.append("(" + " OR ".join(f"instr(lower(coalesce({c}, '')), ?) > 0" for c in cols) + ")")
            args += [needle] * len(cols)
    if tag:
        clauses.append("instr(tag_keys, ?) > 0")
        args.append(f" {tag.strip().casefold()} ")
    if family:
        clauses.append("lower(coalesce(family, '')) = ?")
        args.append(family.casefold())
    return (" WHERE " + " AND ".join(clauses)) if clauses else "", args


def count(conn: sqlite3.Connection, text: str | None = None, tag: str | None = None, family: str | None = None) -> int:
    """Number of rows matching the filters."""
    where, args = _where(text, tag, family)
    return int(conn.execute(f"SELECT count(*) FROM concepts{where}", args).fetchone()[0])


def page(conn: sqlite3.Connection, root: Path, **filters: Any) -> list[Entry]:
    """Rows matching the filters in natural token order, ``offset``/``limit`` applied by SQLite
    (the keywords of :func:`page_with_stats`)."""
    return [e for e, _ in page_with_stats(conn, root, **filters)]


def page_with_stats(
    conn: sqlite3.Connection,
    root: Path,
    *,
    offset: int = 0,
    limit: int | None = None,
    text: str | None = None,
    tag: str | None = None,
    family: str | None = None,
) -> list[tuple[Entry, tuple[int | None, int | None, int | None]]]:
    """:func:`page`, each entry with the ``(mtime_ns, size, ino)`` its meta.json had when it was indexed."""
    where, args = _where(text, tag, family)
    sql = f"{_SELECT_STATS}{where} ORDER BY sort_key, token LIMIT ? OFFSET ?"
    rows = conn.execute(sql, [*args, -1 if limit is None else max(0, int(limit)), max(0, int(offset))])
    return [(row_entry(r, root), (r[14], r[15], r[16])) for r in rows]


def find(conn: sqlite3.Connection, root: Path, token: str) -> Entry | None:
    """The entry ``token`` names (exact spelling first, then brackets/case ignored)."""
    row = (
        conn.execute(f"{_SELECT} WHERE token = ?", (token,)).fetchone()
        or conn.execute(f"{_SELECT} WHERE tkey = ?", (token_key(token),)).fetchone()
    )
    return None if row is None else row_entry(row, root)


def by_folder(conn: sqlite3.Connection, root: Path, folder: str) -> Entry | None:
    """The entry indexed for ``folder``, if any."""
    row = conn.execute(f"{_SELECT} WHERE folder = ?", (folder,)).fetchone()
    return None if row is None else row_entry(row, root)


def by_sha(conn: sqlite3.Connection, root: Path, sha256: str) -> Entry | None:
    """An entry whose vectors hash to ``sha256`` (duplicate detection on import)."""
    row = conn.execute(f"{_SELECT} WHERE sha256 = ? ORDER BY sort_key LIMIT 1", (sha256,)).fetchone()
    return None if row is None else row_entry(row, root)


def meta_stats(conn: sqlite3.Connection, folder: str) -> tuple[int | None, int | None, int | None] | None:
    """``(mtime_ns, size, ino)`` of meta.json as indexed for ``folder``."""
    row = conn.execute("SELECT meta_mtime_ns, meta_size, meta_ino FROM concepts WHERE folder = ?", (folder,)).fetchone()
    return None if row is None else (row[0], row[1], row[2])


def folders(conn: sqlite3.Connection) -> set[str]:
    """Every folder with a row or a recorded problem."""
    return {r[0] for r in conn.execute("SELECT folder FROM concepts UNION SELECT folder FROM problems")}


def tokens(conn: sqlite3.Connection) -> list[str]:
    """Every token, in natural order (for suggestions)."""
    return [r[0] for r in conn.execute("SELECT token FROM concepts ORDER BY sort_key, token")]


def problems(conn: sqlite3.Connection) -> list[str]:
    """``"folder: message"`` for every folder that could not be indexed, by folder name."""
    return [f"{f}: {m}" for f, m in conn.execute("SELECT folder, message FROM problems ORDER BY folder")]


# ---------------------------------------------------------------------------------------------- journal, state
def journal(conn: sqlite3.Connection) -> list[str]:
    """Folders a writer announced and did not finish (a live writer's, or a dead one's)."""
    return [r[0] for r in conn.execute("SELECT folder FROM journal ORDER BY folder")]


def announce(conn: sqlite3.Connection, names: Iterable[str]) -> None:
    """Record (and commit) that ``names`` are about to change, before touching them."""
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT OR IGNORE INTO journal (folder) VALUES (?)", [(n,) for n in names])
    conn.execute("COMMIT")


def get_state(conn: sqlite3.Connection, key: str) -> Any:
    """A value of the ``state`` table (``generation``, ``root_mtime_ns``)."""
    row = conn.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
    return None if row is None else row[0]


def set_state(conn: sqlite3.Connection, key: str, value: Any) -> None:
    """Set a ``state`` value (inside the caller's transaction)."""
    conn.execute("INSERT OR REPLACE INTO state (key, value) VALUES (?, ?)", (key, value))
