"""Keeping the SQLite index in step with the concept folders: locking, recovery, reconciling, repair.

When the index is current — its journal is empty and the library folder's mtime is the one
recorded after the last indexed change — a read costs one SQLite query. Otherwise (a writer died,
a folder was added or removed by hand, the index is missing, old or unreadable) the first process
that can take the library's lock without waiting settles it: half-built folders are cleared,
parked ones restored or deleted, and exactly the folders that may have changed are re-read. A
reader that cannot take the lock (a live writer holds it) reads the last committed index, which is
consistent. A library whose index cannot be written (read-only, or made by a newer ticraft) is read
into an in-memory index from its folders instead.

The repair report, :func:`suggest` and :func:`check_concepts` live in :mod:`ticraft.library.report`
(re-exported here).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any, Iterable, Iterator

from ticraft.library import index as ix
from ticraft.library._common import LOCK, LOCK_TIMEOUT_S, META, TMP_DIR, TRASH_DIR, LibraryError
from ticraft.library.entry import Entry
from ticraft.library.folders import concept_dirs, load_folder, settle_trash, sweep_temp_files
from ticraft.library.naming import slugify, token_key
from ticraft.library.report import RepairReport, _describe, _manifest_records, check_concepts, suggest

__all__ = ["IndexKeeper", "RepairReport", "check_concepts", "suggest", "LOCK_TIMEOUT_S"]


def _stat_key(st: os.stat_result | None) -> tuple[int | None, int | None, int | None]:
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else (None, None, None)


class IndexKeeper:
    """The index-keeping half of :class:`~ticraft.library.Library` (no public API of its own)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock_obj: Any = None
        self._conn: sqlite3.Connection | None = None
        self._conn_ino: int | None = None
        self._mutex = threading.RLock()
        self._tls = threading.local()
        self._empty: sqlite3.Connection | None = None

    def close(self) -> None:
        """Close the index connection (reopened on the next use; the CLI's processes just exit)."""
        with self._mutex:
            for conn in (self._conn, self._empty):
                if conn is not None:
                    conn.close()
            self._conn = self._empty = None

    # ------------------------------------------------------------ connections
    def _open(self, *, create: bool) -> sqlite3.Connection:
        path = ix.index_path(self.root)
        try:
            ino: int | None = path.stat().st_ino
        except FileNotFoundError:
            ino = None
        if self._conn is not None and ino is not None and ino == self._conn_ino:
            return self._conn
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        conn = ix.connect(path, create=create)
        self._conn, self._conn_ino = conn, path.stat().st_ino
        return conn

    def _is_fresh(self, conn: sqlite3.Connection) -> bool:
        row = conn.execute(
            "SELECT (SELECT count(*) FROM journal), (SELECT value FROM state WHERE key = 'root_mtime_ns')"
        ).fetchone()
        return row[0] == 0 and row[1] == os.stat(self.root).st_mtime_ns

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """A connection to an index that reflects the folders (see the module docstring)."""
        with self._mutex:
            writing = getattr(self._tls, "writing", None)
            yield writing if writing is not None else self._read_conn()

    def _read_conn(self) -> sqlite3.Connection:
        if not self.root.is_dir():  # nothing written yet: an empty index (made once; it is never written to)
            if self._empty is None:
                self._empty = ix.connect(":memory:", create=True)
            return self._empty
        conn: sqlite3.Connection | None
        try:
            conn = self._open(create=False)
            if self._is_fresh(conn):
                return conn
        except (FileNotFoundError, sqlite3.DatabaseError):
            conn = None
        except ix.NewerIndex as exc:
            return self._memory_index(str(exc))
        try:
            with self._locked(timeout=0):
                return self._settle()
        except LibraryError:
            pass  # busy (a live writer: its last commit is consistent) or not writable
        return conn if conn is not None else self._memory_index(None)

    def _memory_index(self, problem: str | None) -> sqlite3.Connection:
        """An index of the folders built in memory (read-only libraries, newer or busy indexes)."""
        conn = ix.connect(":memory:", create=True)
        conn.execute("BEGIN")
        for name in sorted(concept_dirs(self.root)):
            self._reindex(conn, name, None)
        if problem:
            conn.execute(
                "INSERT OR REPLACE INTO problems VALUES (?, ?)",
                (ix.INDEX_DIR, f"{problem}; reading the concept folders instead, changes are refused"),
            )
        conn.execute("COMMIT")
        return conn

    # ------------------------------------------------------------ locking and writing
    @contextlib.contextmanager
    def _locked(self, *, create: bool = False, timeout: float | None = None) -> Iterator[None]:
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
            self._lock_obj = FileLock(str(self.root / LOCK))
        wait = _lock_timeout() if timeout is None else timeout
        try:
            self._lock_obj.acquire(timeout=wait)
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
    def _writing(self, *, create: bool = False) -> Iterator[sqlite3.Connection]:
        """Lock, settle what earlier writers left, yield the index; on success clear the journal and
        record the folder's mtime (after every file-system change of the operation)."""
        with self._mutex, self._locked(create=create):
            try:
                conn = self._settle()
            except ix.NewerIndex as exc:
                raise LibraryError(f"{exc}") from exc
            self._tls.writing = conn
            try:
                yield conn
                with contextlib.suppress(OSError):
                    (self.root / TMP_DIR).rmdir()
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("DELETE FROM journal")
                ix.set_state(conn, "root_mtime_ns", os.stat(self.root).st_mtime_ns)
                conn.execute("COMMIT")
            finally:
                self._tls.writing = None

    def _announce(self, conn: sqlite3.Connection, names: Iterable[str]) -> None:
        """Journal the folders about to change (committed before any of them is touched)."""
        ix.announce(conn, names)

    def _commit(
        self,
        conn: sqlite3.Connection,
        upserts: Iterable[tuple[Entry, os.stat_result | None]] = (),
        deletes: Iterable[str] = (),
    ) -> None:
        """Make an operation's index changes in one transaction (the operation's commit point)."""
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name in deletes:
                ix.delete(conn, name)
            for entry, st in upserts:
                ix.upsert(conn, entry, st)
            conn.execute("DELETE FROM journal")  # same transaction: an empty journal means "committed"
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------ settling
    def _settle(self) -> sqlite3.Connection:
        """Under the lock: an index that exists, has the current schema and reflects the folders."""
        try:
            conn = self._open(create=True)
        except sqlite3.DatabaseError:
            self._set_aside_index()
            conn = self._open(create=True)
        self._recover(conn)
        return conn

    def _set_aside_index(self) -> Path:
        """Move an unreadable index out of the way (kept for inspection) so a new one can be built."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        path = ix.index_path(self.root)
        aside = path.with_name(f"{path.name}.unreadable-{time.strftime('%Y%m%d-%H%M%S')}")
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        return aside

    def _recover(self, conn: sqlite3.Connection, *, full: bool = False) -> dict[str, Any]:
        """Clear half-built folders, settle parked ones, re-read the folders that may have changed."""
        done: dict[str, Any] = {"half_built": 0, "swept": 0}
        tmp = self.root / TMP_DIR
        if tmp.exists():
            done["half_built"] = sum(1 for _ in tmp.iterdir())
            shutil.rmtree(tmp, ignore_errors=True)
        # A journal left behind means its operation died before its commit (the commit clears it in the same
        # transaction): undo the operation, so that every one, a batch included, is all or nothing. A parked
        # folder is the committed version (put it back); a new folder the index never heard of goes.
        journaled = ix.journal(conn)
        known = ix.folders(conn) if journaled else set()
        rolled_back = []
        for name in journaled:
            parked, current = self.root / TRASH_DIR / name, self.root / name
            if parked.is_dir():
                if current.exists():
                    shutil.rmtree(current)
                os.rename(parked, current)
                rolled_back.append(name)
            elif name not in known and current.is_dir():
                shutil.rmtree(current)
                done["uncommitted"] = done.get("uncommitted", 0) + 1
        done["deleted"], done["restored"] = (
            settle_trash(self.root, ix.folders(conn)) if (self.root / TRASH_DIR).exists() else ([], [])
        )
        done["restored"] += rolled_back
        stored = ix.get_state(conn, "root_mtime_ns")
        names = set(journaled) | set(done["restored"])
        manifest: dict[str, dict[str, Any]] = {}
        if full or stored is None:
            names |= concept_dirs(self.root) | ix.folders(conn)
            manifest = _manifest_records(self.root) if stored is None else {}
            done["migrated"] = bool(manifest)
        elif stored != os.stat(self.root).st_mtime_ns:
            names |= concept_dirs(self.root) ^ {r[0] for r in conn.execute("SELECT folder FROM concepts")}
            names |= {r[0] for r in conn.execute("SELECT folder FROM problems")}
        conn.execute("BEGIN IMMEDIATE")
        try:
            for name in sorted(names):
                done["swept"] += sweep_temp_files(self.root / name)
                self._reindex(conn, name, manifest.get(name))
            conn.execute("DELETE FROM journal")
            ix.set_state(conn, "root_mtime_ns", os.stat(self.root).st_mtime_ns)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return done

    def _reindex(self, conn: sqlite3.Connection, name: str, manifest_rec: dict[str, Any] | None) -> None:
        """Re-read folder ``name`` into the index (row, problem, or nothing)."""
        folder = self.root / name
        if name.startswith(".") or not folder.is_dir():
            ix.delete(conn, name)
            return
        try:
            loaded = load_folder(folder)
        except LibraryError as exc:
            ix.set_problem(conn, name, str(exc))
            return
        if loaded is None:
            ix.delete(conn, name)
            return
        entry, st = loaded
        if st is None:  # meta.json lost: keep the tags and dates the index (or the old manifest) knew
            old = ix.by_folder(conn, self.root, name)
            if old is None and manifest_rec is not None:
                with contextlib.suppress(LibraryError):
                    old = Entry.from_record(manifest_rec, folder)
            if old is not None and old.token == entry.token:
                entry = dataclasses.replace(entry, tags=old.tags, created=old.created, updated=old.updated)
        twin_row = conn.execute(
            "SELECT folder, token FROM concepts WHERE tkey = ? AND folder != ?", (token_key(entry.token), name)
        ).fetchone()
        if twin_row is not None:
            twin_folder, twin_token = twin_row
            this_wins = name == slugify(entry.token) and twin_folder != slugify(twin_token)
            if not this_wins:
                ix.set_problem(conn, name, f"token {entry.token} is also in folder {twin_folder}; skipped this copy")
                return
            ix.set_problem(conn, twin_folder, f"token {twin_token} is also in folder {name}; skipped this copy")
        ix.upsert(conn, entry, st)

    # ------------------------------------------------------------ freshness of one entry
    def _refresh_many(self, entries: list[Entry]) -> list[tuple[Entry, str | None]]:
        """:meth:`_refresh` of many entries, their recorded stats fetched in one query per 500."""
        recorded: dict[str, tuple[Any, Any, Any]] = {}
        names = [e.folder.name for e in entries]
        with self._reading() as conn:
            for i in range(0, len(names), 500):
                chunk = names[i : i + 500]
                sql = "SELECT folder, meta_mtime_ns, meta_size, meta_ino FROM concepts WHERE folder IN (%s)"
                for f, a, b, c in conn.execute(sql % ",".join("?" * len(chunk)), chunk):
                    recorded[f] = (a, b, c)
        return [self._refresh(e, recorded.get(e.folder.name)) for e in entries]

    def _refresh(self, e: Entry, recorded: tuple[Any, Any, Any] | None | bool = False) -> tuple[Entry, str | None]:
        """``e`` as its folder has it now: a hand-edited meta.json wins over the index row.

        ``recorded``: the meta.json stat the index holds for ``e`` (looked up when not given).
        """
        try:
            st: os.stat_result | None = (e.folder / META).stat()
        except OSError:
            st = None
        if recorded is False:
            with self._reading() as conn:
                recorded = ix.meta_stats(conn, e.folder.name)
        if st is None or recorded is None or recorded is True or _stat_key(st) == recorded:
            return e, None  # unchanged, or meta.json lost (the index keeps what it knew)
        try:
            loaded = load_folder(e.folder)
        except LibraryError as exc:
            return e, str(exc)
        return (loaded[0], None) if loaded is not None else (e, None)

    def _refresh_rows(self, rows: list[tuple[Entry, tuple[int | None, int | None, int | None]]]) -> list[Entry]:
        """Entries of a page, re-read where meta.json changed since indexing; the index is updated when the
        lock is free (a stale row would otherwise hide from tag/text filters until ``repair``)."""
        out, stale = [], []
        for e, recorded in rows:
            try:
                st = os.stat(e.folder / META)
            except OSError:
                out.append(e)  # meta.json lost: the index keeps what it knew
                continue
            if _stat_key(st) == recorded:
                out.append(e)
                continue
            try:
                loaded = load_folder(e.folder)
            except LibraryError:
                loaded = None  # broken: check() reports it
            if loaded is None:
                out.append(e)
                continue
            out.append(loaded[0])
            stale.append(loaded)
        if stale and getattr(self._tls, "writing", None) is None:
            with contextlib.suppress(LibraryError, sqlite3.Error), self._mutex, self._locked(timeout=0):
                conn = self._open(create=False)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for entry, _ in stale:  # re-read as recovery does (a hand-edited token may clash)
                        self._reindex(conn, entry.folder.name, None)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        return out

    def _fresh(self, e: Entry) -> Entry:
        return self._refresh(e)[0]

    def _stale_problem(self, e: Entry) -> str | None:
        return self._refresh(e)[1]

    # ------------------------------------------------------------ repair
    def _repair(self) -> RepairReport:
        """Rebuild the index from every folder and say what changed (lock held throughout)."""
        report = RepairReport()
        with self._mutex, self._locked():
            try:
                conn = self._open(create=True)
            except sqlite3.DatabaseError:
                aside = self._set_aside_index()
                report.found.append(f"the index was unreadable (moved aside to {aside.name})")
                conn = self._open(create=True)
            except ix.NewerIndex as exc:
                raise LibraryError(str(exc)) from exc
            before = {
                r[0]: r[1:] for r in conn.execute("SELECT folder, token, tags, sha256, dims, num_vectors FROM concepts")
            }
            was_new = ix.get_state(conn, "root_mtime_ns") is None
            done = self._recover(conn, full=True)
            for item in self.root.glob(".*.tmp"):
                with contextlib.suppress(OSError):
                    item.unlink()
                    done["swept"] += 1
            after = {
                r[0]: r[1:] for r in conn.execute("SELECT folder, token, tags, sha256, dims, num_vectors FROM concepts")
            }
            report.concepts = len(after)
            report.problems = ix.problems(conn)
        _describe(report, done, before, after, was_new)
        return report


def _lock_timeout() -> float:
    """The lock wait, read at call time so tests can shorten it (``sync.LOCK_TIMEOUT_S``)."""
    return float(globals()["LOCK_TIMEOUT_S"])
