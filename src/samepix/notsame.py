"""Pairs the user says are not the same picture ("not the same to me"), kept in the index.

``samepix dupes DIR --not-same A B`` records the pair; ``dupes`` then never joins those two files
directly and ``find`` leaves one out when the other is the query. Pairs are keyed by content
(both SHA-256s, in order), so they survive renames and moves, and a re-encode is a new file with
its own say. Table ``not_same`` in the index database, created on first use.
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from .errors import UsageError

if TYPE_CHECKING:
    from .index import Index, IndexEntry

__all__ = ["not_same_pairs", "pair_key", "record_not_same"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS not_same (
    a_sha256 TEXT NOT NULL,     -- the smaller of the two content hashes
    b_sha256 TEXT NOT NULL,
    a_path TEXT NOT NULL,       -- the paths when recorded, for people reading the table
    b_path TEXT NOT NULL,
    recorded_at REAL NOT NULL,
    PRIMARY KEY (a_sha256, b_sha256)
)
"""


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The unordered pair of content hashes as a tuple."""
    return (a, b) if a <= b else (b, a)


def record_not_same(index: Index, a: IndexEntry, b: IndexEntry) -> None:
    """Record that ``a`` and ``b`` (indexed files) are not the same picture."""
    if a.sha256 == b.sha256:
        raise UsageError(f"{a.path} and {b.path} hold identical bytes: they cannot be told apart")
    first, second = (a, b) if a.sha256 <= b.sha256 else (b, a)
    with index.transaction() as conn:
        conn.execute(_SCHEMA)
        conn.execute(
            "INSERT OR REPLACE INTO not_same VALUES (?, ?, ?, ?, ?)",
            (first.sha256, second.sha256, first.path, second.path, time.time()),
        )


def not_same_pairs(index: Index) -> set[tuple[str, str]]:
    """Every recorded pair, as :func:`pair_key` tuples (empty when none was ever recorded)."""
    try:
        rows = index.conn.execute("SELECT a_sha256, b_sha256 FROM not_same").fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return set()
        raise index.corrupt(exc) from exc
    except sqlite3.DatabaseError as exc:
        raise index.corrupt(exc) from exc
    return {(str(a), str(b)) for a, b in rows}
