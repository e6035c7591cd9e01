"""File names as the file system has them, kept losslessly in the index.

A Linux file name is a string of bytes, not of characters: ``caf\\xe9.jpg`` (Latin-1 from an
old camera or a zip file) is a valid name that is not UTF-8. Python hands such a name over as a
``str`` whose undecodable bytes are lone surrogates (``os.fsdecode``, *surrogateescape*), and
every ``os`` function takes it back unchanged — but SQLite text must be UTF-8, so binding it
fails ("surrogates not allowed").

The index keeps a name that is valid UTF-8 as TEXT, as always, and any other as a BLOB of its
exact bytes; reading gives back the very ``str`` Python had. Old indexes stay valid (their names
are all TEXT), lookups by name match either kind, and nothing is lost or replaced. On a
terminal such names are shown escaped (``caf\\xe9.jpg``, :mod:`samepix.terminal`); in JSON as
``\\udce9`` escapes, which ``json.loads`` + ``os.fsencode`` turn back into the bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["NameConnection", "from_db", "to_db"]


def to_db(value: str) -> str | bytes:
    """``value`` as SQLite can store it: itself when it is valid UTF-8, else its bytes."""
    if value.isascii():
        return value
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-8", "surrogateescape")
    return value


def from_db(value: str | bytes) -> str:
    """The inverse of :func:`to_db` (a TEXT value passes through)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "surrogateescape")
    return value


def _adapt(parameters: Any) -> Any:
    if isinstance(parameters, Mapping):
        return {k: to_db(v) if type(v) is str else v for k, v in parameters.items()}
    return tuple(to_db(v) if type(v) is str else v for v in parameters)


class NameConnection(sqlite3.Connection):
    """A connection whose ``execute``/``executemany`` bind any str parameter through
    :func:`to_db`, so no caller can fail on a name that is not UTF-8 (use as
    ``sqlite3.connect(..., factory=NameConnection)``). Values read back need :func:`from_db`
    where a name (or a text quoting one) may be a BLOB."""

    def execute(self, sql: str, parameters: Any = (), /) -> sqlite3.Cursor:
        return super().execute(sql, _adapt(parameters))

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> sqlite3.Cursor:
        return super().executemany(sql, (_adapt(p) for p in parameters))
