"""The one exception tree of samepix.

Every error samepix raises on purpose is a :class:`SamepixError`; its message is one line that
names the file or URL and the reason, so the CLI can print ``error: <message>`` and exit 2.
Third-party exceptions (OSError, PIL, httpx, sqlite3) are translated at the module boundary that
calls them, with ``raise ... from exc`` so ``--debug`` still shows the cause.
"""

from __future__ import annotations

__all__ = [
    "DecodeError",
    "FetchError",
    "IndexCorrupt",
    "LimitExceeded",
    "SamepixError",
    "SourceError",
    "StateError",
    "SyncError",
    "SyncLocked",
    "UsageError",
    "WriteFailed",
]


class SamepixError(Exception):
    """Base class: a problem samepix explains in one line (CLI exit status 2)."""


class UsageError(SamepixError):
    """An option or argument value that makes no sense (a threshold out of range, ...)."""


class SourceError(SamepixError):
    """A source that cannot be read: missing file, directory, permission denied, bad URL."""


class FetchError(SourceError):
    """An HTTP(S) download failed: status, timeout, connection reset, too many redirects.

    ``attempts`` holds one line per failed try (retries included), oldest first.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str = "",
        status: int | None = None,
        attempts: tuple[str, ...] = (),
    ) -> None:
        super().__init__(message)
        self.url = url
        self.status = status
        self.attempts = attempts


class DecodeError(SamepixError):
    """Bytes that are not an image samepix can read: empty, HTML, truncated, unknown format."""


class LimitExceeded(SamepixError):
    """A configured safety limit was hit: too many pixels, too many bytes, too many redirects."""


class StateError(SamepixError):
    """The fetch state file (validators cache) is unreadable or corrupted."""


class IndexCorrupt(SamepixError):
    """A folder index database is unreadable or corrupted (``samepix index --rebuild``)."""


class SyncError(SamepixError):
    """A sync cannot go on: the folder cannot be written (disk full, permissions, ...).

    Nothing partial is left behind; running the sync again continues where it stopped.
    """


class SyncLocked(SyncError):
    """Another ``samepix sync`` holds the folder's lock (``DIR/.samepix/sync.lock``)."""


class WriteFailed(SamepixError):
    """A file or database could not be written: the disk is full, a file-size limit was hit, or
    the folder is read-only. Nothing written before is lost; what was being written was not
    kept. Not a corruption: free some space (or pick a writable place) and run again."""
