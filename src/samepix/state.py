"""What samepix remembers between runs about URLs: an embedded SQLite state file.

Per URL: the HTTP validators (ETag, Last-Modified), the size, SHA-256 and content type of the
body last downloaded. Per comparison: the result, keyed by the SHA-256 of both sides, the policy
and the samepix version, so a stored result is reused only when nothing that decides it changed.

The file is SQLite in WAL mode; every write is one transaction, so a crash (even SIGKILL) in the
middle of a write leaves the previous state intact. A file that is not a samepix state file or is
corrupted gives a :class:`~samepix.errors.StateError` naming the file and the way out.

Library use writes no state unless asked (``Fetcher(state=...)``); the CLI keeps its state in
the user's cache directory (:meth:`FetchState.default_path`), ``--state PATH`` moves it and
``--no-cache`` skips it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import __version__
from .errors import SamepixError, StateError, WriteFailed

__all__ = ["FetchState", "UrlRecord", "result_key"]

SCHEMA_VERSION = 1
CONFIRM_BATCH = 256  # 304 confirmations written per transaction (see FetchState.confirm)
_PRELOAD_CHUNK = 500  # URLs per query of FetchState.preload (SQLite allows 32,766 parameters)
# PRAGMA application_id: tells a samepix state file from any other SQLite database ("SPXS").
_APPLICATION_ID = 0x53505853

_SCHEMA = """
CREATE TABLE IF NOT EXISTS urls (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    content_type TEXT,
    final_url TEXT,
    fetched_at REAL NOT NULL,
    checked_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS results (
    key TEXT PRIMARY KEY,
    result TEXT NOT NULL,
    saved_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS results_saved_at ON results (saved_at);
"""


@dataclass(frozen=True)
class UrlRecord:
    """What was known about a URL after its last full download.

    ``fetched_at`` is when the body was last downloaded, ``checked_at`` when the server last
    confirmed it (a download or a 304), both as Unix times.
    """

    url: str
    etag: str | None
    last_modified: str | None
    size: int
    sha256: str
    content_type: str | None = None
    final_url: str | None = None
    fetched_at: float = 0.0
    checked_at: float = 0.0

    @property
    def has_validators(self) -> bool:
        """True when a conditional request can be made (an ETag or a Last-Modified date)."""
        return bool(self.etag or self.last_modified)

    def conditional_headers(self) -> dict[str, str]:
        """``If-None-Match`` / ``If-Modified-Since`` for a revalidating request."""
        headers: dict[str, str] = {}
        if self.etag:
            headers["If-None-Match"] = self.etag
        if self.last_modified:
            headers["If-Modified-Since"] = self.last_modified
        return headers


def result_key(sha256_a: str, sha256_b: str, settings: Mapping[str, Any]) -> str:
    """The key of a stored comparison: both contents, the settings that decide, the version.

    ``settings`` is the policy (``Policy.as_dict()``); the samepix version is part of the key
    because a new version may measure or decide differently.
    """
    text = json.dumps(
        {"a": sha256_a, "b": sha256_b, "settings": dict(settings), "version": __version__},
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(text.encode()).hexdigest()


class FetchState:
    """The state file: validators per URL and stored comparison results.

    Opening is lazy: nothing touches the disk until the first read or write, so a command that
    never fetches a URL never creates the file. Safe to share between threads (one connection
    behind a lock).

    Parameters
    ----------
    path
        The SQLite file; its folder is created when needed.
    max_results
        Stored comparison results kept; the oldest are dropped beyond this.
    """

    def __init__(self, path: str | os.PathLike[str], *, max_results: int = 100_000) -> None:
        self.path = Path(path)
        self.max_results = max_results
        self._lock = threading.RLock()
        self._con: sqlite3.Connection | None = None
        self._writes = 0
        # Records read ahead by preload() (None: known to be absent), kept current by every
        # write, so re-checking a long list costs a few queries, not one per URL.
        self._known: dict[str, UrlRecord | None] = {}
        # 304 confirmations not written yet: url -> (etag, last_modified, checked_at).
        self._confirms: dict[str, tuple[str | None, str | None, float]] = {}

    def __repr__(self) -> str:
        return f"<FetchState {str(self.path)!r}>"

    @staticmethod
    def default_path() -> Path:
        """``fetch-state.sqlite3`` in the user's cache directory (per platform conventions)."""
        import platformdirs

        return platformdirs.user_cache_path("samepix", appauthor=False) / "fetch-state.sqlite3"

    # -- opening and closing ------------------------------------------------------------------

    def __enter__(self) -> FetchState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Write pending confirmations and close the connection (a later call opens it again)."""
        with self._lock:
            try:
                self.flush()
            finally:
                self._known.clear()
                if self._con is not None:
                    self._con.close()
                    self._con = None

    def _connection(self) -> sqlite3.Connection:
        if self._con is not None:
            return self._con
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(
                f"{self.path}: cannot create the folder for the fetch state file "
                f"({exc.strerror or exc}); use --state PATH or --no-cache"
            ) from exc
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per write.
            con = sqlite3.connect(
                self.path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise self._translate(exc) from exc
        try:
            self._prepare(con)
        except sqlite3.Error as exc:
            con.close()
            raise self._translate(exc) from exc
        except StateError:
            con.close()
            raise
        self._con = con
        return con

    def _prepare(self, con: sqlite3.Connection) -> None:
        # WAL: readers never block the writer and a killed writer leaves the last committed state
        # readable. synchronous=NORMAL: a commit survives a crash of samepix (not necessarily a
        # power cut), which is right for a cache that can always be rebuilt.
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=NORMAL")
        app_id = con.execute("PRAGMA application_id").fetchone()[0]
        version = con.execute("PRAGMA user_version").fetchone()[0]
        tables = con.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if app_id == 0 and tables == 0:  # a new (or empty) file: make it ours
            with self._transaction(con):
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        con.execute(statement)
                con.execute(f"PRAGMA application_id={_APPLICATION_ID}")
                con.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            return
        if app_id != _APPLICATION_ID:
            raise StateError(
                f"{self.path}: not a samepix fetch state file (another SQLite database); "
                "use --state PATH to pick another file, or --no-cache"
            )
        if version > SCHEMA_VERSION:
            raise StateError(
                f"{self.path}: written by a newer samepix (state schema {version}, this one "
                f"reads {SCHEMA_VERSION}); upgrade samepix, or run with --no-cache"
            )
        # Touch both tables now, so a damaged file is reported at open, not halfway through.
        con.execute("SELECT count(*) FROM urls WHERE rowid < 0").fetchone()
        con.execute("SELECT count(*) FROM results WHERE rowid < 0").fetchone()

    @contextlib.contextmanager
    def _transaction(self, con: sqlite3.Connection) -> Iterator[None]:
        con.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        if con.in_transaction:
            con.execute("COMMIT")

    @contextlib.contextmanager
    def _use(self, *, write: bool = False) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, with SQLite errors translated (in a transaction
        when writing)."""
        with self._lock:
            con = self._connection()
            try:
                if write:
                    with self._transaction(con):
                        yield con
                else:
                    yield con
            except sqlite3.Error as exc:
                raise self._translate(exc) from exc

    def _translate(self, exc: sqlite3.Error) -> SamepixError:
        from . import sqlite_errors

        text = str(exc)
        what = sqlite_errors.kind(exc)
        if what == "locked":
            return StateError(
                f"{self.path}: the fetch state file is locked by another process ({text}); "
                "try again, or run with --no-cache"
            )
        if what in ("full", "io"):
            # Not a corruption: the write was refused and rolled back, the file is as it was.
            why = sqlite_errors.why_not_written(self.path, exc)
            return WriteFailed(
                f"{self.path}: cannot write the fetch state file ({why}); nothing in it was "
                "lost: free some space, then run again (or use --state PATH or --no-cache)"
            )
        if what in ("readonly", "cantopen"):
            why = sqlite_errors.why_not_written(self.path, exc)
            return WriteFailed(
                f"{self.path}: cannot open the fetch state file for writing ({why}); "
                "use --state PATH or --no-cache"
            )
        return StateError(
            f"{self.path}: the fetch state file is corrupted ({text}); run with --no-cache, "
            "or delete the file to start afresh"
        )

    # -- URLs ---------------------------------------------------------------------------------

    def get(self, url: str) -> UrlRecord | None:
        """What is known about ``url`` from its last download, or None."""
        with self._lock:
            if url in self._known:
                return self._known[url]
            if url in self._confirms:
                self.flush()
            with self._use() as con:
                row = con.execute(
                    "SELECT url, etag, last_modified, size, sha256, content_type, final_url, "
                    "fetched_at, checked_at FROM urls WHERE url = ?",
                    (url,),
                ).fetchone()
        return None if row is None else UrlRecord(*row)

    def preload(self, urls: Iterable[str]) -> None:
        """Read the records of ``urls`` now, a few hundred per query, and keep them in memory:
        each :meth:`get` of them then needs no query (what re-checking a long list waits on).

        Every write of this object keeps them current; another process's writes are not seen
        until :meth:`close`.
        """
        wanted = [u for u in dict.fromkeys(urls) if u not in self._known]
        with self._lock:
            self.flush()
            for start in range(0, len(wanted), _PRELOAD_CHUNK):
                chunk = wanted[start : start + _PRELOAD_CHUNK]
                found: dict[str, UrlRecord | None] = dict.fromkeys(chunk)
                with self._use() as con:
                    rows = con.execute(
                        "SELECT url, etag, last_modified, size, sha256, content_type, final_url, "
                        "fetched_at, checked_at FROM urls WHERE url IN "
                        f"({', '.join('?' * len(chunk))})",
                        chunk,
                    ).fetchall()
                for row in rows:
                    found[row[0]] = UrlRecord(*row)
                self._known.update(found)

    def forget_preloaded(self) -> None:
        """Drop what :meth:`preload` read (a sync moving on to its next window of URLs)."""
        with self._lock:
            self._known.clear()

    def remember(self, record: UrlRecord) -> None:
        """Store what a full download of ``record.url`` showed (replacing what was known)."""
        self.remember_many((record,))

    def remember_many(self, records: Iterable[UrlRecord]) -> None:
        """Store many records in one transaction: all of them are saved, or none.

        ``records`` may be a generator; it is consumed inside the transaction, so a crash while
        it runs leaves none of its records behind.
        """
        rows = (
            (
                r.url,
                r.etag,
                r.last_modified,
                r.size,
                r.sha256,
                r.content_type,
                r.final_url,
                r.fetched_at,
                r.checked_at,
            )
            for r in records
        )
        saved: list[UrlRecord] = []

        def kept(rows: Iterable[tuple[Any, ...]]) -> Iterator[tuple[Any, ...]]:
            for row in rows:
                saved.append(UrlRecord(*row))
                yield row

        with self._lock:
            self.flush()  # an older confirmation must not land over a newer record
            with self._use(write=True) as con:
                con.executemany(
                    "INSERT OR REPLACE INTO urls (url, etag, last_modified, size, sha256, "
                    "content_type, final_url, fetched_at, checked_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    kept(rows),
                )
            for rec in saved:  # committed: what get() answers from now on
                if rec.url in self._known:
                    self._known[rec.url] = rec

    def confirm(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        checked_at: float | None = None,
    ) -> None:
        """Record that the server answered 304 for ``url`` (updating validators it sent).

        Written in batches of :data:`CONFIRM_BATCH` (and at :meth:`flush`, :meth:`close` and
        before any other write), one transaction each: re-checking a long list does not commit
        once per URL. :meth:`get` sees a confirmation at once. A crash loses at most the last
        batch of confirmations: "when the server last said unchanged", and at worst a new ETag
        sent with a 304, so the next run asks with the old one, and downloads again if the
        server no longer matches it. Records of downloads are never held back.
        """
        when = time.time() if checked_at is None else checked_at
        with self._lock:
            previous = self._confirms.get(url)
            if previous is not None:  # two 304s before a flush: the later one's news wins
                etag = etag or previous[0]
                last_modified = last_modified or previous[1]
            self._confirms[url] = (etag, last_modified, when)
            rec = self._known.get(url)
            if rec is not None:
                self._known[url] = dataclasses.replace(
                    rec,
                    etag=etag or rec.etag,
                    last_modified=last_modified or rec.last_modified,
                    checked_at=when,
                )
            if len(self._confirms) >= CONFIRM_BATCH:
                self.flush()

    def flush(self) -> None:
        """Write the confirmations :meth:`confirm` holds, in one transaction."""
        with self._lock:
            if not self._confirms:
                return
            pending = [(e, lm, when, url) for url, (e, lm, when) in self._confirms.items()]
            with self._use(write=True) as con:
                con.executemany(
                    "UPDATE urls SET etag = coalesce(?, etag), "
                    "last_modified = coalesce(?, last_modified), checked_at = ? WHERE url = ?",
                    pending,
                )
            self._confirms.clear()

    def forget(self, url: str) -> None:
        """Drop what is known about ``url`` (its next fetch downloads it again)."""
        with self._lock:
            self.flush()
            with self._use(write=True) as con:
                con.execute("DELETE FROM urls WHERE url = ?", (url,))
            if url in self._known:
                self._known[url] = None

    def __len__(self) -> int:
        self.flush()
        with self._use() as con:
            count: int = con.execute("SELECT count(*) FROM urls").fetchone()[0]
        return count

    # -- comparison results -------------------------------------------------------------------

    def result(self, key: str) -> dict[str, Any] | None:
        """A stored comparison (as saved by :meth:`save_result`), or None."""
        with self._use() as con:
            row = con.execute("SELECT result FROM results WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        try:
            data = json.loads(row[0])
        except ValueError:
            return None  # unreadable entry: recomputed and overwritten
        return data if isinstance(data, dict) else None

    def save_result(self, key: str, result: Mapping[str, Any]) -> None:
        """Store a comparison result under ``key`` (see :func:`result_key`)."""
        text = json.dumps(dict(result), ensure_ascii=False, allow_nan=False)
        with self._use(write=True) as con:
            con.execute(
                "INSERT OR REPLACE INTO results (key, result, saved_at) VALUES (?, ?, ?)",
                (key, text, time.time()),
            )
            self._writes += 1
            if self._writes % 256 == 0:  # counting rows is a table scan: prune now and then
                self._prune(con)

    def _prune(self, con: sqlite3.Connection) -> None:
        excess = con.execute("SELECT count(*) FROM results").fetchone()[0] - self.max_results
        if excess > 0:
            con.execute(
                "DELETE FROM results WHERE key IN "
                "(SELECT key FROM results ORDER BY saved_at LIMIT ?)",
                (excess,),
            )
