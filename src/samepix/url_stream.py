"""A URL list read a window at a time: a 10M-line list is never held whole.

The lines are read from the file as they are needed (:func:`read_lines`), parsed a window of
lines at a time (:func:`url_windows`), and a URL listed again is recognised across windows by
a table of the URLs seen so far that lives in memory for the first window and in a temporary
SQLite file beyond it (:class:`SeenUrls`): memory stays that of one window, whatever the length
of the list.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import sqlite3
import sys
from collections.abc import Iterable, Iterator
from typing import IO

from .errors import SourceError

__all__ = ["WINDOW_LINES", "SeenUrls", "read_lines", "url_windows"]

#: Lines parsed, and URLs synced, per window: enough that a window's fixed costs (a few
#: queries, starting the downloads) vanish, few enough that a window's rows are small.
WINDOW_LINES = 10_000

_QUERY_CHUNK = 500  # URLs per query (SQLite allows 32,766 parameters)


def read_lines(source: str) -> Iterator[str]:
    """The lines of a URL list file, or of standard input for ``-``, read as they are needed.

    Lines end at ``\\n``, ``\\r\\n`` or ``\\r`` only (as :func:`samepix.sync.split_lines`
    splits them); bytes that are not UTF-8 become U+FFFD, and such a URL is reported as
    malformed. The file is opened now, so a missing one fails before any work.
    """
    try:
        raw: IO[bytes] = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    except OSError as exc:
        raise SourceError(f"{source}: cannot read the URL list ({exc.strerror or exc})") from exc
    return _lines(source, raw, owned=source != "-")


def _lines(source: str, raw: IO[bytes], *, owned: bool) -> Iterator[str]:
    # newline="": \n, \r and \r\n end a line (not U+2028 or a form feed), kept on the line.
    text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
    try:
        for line in text:
            yield line.rstrip("\r\n")
    except OSError as exc:
        raise SourceError(f"{source}: cannot read the URL list ({exc.strerror or exc})") from exc
    finally:
        if owned:
            text.close()
        else:
            text.detach()  # standard input stays open


class SeenUrls:
    """The first line of each URL seen so far: a dict while it is small, then a temporary
    SQLite file (deleted when closed), so a list of millions costs disk, not memory."""

    def __init__(self, in_memory: int | None = None) -> None:
        self.in_memory = WINDOW_LINES if in_memory is None else in_memory
        self._mem: dict[str, int] = {}
        self._db: sqlite3.Connection | None = None

    def first_lines(self, urls: Iterable[str]) -> dict[str, int]:
        """The first line of each of ``urls`` seen before (those not seen are left out)."""
        if self._db is None:
            return {u: self._mem[u] for u in urls if u in self._mem}
        found: dict[str, int] = {}
        wanted = list(urls)
        for start in range(0, len(wanted), _QUERY_CHUNK):
            chunk = wanted[start : start + _QUERY_CHUNK]
            rows = self._db.execute(
                f"SELECT url, line FROM seen WHERE url IN ({', '.join('?' * len(chunk))})",
                chunk,
            )
            found.update(rows)
        return found

    def add(self, firsts: Iterable[tuple[str, int]]) -> None:
        """Remember URLs (not seen before) and their first line."""
        if self._db is None:
            self._mem.update(firsts)
            if len(self._mem) > self.in_memory:
                self._spill()
            return
        with self._db:
            self._db.executemany("INSERT INTO seen (url, line) VALUES (?, ?)", firsts)

    def _spill(self) -> None:
        # "": a private temporary database on disk, deleted on close; pages beyond its small
        # cache go to the file, not to memory.
        db = sqlite3.connect("")
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute("CREATE TABLE seen (url TEXT PRIMARY KEY, line INTEGER NOT NULL) WITHOUT ROWID")
        with db:
            db.executemany("INSERT INTO seen (url, line) VALUES (?, ?)", self._mem.items())
        self._mem = {}
        self._db = db

    def close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None
        self._mem = {}


def url_windows(lines: Iterable[str], window: int | None = None) -> Iterator[list[tuple[int, str]]]:
    """The lines of a URL list as ``(line number, text)``, ``window`` lines (by default
    :data:`WINDOW_LINES`) at a time."""
    window = window or WINDOW_LINES
    numbered = enumerate(lines, 1)
    while chunk := list(itertools.islice(numbered, window)):
        yield chunk
