"""Where a sync keeps what it decided per URL: on disk, read back in list order.

A sync of a list of millions must not hold an item per URL in memory (a ``SyncItem`` costs
about 725 B: 7 GB at 10M URLs). :class:`ItemSpool` writes each item as it is decided, and each
repeated line, into a private temporary SQLite file (``sqlite3.connect("")``: in the temporary
folder, ``TMPDIR``, deleted when closed; only its small page cache is in memory).
:class:`Spooled` is a read-only sequence over one table of it, in list order (line, then the
order of decision), that every report writer iterates: ``--json``, ``--csv``, ``--html`` and
``--verbose`` stream from it, and ``SyncSummary.items`` is one.
"""

from __future__ import annotations

import contextlib
import pickle
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from typing import Any, Generic, TypeVar, overload

__all__ = ["ItemSpool", "Spooled"]

T = TypeVar("T")

_BATCH = 500  # rows buffered before one executemany
_TABLES = ("items", "repeated")


class ItemSpool:
    """The items and repeated lines of one sync, in a temporary SQLite file.

    Each row is the pickled object (this process wrote it, this process reads it: any picklable
    path type, any string, lone surrogates too) with its line and arrival order as the key, and
    its ``decision`` and ``path`` for the queries the reports make (failures only; distinct
    paths).
    """

    def __init__(self) -> None:
        self._db: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._pending: dict[str, list[tuple[Any, ...]]] = {t: [] for t in _TABLES}
        self._counts: dict[tuple[str, str | None], int] = {}
        self._seq = 0

    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect("", check_same_thread=False)
            db.execute("PRAGMA journal_mode = OFF")
            db.execute("PRAGMA synchronous = OFF")
            for table in _TABLES:
                db.execute(
                    f"CREATE TABLE {table} (line INTEGER NOT NULL, seq INTEGER NOT NULL, "
                    "decision TEXT, path BLOB, data BLOB NOT NULL, PRIMARY KEY (line, seq)) "
                    "WITHOUT ROWID"
                )
            self._db = db
        return self._db

    def add(self, table: str, line: int, obj: object, *, decision: str | None = None,
            path: object = None) -> None:  # fmt: skip
        """Keep ``obj`` (an item or a repeated line) listed at ``line``."""
        key = None if path is None else str(path).encode("utf-8", "surrogatepass")
        self._seq += 1
        rows = self._pending[table]
        rows.append((line, self._seq, decision, key, pickle.dumps(obj, pickle.HIGHEST_PROTOCOL)))
        self._counts[table, None] = self._counts.get((table, None), 0) + 1
        if decision is not None:
            self._counts[table, decision] = self._counts.get((table, decision), 0) + 1
        if len(rows) >= _BATCH:
            self._flush(table)

    def _flush(self, table: str) -> None:
        rows = self._pending[table]
        if rows:
            with self._lock:
                db = self._conn()
                with db:
                    db.executemany(
                        f"INSERT INTO {table} (line, seq, decision, path, data) "
                        "VALUES (?, ?, ?, ?, ?)",
                        rows,
                    )
            rows.clear()

    def view(self, table: str, decision: str | None = None) -> Spooled[Any]:
        """The rows of ``table`` (those with ``decision`` only, if given) in list order."""
        self._flush(table)
        return Spooled(self, table, decision, self._counts.get((table, decision), 0))

    def decisions(self, table: str) -> list[str]:
        """The decisions the rows of ``table`` have, sorted."""
        return sorted({d for (t, d), n in self._counts.items() if t == table and d and n})

    def distinct_paths(self, table: str, decision: str | None = None) -> Iterator[str]:
        """Each path the rows name, once (sorted; the spool sorts on disk, not in memory)."""
        self._flush(table)
        if self._db is None:
            return
        where = "" if decision is None else "AND decision = ? "
        args: tuple[Any, ...] = () if decision is None else (decision,)
        with self._lock:
            cursor = self._db.execute(
                f"SELECT DISTINCT path FROM {table} WHERE path IS NOT NULL {where}ORDER BY path",
                args,
            )
        while True:
            with self._lock:
                rows = cursor.fetchmany(_BATCH)
            if not rows:
                return
            for (key,) in rows:
                yield bytes(key).decode("utf-8", "surrogatepass")

    def _rows(self, table: str, decision: str | None, offset: int, limit: int) -> Iterator[Any]:
        if self._db is None or limit <= 0:
            return
        where = "" if decision is None else "WHERE decision = ? "
        args: tuple[Any, ...] = () if decision is None else (decision,)
        with self._lock:
            cursor = self._db.execute(
                f"SELECT data FROM {table} {where}ORDER BY line, seq LIMIT ? OFFSET ?",
                (*args, limit, offset),
            )
        while True:
            with self._lock:
                rows = cursor.fetchmany(_BATCH)
            if not rows:
                return
            for (data,) in rows:
                yield pickle.loads(data)

    def close(self) -> None:
        """Delete the file (a view read afterwards is empty)."""
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    def __del__(self) -> None:
        self.close()


class Spooled(Sequence[T], Generic[T]):
    """A read-only sequence of what a sync spooled, read from disk each time it is iterated.

    It acts as the tuple it replaces: ``len``, iteration (list order), indexing and slicing
    (a slice is a tuple), and ``==`` with any sequence of the same elements (``== ()`` when
    empty). Indexing reads from disk: iterate rather than index in a loop.
    """

    def __init__(self, spool: ItemSpool | None, table: str, decision: str | None,
                 length: int) -> None:  # fmt: skip
        self._spool = spool
        self._table = table
        self._decision = decision
        self._len = length

    @classmethod
    def empty(cls) -> Spooled[T]:
        return cls(None, "items", None, 0)

    def where(self, decision: str) -> Spooled[T]:
        """Only the rows with ``decision`` (the items of a sync: ``"failed"``)."""
        if self._spool is None:
            return Spooled.empty()
        return self._spool.view(self._table, decision)

    def decisions(self) -> list[str]:
        """The decisions the rows have, sorted (without reading them)."""
        if self._spool is None:
            return []
        if self._decision is not None:
            return [self._decision] if self._len else []
        return self._spool.decisions(self._table)

    def distinct_paths(self) -> Iterator[str]:
        """Each path the rows name, once, as a string (sorted)."""
        if self._spool is None:
            return iter(())
        return self._spool.distinct_paths(self._table, self._decision)

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[T]:
        if self._spool is None:
            return iter(())
        return self._spool._rows(self._table, self._decision, 0, self._len)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[T, ...]: ...
    def __getitem__(self, index: int | slice) -> T | tuple[T, ...]:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._len)
            if step != 1:
                return tuple(self[start:stop])[::step]
            if self._spool is None or stop <= start:
                return ()
            return tuple(self._spool._rows(self._table, self._decision, start, stop - start))
        if index < 0:
            index += self._len
        if not 0 <= index < self._len or self._spool is None:
            raise IndexError("index out of range")
        item: T = next(self._spool._rows(self._table, self._decision, index, 1))
        return item

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == self._len and all(a == b for a, b in zip(self, other, strict=False))

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<{self._len} spooled {self._table}>"
