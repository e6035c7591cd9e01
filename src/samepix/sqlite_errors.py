"""What a failed SQLite call means to the user: a full disk, a read-only place, a lock — or,
only when SQLite says so, a damaged file.

SQLite reports a full disk as ``SQLITE_FULL`` ("database or disk is full") but a write cut
short by a file-size limit (``ulimit -f``, ``RLIMIT_FSIZE``: ``EFBIG``) as a plain
``SQLITE_IOERR_WRITE`` ("disk I/O error"); neither is a corruption, and telling the user to
rebuild the index would throw away what it holds (sync's records among it). :func:`kind` sorts
errors by SQLite's own result code (``sqlite3.Error.sqlite_errorcode``, Python 3.11+; the
message text before that), and :func:`why_not_written` names the cause the way a file write
would (``No space left on device``, ``File too large``), checked against the file system.
"""

from __future__ import annotations

import errno
import os
import shutil
import sqlite3
from pathlib import Path

__all__ = ["kind", "why_not_written", "why_read_only"]

# Primary result codes (https://sqlite.org/rescode.html).
_CODES = {
    3: "readonly",  # SQLITE_PERM
    5: "locked",  # SQLITE_BUSY
    6: "locked",  # SQLITE_LOCKED
    8: "readonly",  # SQLITE_READONLY
    10: "io",  # SQLITE_IOERR
    11: "corrupt",  # SQLITE_CORRUPT
    13: "full",  # SQLITE_FULL
    14: "cantopen",  # SQLITE_CANTOPEN
    26: "corrupt",  # SQLITE_NOTADB
}
_TEXTS = (
    ("disk is full", "full"),
    ("disk i/o error", "io"),
    ("readonly", "readonly"),
    ("read-only", "readonly"),
    ("unable to open", "cantopen"),
    ("locked", "locked"),
    ("busy", "locked"),
)


def kind(exc: BaseException) -> str:
    """One of ``full``, ``io``, ``readonly``, ``cantopen``, ``locked``, ``corrupt`` or
    ``other`` for a ``sqlite3.Error``."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _CODES:
        return _CODES[code & 0xFF]
    text = str(exc).lower()
    for needle, name in _TEXTS:
        if needle in text:
            return name
    return "corrupt" if isinstance(exc, sqlite3.DatabaseError) else "other"


def why_not_written(path: Path, exc: BaseException) -> str:
    """Why ``path`` (a database) could not be written, as an ``OSError`` would put it."""
    what = kind(exc)
    folder = path.parent
    if what in ("readonly", "cantopen"):
        if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
            return why_read_only(path)
        return f"cannot open it for writing ({exc})"
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if what == "full" or (free is not None and free < 1024 * 1024):
        return os.strerror(errno.ENOSPC)
    limit = _file_size_limit()
    if limit is not None:
        return f"{os.strerror(errno.EFBIG)} (the file-size limit, ulimit -f, is {limit:,} bytes)"
    return f"disk I/O error ({exc})"


def why_read_only(path: Path) -> str:
    """Why ``path`` (or a file beside it) cannot be written, as ``open()`` would say it."""
    folder = path.parent
    try:
        on_read_only_fs = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):
        on_read_only_fs = False
    if on_read_only_fs:
        return f"{os.strerror(errno.EROFS)}: {folder}"
    if os.access(path, os.W_OK) and os.access(folder, os.W_OK):
        return "opened read-only"
    which = folder if not os.access(folder, os.W_OK) else path
    return f"{os.strerror(errno.EACCES)}: {which} is not writable"


def _file_size_limit() -> int | None:
    try:
        import resource
    except ImportError:  # not on POSIX
        return None
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    return None if soft == resource.RLIM_INFINITY else int(soft)
