"""``sync``: download into a folder only the pictures it does not have yet.

For each URL of a list, the cheapest rung that can decide does:

1. **unchanged** — a conditional GET (``If-None-Match`` / ``If-Modified-Since``, validators kept
   in ``DIR/.samepix/fetch-state.sqlite3``) answered ``304``, and the file that stands for the
   URL since the last sync still holds the bytes it held then: nothing is downloaded;
2. **same bytes** — the body's SHA-256 is already in the folder's index;
3. **same picture** — :meth:`Library.find <samepix.library.Library.find>` confirms a file as
   ``identical`` or ``same`` (a re-encode, a resize, another format);
4. otherwise the picture is **downloaded**: written to a temporary file in the folder, fsynced,
   linked into place under a sanitised name (never over another file), and recorded in the index
   with the URL's sync record in one transaction.

What stands for each URL (the file saved, or the local file that made it a skip) is kept in the
index database (table ``sync_urls``), so the next run can trust a ``304``. Before a file is put
in place, its URL's record is written as *incomplete*; a run killed at any moment leaves either a
complete file with its record (the next run sees it, finishes the record and asks with
validators: ``304``, no body) or no file at all (temporary ``.part`` files are removed by the next
run). An exclusive lock (``DIR/.samepix/sync.lock``, ``flock``) keeps a second sync out of the
folder with a one-line error naming the holder's pid.

Downloads run on an asyncio loop in a background thread (a global and a per-host limit); the
decisions, which decode and compare, run in the calling thread as downloads arrive, through a
bounded queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import queue
import re
import sqlite3
import sys
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from email.message import Message
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any, Protocol, Union
from urllib.parse import unquote, urlsplit

from .errors import SamepixError, SourceError, SyncError, SyncLocked, UsageError, WriteFailed
from .executor import close_in_children
from .index import STATE_DIR, IndexEntry, Progress
from .names import from_db
from .sync_items import ItemSpool, Spooled
from .terminal import json_text

if TYPE_CHECKING:
    from .compare import ImageSource
    from .executor import Executor
    from .fetch import Download, Fetcher, Retry
    from .index import Descriptor, Index, IndexSummary, ProgressCallback
    from .limits import Limits
    from .policy import Policy
    from .results import FindResult
    from .state import FetchState
    from .sync_shards import Described, ShardedDownloads
    from .url_stream import SeenUrls

__all__ = [
    "DECISIONS",
    "RepeatedUrl",
    "SyncFolder",
    "SyncInterrupted",
    "SyncItem",
    "SyncLog",
    "SyncSummary",
    "UrlList",
    "file_name",
    "parse_url_list",
    "run_sync",
    "sanitize_stem",
]

#: Every decision a sync makes about a URL, in the order summaries list them.
DECISIONS = (
    "downloaded",
    "replaced",
    "skipped-unchanged",
    "skipped-bytes",
    "skipped-same-picture",
    "failed",
)

#: Where the log goes: a path (appended to) or an open text stream.
SyncLog = Union[str, "os.PathLike[str]", IO[str]]


class SyncFolder(Protocol):
    """What a sync needs of the folder it syncs into; :class:`samepix.library.Library` is one.

    Named here rather than imported, so that ``sync`` sits below ``library`` (whose
    :meth:`~samepix.library.Library.sync` calls :func:`run_sync`) and the modules import one way.
    """

    root: Path
    db_path: Path
    limits: Limits
    policy: Policy
    progress: ProgressCallback | None

    @property
    def index(self) -> Index: ...

    @property
    def executor(self) -> Executor | None: ...

    def with_db(self, db: Path) -> SyncFolder: ...

    def close(self) -> None: ...

    def update(self) -> IndexSummary: ...

    def find(
        self,
        source: ImageSource,
        *,
        update: bool = ...,
        first: bool = ...,
        fetcher: Fetcher | None = ...,
        also_turned_and_cropped: bool = ...,
    ) -> FindResult: ...


LOCK_NAME = "sync.lock"
FETCH_STATE_NAME = "fetch-state.sqlite3"
REPLACED_DIR = "replaced"

# A temporary file of samepix.atomic: "." + target name + "." + 8 random characters + ".part".
_PART = re.compile(r"^\..+\.[a-z0-9_]{8}\.part$")


# ---------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True)
class SyncItem:
    """What a sync decided for one URL.

    Parameters
    ----------
    url : str
        The URL as listed.
    decision : str
        One of :data:`DECISIONS`.
    reason : str
        One line: why (the verdict's reasons, the error, ...).
    path : pathlib.Path, optional
        The file that stands for the URL: the one saved, or the local file with the same bytes or
        picture. For a dry run, the file that would be written.
    verdict : str, optional
        ``identical``/``same`` for a same-picture skip or a replacement; ``similar`` when a new
        picture was saved next to a similar one.
    transferred : int
        Body bytes received for this URL (0 for a ``304``).
    line : int
        Line of the URL list (1-based; 0 when not known).
    kept : pathlib.Path, optional
        For ``replaced``: where the old file was kept.
    retryable : bool
        For ``failed``: whether running the sync again may help (False for a malformed URL).
    """

    url: str
    decision: str
    reason: str
    path: Path | None = None
    verdict: str | None = None
    transferred: int = 0
    line: int = 0
    kept: Path | None = None
    retryable: bool = True

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (one ``--log`` line): ``bytes`` is :attr:`transferred`."""
        out: dict[str, Any] = {
            "line": self.line,
            "url": self.url,
            "decision": self.decision,
            "reason": self.reason,
            "path": None if self.path is None else str(self.path),
            "verdict": self.verdict,
            "bytes": self.transferred,
        }
        if self.kept is not None:
            out["kept"] = str(self.kept)
        return out


@dataclass(frozen=True)
class RepeatedUrl:
    """A URL listed again: processed once, at ``first_line``."""

    line: int
    url: str
    first_line: int


@dataclass(frozen=True)
class SyncSummary:
    """What one sync did: an item per URL (list order), the repeated lines, the totals.

    ``items`` and ``repeated`` are sequences read from a temporary file on disk
    (:class:`samepix.sync_items.Spooled`: ``len``, iteration in list order, indexing, ``==``),
    so a list of millions holds no item per URL in memory; the file is deleted with the
    summary. A sync run with ``keep_items=False`` keeps only the failed URLs' items (what the
    text report lists); the totals (``totals``: (decision, count) pairs, and ``bytes_total``)
    count every URL.
    """

    root: Path
    items: Sequence[SyncItem]
    repeated: Sequence[RepeatedUrl] = ()
    dry_run: bool = False
    elapsed_s: float = 0.0
    totals: tuple[tuple[str, int], ...] | None = None
    bytes_total: int | None = None

    def count(self, decision: str) -> int:
        """How many URLs got ``decision``."""
        if self.totals is not None:
            return dict(self.totals).get(decision, 0)
        return sum(1 for item in self.items if item.decision == decision)

    @property
    def urls(self) -> int:
        """How many URLs were decided (every item, when all are kept)."""
        if self.totals is not None:
            return sum(n for _, n in self.totals)
        return len(self.items)

    @property
    def downloaded(self) -> int:
        return self.count("downloaded")

    @property
    def replaced(self) -> int:
        return self.count("replaced")

    @property
    def skipped_unchanged(self) -> int:
        return self.count("skipped-unchanged")

    @property
    def skipped_bytes(self) -> int:
        return self.count("skipped-bytes")

    @property
    def skipped_same_picture(self) -> int:
        return self.count("skipped-same-picture")

    @property
    def failed(self) -> int:
        return self.count("failed")

    @property
    def failures(self) -> Sequence[SyncItem]:
        """The failed URLs' items, in list order."""
        items = self.items
        if isinstance(items, Spooled):
            return items.where("failed")
        return tuple(item for item in items if item.decision == "failed")

    @property
    def ok(self) -> bool:
        """True when every URL was handled (none failed): the CLI exits 0."""
        return self.failed == 0

    @property
    def bytes_downloaded(self) -> int:
        if self.bytes_total is not None:
            return self.bytes_total
        return sum(item.transferred for item in self.items)

    def to_dict(self, *, lazy: bool = False) -> dict[str, Any]:
        """The JSON form (``--json``). ``lazy``: ``repeated`` and ``items`` are
        :class:`samepix.json_stream.LazyArray` (made as :func:`samepix.json_stream.write_json`
        writes them) instead of lists."""
        from .json_stream import LazyArray

        def array(values: Iterable[Any]) -> Any:
            return LazyArray(values) if lazy else list(values)

        return {
            "dir": str(self.root),
            "dry_run": self.dry_run,
            "urls": self.urls,
            **{decision.replace("-", "_"): self.count(decision) for decision in DECISIONS},
            "bytes_downloaded": self.bytes_downloaded,
            "repeated": array(
                {"line": r.line, "url": r.url, "first_line": r.first_line} for r in self.repeated
            ),
            "elapsed_s": round(self.elapsed_s, 3),
            "items": array(item.to_dict() for item in self.items),
        }


# ---------------------------------------------------------------------------------------------
# The URL list


@dataclass(frozen=True)
class UrlList:
    """A parsed URL list: the URLs to process (first occurrence, with its line), the malformed
    lines (line, text, reason) and the repeated ones."""

    urls: tuple[tuple[int, str], ...]
    malformed: tuple[tuple[int, str, str], ...] = ()
    repeated: tuple[RepeatedUrl, ...] = ()


#: The longest URL a list may hold: far above any real one (browsers stop near 2 MB, servers
#: near 8 KB), low enough that one line cannot fill the log and the terminal.
MAX_URL_CHARS = 16 * 1024

# A comment: "#" at the start of a line, or after white space (a URL holds no white space, so
# a "#" inside one is its fragment, kept as written).
_COMMENT = re.compile(r"(?:^|\s)#.*$", re.DOTALL)
# Lines end at \n, \r\n or \r only: not at U+2028, U+0085 or a form feed as str.splitlines()
# would have it, so line numbers are those of any editor.
_LINE_END = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """The lines of a URL list (a UTF-8 byte-order mark at its start is dropped)."""
    text = text.removeprefix("\ufeff")
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the newline ending the last line starts no new one
    return lines


def check_url(text: str) -> str | None:
    """Why ``text`` is not a URL sync can download, or None when it is one.

    The scheme is case-insensitive (``HTTP://`` is accepted, as it is by ``compare``); the rest
    is checked as the HTTP client will parse it, so a URL accepted here cannot fail later as
    invalid (see :func:`samepix.fetch.url_problem`).
    """
    if len(text) > MAX_URL_CHARS:
        return f"{len(text):,} characters, longer than the {MAX_URL_CHARS:,} allowed"
    # Printable ASCII without a space has neither (the per-character tests are most of the
    # parsing of a long list).
    if not (text.isascii() and text.isprintable() and " " not in text):
        if any(c.isspace() for c in text):
            return "contains white space"
        if any(unicodedata.category(c)[0] == "C" for c in text):
            return "contains control characters"
        if "\ufffd" in text:
            return "contains bytes that are not UTF-8"
    try:
        parts = urlsplit(text)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return f"not a valid URL ({exc})"
    if parts.scheme.lower() not in ("http", "https"):
        scheme = f"{parts.scheme}:" if parts.scheme else "no scheme"
        return f"not an http(s) URL ({scheme})"
    if not parts.hostname:
        return "no host"
    del port
    from .fetch import url_problem

    problem = url_problem(text)
    return None if problem is None else f"not a valid URL ({problem})"


def parse_url_list(lines: Iterable[str]) -> UrlList:
    """Parse URL lines: blank lines and ``#`` comments skipped, repeats and malformed URLs noted.

    A comment starts at a ``#`` that begins a line or follows white space, and runs to the end
    of the line (``URL  # a note`` is the URL); a ``#`` inside a URL is its fragment, kept as
    written. A byte-order mark at the start of the first line is skipped.
    """
    from .url_stream import SeenUrls

    seen = SeenUrls(in_memory=sys.maxsize)
    return parse_window(enumerate(lines, 1), seen)


def parse_window(numbered: Iterable[tuple[int, str]], seen: SeenUrls) -> UrlList:
    """:func:`parse_url_list` for a window of ``(line number, text)`` of a longer list: a URL
    in ``seen`` (an earlier window's) is a repeat; the window's new URLs are added to it."""
    valid: list[tuple[int, str]] = []
    malformed: list[tuple[int, str, str]] = []
    for number, raw in numbered:
        if number == 1:
            raw = raw.removeprefix("\ufeff")
        text = _COMMENT.sub("", raw).strip()
        if not text:
            continue
        why = check_url(text)
        if why is not None:
            malformed.append((number, text, why))
            continue
        valid.append((number, text))
    first = seen.first_lines({text for _, text in valid})
    urls: list[tuple[int, str]] = []
    repeated: list[RepeatedUrl] = []
    for number, text in valid:
        if text in first:
            repeated.append(RepeatedUrl(number, text, first[text]))
            continue
        first[text] = number
        urls.append((number, text))
    seen.add((text, number) for number, text in urls)
    return UrlList(tuple(urls), tuple(malformed), tuple(repeated))


# ---------------------------------------------------------------------------------------------
# File names

#: Extensions per sniffed format; the first is used unless the URL's own is another of them.
EXTENSIONS: dict[str, tuple[str, ...]] = {
    "JPEG": (".jpg", ".jpeg", ".jpe", ".jfif"),
    "PNG": (".png", ".apng"),
    "GIF": (".gif",),
    "WEBP": (".webp",),
    "BMP": (".bmp", ".dib"),
    "TIFF": (".tif", ".tiff"),
    "ICO": (".ico",),
    "AVIF": (".avif",),
    "HEIF": (".heic", ".heif"),
    "JPEG2000": (".jp2", ".j2k", ".jpf"),
    "PPM": (".ppm", ".pgm", ".pbm", ".pnm"),
    "QOI": (".qoi",),
}

# Names Windows reserves for devices, with any extension ("con.jpg" too).
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"COM{i}" for i in "123456789¹²³"}
    | {f"LPT{i}" for i in "123456789¹²³"}
)
_UNSAFE = re.compile(r'[<>:"/\\|?*]')
#: Longest stem in UTF-8 bytes: room for "-NNNN" and an extension within 255 bytes (ext4, NTFS).
MAX_STEM_BYTES = 120


def sanitize_stem(text: str) -> str:
    """A file-name stem safe on every common file system, from any text.

    Control and format characters and the characters Windows forbids become ``_``; white space
    runs become one space; leading dots and spaces go (no hidden files, no ``..``), as do trailing
    ones (Windows drops them); a device name (``CON``, ``NUL``, ``COM1``...) gets a ``_`` prefix;
    the result is cut to :data:`MAX_STEM_BYTES` bytes at a character boundary; empty becomes
    ``image``.
    """
    text = unicodedata.normalize("NFC", text)
    text = "".join("_" if unicodedata.category(c)[0] == "C" else c for c in text)
    text = _UNSAFE.sub("_", text)
    text = re.sub(r"\s+", " ", text)
    text = text.lstrip(". ").rstrip(". ")
    if text.split(".", 1)[0].strip().upper() in _RESERVED:
        text = f"_{text}"
    encoded = text.encode("utf-8")
    if len(encoded) > MAX_STEM_BYTES:
        text = encoded[:MAX_STEM_BYTES].decode("utf-8", errors="ignore").rstrip(". ")
    return text or "image"


def _disposition_name(header: str | None) -> str | None:
    if not header:
        return None
    message = Message()
    message["content-disposition"] = header
    try:
        name = message.get_filename()  # handles filename*=UTF-8''... (RFC 6266 / 2231)
    except (ValueError, LookupError):
        return None
    return name or None


def file_name(url: str, content_disposition: str | None, fmt: str | None) -> tuple[str, str]:
    """``(stem, extension)`` for a download: from ``Content-Disposition``'s filename, else the
    last segment of the URL path (the query is ignored), sanitised; the extension is the sniffed
    format's (the URL's own when it is one of that format's, e.g. ``.jpeg``).
    """
    name = _disposition_name(content_disposition)
    parts = urlsplit(url)
    if not name:
        name = unquote(parts.path.rstrip("/").rsplit("/", 1)[-1])
    # Whatever the source, only the last path component counts: no traversal.
    name = re.split(r"[/\\]", name)[-1]
    stem, dot, ext = name.rpartition(".")
    if not (dot and stem and re.fullmatch(r"[A-Za-z0-9]{1,5}", ext)):
        stem, ext = name, ""
    if not stem.strip(". "):
        stem = parts.hostname or "image"
    choices = EXTENSIONS.get(fmt or "", (f".{fmt.lower()}",) if fmt else (".bin",))
    own = f".{ext.lower()}"
    return sanitize_stem(stem), own if own in choices else choices[0]


def _candidates(stem: str, ext: str) -> Iterator[str]:
    yield f"{stem}{ext}"
    n = 1
    while True:
        yield f"{stem}-{n}{ext}"
        n += 1


# ---------------------------------------------------------------------------------------------
# The lock


class _FolderLock:
    """An exclusive, non-blocking lock on ``DIR/.samepix/sync.lock`` holding the owner's pid.

    ``flock`` locks belong to the open file: the kernel drops them when the process dies, even by
    SIGKILL, so a stale lock file never blocks a later sync.
    """

    def __init__(self, path: Path, root: Path, *, wait: float = 0) -> None:
        self.path = path
        self.root = root
        self.wait = wait
        self._fd: int | None = None

    def __enter__(self) -> _FolderLock:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            hint = ""
            if not os.access(self.root, os.W_OK):  # read-only: a sync cannot save into it
                hint = "; to see what a sync would do without writing into the folder: --dry-run"
            raise SyncError(
                f"{self.path}: cannot create the sync lock file ({exc.strerror or exc}){hint}"
            ) from exc
        deadline = time.monotonic() + self.wait
        while True:
            try:
                _lock_fd(fd)
                break
            except OSError as exc:
                if time.monotonic() < deadline:  # --wait: the holder may finish meanwhile
                    time.sleep(max(0.0, min(0.2, deadline - time.monotonic())))
                    continue
                holder = _read_pid(fd)
                os.close(fd)
                raise SyncLocked(
                    f"another samepix sync is running on {self.root} (pid {holder or 'unknown'}); "
                    f"wait for it to finish, or stop it (lock: {self.path})"
                ) from exc
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        # A forked worker must not share the lock: it could outlive this process.
        close_in_children(fd)
        self._fd = fd
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            close_in_children(self._fd, on=False)
            os.close(self._fd)  # releases the lock
            self._fd = None


def _lock_fd(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # type: ignore[attr-defined]
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)


def _read_pid(fd: int) -> str | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
    except OSError:
        return None
    return text if text.isdigit() else None


def _clean_parts(folder: Path) -> int:
    """Delete temporary files an interrupted write left in ``folder``; how many."""
    removed = 0
    try:
        names = os.listdir(folder)
    except OSError:
        return 0
    for name in names:
        if _PART.match(name):
            with contextlib.suppress(OSError):
                (folder / name).unlink()
                removed += 1
    return removed


# ---------------------------------------------------------------------------------------------
# Where the sync writes: a local folder here, a folder on S3 in samepix.bucket_sync


class SyncTarget(Protocol):
    """The few operations by which a sync touches its folder (not its index)."""

    #: Where the validators of the URLs are kept (``FetchState``).
    fetch_state_path: Path

    def prepare(self, *, dry_run: bool, replace_better: bool) -> None:
        """Create a missing folder, or refuse (one line) what cannot be done there."""

    def hold(self, wait: float = 0) -> contextlib.AbstractContextManager[object]:
        """The lock that keeps a second sync out while this one writes; ``wait``: seconds to
        wait for a sync holding it to finish (0: refuse at once)."""

    def clean_parts(self, folders: Iterable[str]) -> None:
        """Remove what an interrupted write left in ``folders`` (relative; "" the top)."""

    def taken(self, rel: str) -> bool:
        """Whether a file or object is at ``rel`` now."""

    def write_new(self, rel: str, data: bytes, mode_of: Path | None = None) -> bool:
        """Write ``data`` at ``rel`` whole, never over anything; False if ``rel`` is taken."""

    def stat(self, rel: str) -> Any:
        """``st_size``, ``st_mtime_ns``, ``st_ino`` of ``rel`` as the index keeps them."""

    # --replace-better: keep the file judged worse, then replace or remove only that version.

    def holds_same(self, rel: str, other: str) -> bool:
        """Whether ``rel`` is ``other``'s file already (kept by an interrupted run)."""

    def keep(self, rel: str, kept_rel: str, sha256: str) -> object | None:
        """Keep ``rel``'s file under ``kept_rel`` too; the version kept (for :meth:`replace`
        and :meth:`remove`), or None when ``rel`` no longer holds the bytes ``sha256``."""

    def replace(self, rel: str, data: bytes, version: object) -> bool:
        """Put ``data`` over ``rel`` whole, only over ``version``; False if it changed since."""

    def remove(self, rel: str, version: object) -> None:
        """Remove ``rel``, only while it is ``version`` (left as it is otherwise)."""


class _FolderTarget:
    """A local folder: ``DIR/.samepix/`` holds the lock and the fetch state; files are written
    to a temporary file, fsynced and linked into place (samepix.atomic)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.fetch_state_path = root / STATE_DIR / FETCH_STATE_NAME

    def prepare(self, *, dry_run: bool, replace_better: bool) -> None:
        _make_destination(self.root, dry_run)

    def hold(self, wait: float = 0) -> contextlib.AbstractContextManager[object]:
        return _FolderLock(self.root / STATE_DIR / LOCK_NAME, self.root, wait=wait)

    def clean_parts(self, folders: Iterable[str]) -> None:
        for folder in folders:
            _clean_parts(self.root / folder)

    def taken(self, rel: str) -> bool:
        return os.path.lexists(self.root / rel)

    def write_new(self, rel: str, data: bytes, mode_of: Path | None = None) -> bool:
        from .atomic import atomic_writer

        try:
            with atomic_writer(self.root / rel, overwrite=False, mode_of=mode_of) as handle:
                handle.write(data)
        except FileExistsError:
            return False
        return True

    def stat(self, rel: str) -> Any:
        return os.stat(self.root / rel)

    def holds_same(self, rel: str, other: str) -> bool:
        try:
            return os.path.samefile(self.root / rel, self.root / other)
        except OSError:
            return False

    def keep(self, rel: str, kept_rel: str, sha256: str) -> object | None:
        """A second name (a hard link): the path holds the old file or the new at all times.
        (The sync holds the folder's lock, and the file was just compared: never None here.)"""
        kept = self.root / kept_rel
        kept.parent.mkdir(parents=True, exist_ok=True)
        if not self.holds_same(kept_rel, rel):
            os.link(self.root / rel, kept)
        return rel

    def replace(self, rel: str, data: bytes, version: object) -> bool:
        from .atomic import atomic_writer

        with atomic_writer(self.root / rel, overwrite=True) as handle:
            handle.write(data)
        return True

    def remove(self, rel: str, version: object) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / rel).unlink()


def _folder_of(rel: str) -> str:
    parent = PurePosixPath(rel).parent.as_posix()
    return "" if parent == "." else parent


def _target_for(lib: SyncFolder) -> SyncTarget:
    root: object = lib.root  # a Path, or an ObjectPath typed as one (samepix.index.as_folder)
    if isinstance(root, Path):
        return _FolderTarget(root)
    from .bucket_sync import BucketTarget
    from .storage import ObjectPath

    assert isinstance(root, ObjectPath)
    return BucketTarget(root, lib.db_path)


# ---------------------------------------------------------------------------------------------
# What stands for each URL: the sync_urls table of the index database

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_urls (
    url TEXT PRIMARY KEY,
    path TEXT NOT NULL,             -- relative to the folder: the file that stands for the URL
    local_sha256 TEXT NOT NULL,     -- what that file held when decided
    remote_sha256 TEXT NOT NULL,    -- the body the URL served then
    decision TEXT NOT NULL,
    verdict TEXT,
    complete INTEGER NOT NULL,      -- 0 while the file is being put in place
    synced_at REAL NOT NULL
)
"""
# A replaced file re-points the records of its URLs (by path), and every run finishes the
# records an interrupted one left (complete = 0): lookups, not scans of every URL ever synced.
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS sync_urls_path ON sync_urls (path)",
    "CREATE INDEX IF NOT EXISTS sync_urls_incomplete ON sync_urls (url) WHERE complete = 0",
)


@dataclass(frozen=True)
class _Record:
    url: str
    path: str
    local_sha256: str
    remote_sha256: str
    decision: str
    verdict: str | None
    complete: bool


_PRELOAD_CHUNK = 500  # URLs per query when reading ahead (SQLite allows 32,766 parameters)


class _Store:
    """The ``sync_urls`` rows, on the index's own connection, so a new file's index row and its
    URL's record land in one transaction (:meth:`Index.add`)."""

    def __init__(self, index: Index, *, read_only: bool) -> None:
        self.index = index
        self.read_only = read_only
        self.present = True
        # Read ahead by preload(), so re-checking a long list costs a few queries, not two
        # per URL; dropped by every write of this run that could change them.
        self._records: dict[str, _Record | None] = {}
        self._held: dict[str, str | None] = {}
        if read_only:
            found = self._query("SELECT 1 FROM sqlite_master WHERE name = 'sync_urls'")
            self.present = bool(found)
        else:
            with self._write() as conn:
                conn.execute(_SCHEMA)
                for sql in _INDEXES:
                    conn.execute(sql)

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[Any]:
        try:
            return self.index.conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.index.corrupt(exc) from exc

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # Not Index.transaction(): that drops the in-memory search table, and these rows do not
        # touch it.
        conn = self.index.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise SyncError(
                    f"{self.index.path}: index is locked by another samepix process; try again"
                ) from exc
            raise self.index.corrupt(exc) from exc
        try:
            yield conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self.index.corrupt(exc) from exc

    def preload(self, urls: list[str]) -> None:
        """Read the records of ``urls`` and what the index holds at their paths, a few
        hundred per query; :meth:`get` and :meth:`holds` answer from them."""
        if not self.present:
            return
        for start in range(0, len(urls), _PRELOAD_CHUNK):
            chunk = urls[start : start + _PRELOAD_CHUNK]
            found: dict[str, _Record | None] = dict.fromkeys(chunk)
            for u, p, local, remote, decision, verdict, complete in self._query(
                "SELECT url, path, local_sha256, remote_sha256, decision, verdict, complete "
                f"FROM sync_urls WHERE url IN ({', '.join('?' * len(chunk))})",
                tuple(chunk),
            ):
                found[u] = _Record(u, p, local, remote, decision, verdict, bool(complete))
            self._records.update(found)
            paths = list({r.path for r in found.values() if r is not None} - self._held.keys())
            held: dict[str, str | None] = dict.fromkeys(paths)
            if paths:
                for path, sha in self._query(
                    f"SELECT path, sha256 FROM files WHERE path IN ({', '.join('?' * len(paths))})",
                    tuple(paths),
                ):
                    held[path] = bytes(sha).hex()
            self._held.update(held)

    def forget_read_ahead(self) -> None:
        """Drop what :meth:`preload` read (the index or other URLs' records changed)."""
        self._records.clear()
        self._held.clear()

    def get(self, url: str) -> _Record | None:
        if not self.present:
            return None
        if url in self._records:
            return self._records[url]
        rows = self._query(
            "SELECT url, path, local_sha256, remote_sha256, decision, verdict, complete "
            "FROM sync_urls WHERE url = ?",
            (url,),
        )
        if not rows:
            return None
        u, p, local, remote, decision, verdict, complete = rows[0]
        return _Record(u, from_db(p), local, remote, decision, verdict, bool(complete))

    def holds(self, path: str) -> str | None:
        """The SHA-256 the index has for ``path`` (after an update: what the file holds)."""
        if path in self._held:
            return self._held[path]
        rows = self._query("SELECT sha256 FROM files WHERE path = ?", (path,))
        return bytes(rows[0][0]).hex() if rows else None

    @staticmethod
    def put(
        conn: sqlite3.Connection,
        url: str,
        path: str,
        local: str,
        remote: str,
        decision: str,
        verdict: str | None,
        *,
        complete: bool = True,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO sync_urls (url, path, local_sha256, remote_sha256, decision, "
            "verdict, complete, synced_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (url, path, local, remote, decision, verdict, int(complete), time.time()),
        )

    def record(
        self,
        url: str,
        path: str,
        local: str,
        remote: str,
        decision: str,
        verdict: str | None,
        *,
        complete: bool = True,
    ) -> None:
        self._records.pop(url, None)
        with self._write() as conn:
            self.put(conn, url, path, local, remote, decision, verdict, complete=complete)

    def settle(self, target: SyncTarget) -> None:
        """Finish the records of files an interrupted run put in place; drop the others.

        Runs after the index update, so the index says what each path holds now.
        """
        rows = [
            (url, from_db(path), local)
            for url, path, local in self._query(
                "SELECT url, path, local_sha256 FROM sync_urls WHERE complete = 0"
            )
        ]
        if not rows:
            return
        with self._write() as conn:
            for url, path, local in rows:
                if self.holds(path) == local:
                    conn.execute("UPDATE sync_urls SET complete = 1 WHERE url = ?", (url,))
                else:
                    conn.execute("DELETE FROM sync_urls WHERE url = ?", (url,))
        target.clean_parts({_folder_of(path) for _, path, _ in rows})


# ---------------------------------------------------------------------------------------------
# Downloads: an asyncio loop in a thread, results through a bounded queue


class _Done:
    """The end of the download stream."""


_DONE = _Done()
_Result = tuple[int, str, Union["Download", SamepixError]]


class _Downloads:
    """Fetch ``work`` (line, url, conditional) with a global and a per-host limit; iterate to
    get ``(line, url, download or error)`` in the list's order.

    In order, so that a run's decisions do not depend on which server answered first: when two
    URLs of one list hold the same picture (or bytes), the earlier line is saved and the later
    one skipped, in every run, and a run killed and resumed ends with the folder an
    uninterrupted run makes. Downloads still run ahead, at most ``window`` lines past the
    oldest undecided one (that bounds the finished downloads held in memory); a slow URL holds
    back decisions, not the downloads behind it, until the window is full.
    """

    def __init__(
        self,
        fetcher: Fetcher,
        work: list[tuple[int, str, bool]],
        *,
        concurrency: int,
        per_host: int,
    ) -> None:
        self.fetcher = fetcher
        self.work = work
        self.concurrency = concurrency
        self.per_host = per_host
        self.window = 4 * concurrency
        # Not bounded itself: the window bounds what can be in it.
        self._queue: queue.Queue[tuple[int, _Result] | _Done | BaseException] = queue.Queue()
        self._window: asyncio.Semaphore | None = None
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main: asyncio.Task[None] | None = None
        self._thread = threading.Thread(target=self._run, name="samepix-sync-fetch", daemon=True)

    def __enter__(self) -> _Downloads:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        loop, main = self._loop, self._main
        if loop is not None and main is not None:
            with contextlib.suppress(RuntimeError):  # the loop may have ended already
                loop.call_soon_threadsafe(main.cancel)
        self._thread.join(timeout=10)

    def __iter__(self) -> Iterator[_Result]:
        ready: dict[int, _Result] = {}  # finished, waiting for the lines before them
        for position in range(len(self.work)):
            while position not in ready:
                item = self._queue.get()
                if isinstance(item, _Done):
                    return  # stopped early; what is left was never fetched
                if isinstance(item, BaseException):
                    raise item
                ready[item[0]] = item[1]
            yield ready.pop(position)
            self._release_one()

    def _release_one(self) -> None:
        """One more line may start downloading (called once a line is decided)."""
        loop, window = self._loop, self._window
        if loop is not None and window is not None:
            with contextlib.suppress(RuntimeError):  # the loop has ended: nothing waits
                loop.call_soon_threadsafe(window.release)

    def _put(self, item: tuple[int, _Result] | _Done | BaseException) -> None:
        self._queue.put(item)

    def _run(self) -> None:
        try:
            asyncio.run(self._all())
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._put(exc)
            return
        self._put(_DONE)

    async def _all(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._main = asyncio.current_task()
        self._window = window = asyncio.Semaphore(self.window)
        everyone = asyncio.Semaphore(self.concurrency)
        hosts: dict[str, asyncio.Semaphore] = {}

        async def one(position: int, line: int, url: str, conditional: bool) -> None:
            host = (urlsplit(url).hostname or "").lower()
            gate = hosts.setdefault(host, asyncio.Semaphore(self.per_host))
            # The host's gate first: a task waiting for a busy host holds no global slot.
            try:
                async with gate, everyone:
                    if self._stop.is_set():
                        return
                    result: Download | SamepixError
                    try:
                        fast = None
                        if conditional and rechecks is not None:  # a 304, or None
                            fast = await rechecks.acheck(url)
                        result = fast or await self.fetcher.aget(url, conditional=conditional)
                    except SamepixError as exc:
                        result = exc
            except Exception as exc:  # a bug, not a failed URL: the consumer, waiting for this
                self._put(exc)  # line, raises it
                raise
            self._put((position, (line, url, result)))

        async with self.fetcher:
            # Unchanged URLs are re-checked on kept-alive stdlib connections (samepix.recheck:
            # httpx's per-request cost bounded a re-check); anything but a 304 comes back here.
            from .recheck import Rechecker

            rechecks = None
            if any(conditional for _, _, conditional in self.work):
                rechecks = Rechecker.for_fetcher(self.fetcher, threads=self.concurrency)
            pending: set[asyncio.Task[None]] = set()
            try:
                for position, (line, url, conditional) in enumerate(self.work):
                    # A bounded window of undecided lines, so a list of millions streams
                    # through and a slow line holds back at most this many finished ones.
                    await window.acquire()
                    if self._stop.is_set():
                        break
                    pending.add(asyncio.ensure_future(one(position, line, url, conditional)))
                    done = {task for task in pending if task.done()}
                    pending -= done
                    for task in done:
                        task.result()
                if pending:
                    for outcome in await asyncio.gather(*pending, return_exceptions=True):
                        if isinstance(outcome, BaseException):
                            raise outcome
            finally:
                for task in pending:
                    task.cancel()
                if rechecks is not None:
                    rechecks.close()


def _downloads(
    fetcher: Fetcher,
    work: list[tuple[int, str, bool]],
    executor: Executor | None,
    state: FetchState | None,
    described: dict[str, Described],
    concurrency: int,
    per_host: int,
    policy: Policy,
) -> _Downloads | ShardedDownloads:
    """The downloads of ``work``: on ``executor`` as shards, or on this process's loop."""
    if executor is None:
        return _Downloads(fetcher, work, concurrency=concurrency, per_host=per_host)
    from .sync_shards import ShardedDownloads, searched_variants

    return ShardedDownloads(
        executor,
        work,
        state=state,
        remember=fetcher,
        described=described,
        limits=fetcher.limits,
        retry=fetcher.retry,
        allow_private=fetcher.allow_private,
        concurrency=concurrency,
        per_host=per_host,
        variants=searched_variants(policy),
    )


def _make_destination(root: Path, dry_run: bool) -> None:
    """Create a missing destination folder (a dry run creates nothing: it says so instead)."""
    if root.is_dir():
        return
    if os.path.lexists(root):
        raise SourceError(f"{root}: not a folder")
    if dry_run:
        raise SourceError(
            f"{root}: no such folder (a dry run creates nothing; without --dry-run sync creates it)"
        )
    try:
        root.mkdir(parents=True)
    except FileExistsError:
        if not root.is_dir():
            raise SourceError(f"{root}: not a folder") from None
    except OSError as exc:
        raise SourceError(f"{root}: cannot create the folder ({exc.strerror or exc})") from exc


class _DryRunCopies:
    """Copies of DIR's index and fetch state in a temporary folder, for a dry run.

    The dry run indexes and searches as a real run would (same decisions), but every write
    lands in the copies, which vanish afterwards: DIR is never written, and may be read-only.
    """

    def __init__(self, lib: SyncFolder, state_path: Path) -> None:
        import tempfile

        self._tmp = tempfile.TemporaryDirectory(prefix="samepix-dry-run-")
        folder = Path(self._tmp.name)
        try:
            db = folder / lib.db_path.name
            if lib.db_path.exists():
                _copy_sqlite(lib.db_path, db)
            self.state_path: Path | None = None
            if state_path.exists():
                self.state_path = folder / state_path.name
                _copy_sqlite(state_path, self.state_path)
            self.library = lib.with_db(db)
        except BaseException:
            self._tmp.cleanup()
            raise

    def __enter__(self) -> _DryRunCopies:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.library.close()
        finally:
            self._tmp.cleanup()


def _copy_sqlite(source: Path, target: Path) -> None:
    """Copy a SQLite database with its write-ahead log, without opening it where it lies (even
    a read-only open of a WAL database creates its -wal and -shm files beside it)."""
    import shutil

    try:
        for suffix in ("", "-wal"):
            if os.path.exists(f"{source}{suffix}"):
                shutil.copyfile(f"{source}{suffix}", f"{target}{suffix}")
    except OSError as exc:
        raise SourceError(
            f"{source}: cannot read it for the dry run ({exc.strerror or exc})"
        ) from exc


def _read_only_state(path: Path) -> FetchState:
    """The state file for a dry run: validators are read, never remembered."""
    from .state import FetchState

    class ReadOnlyState(FetchState):
        def remember_many(self, records: Iterable[Any]) -> None:
            pass

        def confirm(self, url: str, **_: Any) -> None:
            pass

    return ReadOnlyState(path)


# ---------------------------------------------------------------------------------------------
# Deciding


def _trusted(record: _Record | None, replace_better: bool) -> bool:
    """Whether a past decision can stand while the URL is unchanged.

    A same-picture skip decided without ``--replace-better`` is looked at again with it: the
    URL's copy may be the better one.
    """
    if record is None or not record.complete:
        return False
    return not (replace_better and record.decision == "skipped-same-picture")


def _quality(width: int, height: int, lossless: bool | None, quality: int | None, size: int) -> Any:
    # The ranking of samepix.library.quality_key, as "bigger is better".
    return (width * height, 1 if lossless else 0, quality or 0, size)


def _stop(exc: WriteFailed) -> SyncError:
    """The error that ends a sync when a database cannot be written (disk full, ...)."""
    return SyncError(
        f"{exc}; the sync stopped there: files saved before are kept, run it again to continue"
    )


def _strip_url(message: str, url: str) -> str:
    prefix = f"{url}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


class _Syncer:
    """Decides and acts on each download, in the calling thread."""

    def __init__(
        self,
        lib: SyncFolder,
        store: _Store,
        *,
        dry_run: bool,
        replace_better: bool,
        refetch: Callable[[str], Download],
        target: SyncTarget,
        described: dict[str, Described] | None = None,
    ) -> None:
        self.lib = lib
        self.target = target  # where files are written: a local folder, or a bucket
        self.described = {} if described is None else described  # url -> made by a worker
        self.root = lib.root
        self.index = lib.index
        self.store = store
        self.dry_run = dry_run
        self.replace_better = replace_better
        self.refetch = refetch
        self.planned_names: set[str] = set()  # dry run: names it would have written
        self.planned_sha: dict[str, str] = {}  # dry run: sha256 -> name it would have written

    # -- entry ---------------------------------------------------------------------------------

    def decide(self, line: int, url: str, result: Download | SamepixError) -> SyncItem:
        if isinstance(result, WriteFailed):
            # The disk is full (or the folder read-only): every next URL would fail the same
            # way. Stop at the first one, with the message of the write that failed.
            raise _stop(result)
        prepared = self.described.pop(url, None)
        if isinstance(result, SamepixError):
            return SyncItem(url, "failed", _strip_url(str(result), url), line=line)
        record = self.store.get(url)
        download = result
        extra = 0
        if download.not_modified:
            if record is not None and self._still_holds(record, download.sha256):
                return SyncItem(
                    url,
                    "skipped-unchanged",
                    f"HTTP 304 Not Modified; {record.path} still holds the bytes decided on",
                    path=self.root / record.path,
                    verdict=record.verdict,
                    transferred=download.transferred,
                    line=line,
                )
            # The validators describe a body this folder has no decision for (a run stopped
            # between download and decision): ask again for the body.
            try:
                extra = download.transferred
                download = self.refetch(url)
            except WriteFailed as exc:
                raise _stop(exc) from exc
            except SamepixError as exc:
                return SyncItem(url, "failed", _strip_url(str(exc), url), line=line)
        try:
            item = self._decide_body(line, url, download, record, prepared)
        except SyncError:
            raise
        except WriteFailed as exc:
            raise _stop(exc) from exc
        except SamepixError as exc:
            return SyncItem(
                url,
                "failed",
                _strip_url(str(exc), url),
                transferred=download.transferred + extra,
                line=line,
            )
        if extra:
            item = SyncItem(**{**item.__dict__, "transferred": item.transferred + extra})
        return item

    def _still_holds(self, record: _Record, remote: str) -> bool:
        return (
            _trusted(record, self.replace_better)
            and record.remote_sha256 == remote
            and self.store.holds(record.path) == record.local_sha256
        )

    # -- a body --------------------------------------------------------------------------------

    def _decide_body(
        self,
        line: int,
        url: str,
        download: Download,
        record: _Record | None,
        prepared: Described | None = None,
    ) -> SyncItem:
        from .compare import load
        from .query import describe_query

        sha = download.sha256
        n = download.transferred
        if record is not None and self._still_holds(record, sha):
            return SyncItem(
                url,
                "skipped-unchanged",
                f"same bytes as at the last sync; {record.path} still holds the bytes decided on",
                path=self.root / record.path,
                verdict=record.verdict,
                transferred=n,
                line=line,
            )
        holder = self.index.first_by_sha256(sha)  # one lookup, however many copies
        if holder is not None or sha in self.planned_sha:
            rel = holder.path if holder is not None else self.planned_sha[sha]
            self._record(url, rel, sha, sha, "skipped-bytes", "identical")
            return SyncItem(
                url,
                "skipped-bytes",
                f"identical bytes already at {rel} (sha256 {sha[:12]}…)",
                path=self.root / rel,
                verdict="identical",
                transferred=n,
                line=line,
            )

        query = load(download, limits=self.lib.limits, lazy=True)
        if prepared is not None and prepared.descriptor.sha256 == sha:  # made by a worker
            prepared.apply(query)
        desc = describe_query(query, self.lib.limits)
        # Every match, not the first: the reason names the best local copy (the lossless
        # original rather than a q30 copy of it), and --replace-better compares with that one.
        # Mirror images, rotations and crops only when nothing matched as it stands: one match
        # decides, and a copy as it stands is a better one to name.
        found = self.lib.find(query, update=False, also_turned_and_cropped=False)
        if found.found:
            best_match = self._best_copy(found.matches)
            verdict = best_match.comparison.verdict.value
            if self.replace_better:
                better = self._replace_target(found.matches, desc, len(download.data))
                if better is not None:
                    return self._replace(line, url, download, desc, better, verdict)
            rel = best_match.path.relative_to(self.root).as_posix()
            local = self.store.holds(rel) or ""
            self._record(url, rel, local, sha, "skipped-same-picture", verdict)
            return SyncItem(
                url,
                "skipped-same-picture",
                f"{verdict} picture as {rel}: " + "; ".join(best_match.comparison.reasons),
                path=best_match.path,
                verdict=verdict,
                transferred=n,
                line=line,
            )
        similar = found.similar[0] if found.similar else None
        why = "not in the folder"
        if similar is not None:
            rel = similar.path.relative_to(self.root).as_posix()
            why = f"not in the folder (similar, not the same, to {rel})"
        elif found.compared:
            why = f"not in the folder ({found.compared} candidates compared)"
        return self._save_new(line, url, download, desc, why, "similar" if similar else None)

    # -- writing -------------------------------------------------------------------------------

    def _record(
        self, url: str, rel: str, local: str, remote: str, decision: str, verdict: str | None
    ) -> None:
        if not self.dry_run:
            self.store.record(url, rel, local, remote, decision, verdict)

    def _fatal(self, target: Path, exc: BaseException) -> SyncError:
        why = getattr(exc, "strerror", None) or str(exc)
        return SyncError(
            f"{target}: cannot write ({why}); nothing partial was left, files saved before are "
            f"kept: free some space or fix the folder, then run the sync again to continue"
        )

    def _write_new(
        self,
        url: str,
        download: Download,
        stem: str,
        ext: str,
        folder: str,
        *,
        mode_of: Path | None = None,
    ) -> str:
        """Put the body in place under the first free name; returns its relative path.

        ``mode_of``: the file this one replaces under another name, whose mode it keeps."""
        sha = download.sha256
        for name in _candidates(stem, ext):
            rel = f"{folder}/{name}" if folder else name
            target = self.root / rel
            if rel in self.planned_names or self.target.taken(rel):
                continue
            if self.dry_run:
                self.planned_names.add(rel)
                self.planned_sha[sha] = rel
                return rel
            self.store.record(url, rel, sha, sha, "downloaded", None, complete=False)
            try:
                if not self.target.write_new(rel, download.data, mode_of):
                    continue  # appeared meanwhile (not a samepix sync: they hold the lock)
            except (OSError, SourceError) as exc:
                raise self._fatal(target, exc) from exc
            return rel
        raise AssertionError("unreachable")  # pragma: no cover - _candidates never ends

    def _index_new(
        self,
        url: str,
        rel: str,
        desc: Descriptor,
        decision: str,
        verdict: str | None,
        *,
        remove: tuple[str, ...] = (),
    ) -> None:
        st = self.target.stat(rel)
        entry = IndexEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, desc)

        def also(conn: sqlite3.Connection) -> None:
            self.store.put(conn, url, rel, desc.sha256, desc.sha256, decision, verdict)
            for old in remove:
                # URLs that stood for the replaced file show the same picture: now this one.
                conn.execute(
                    "UPDATE sync_urls SET path = ?, local_sha256 = ? WHERE path = ?",
                    (rel, desc.sha256, old),
                )

        try:
            self.index.add(entry, remove=remove, also=also)
        finally:  # other URLs' records and the index's paths may have changed
            self.store.forget_read_ahead()

    def _save_new(
        self,
        line: int,
        url: str,
        download: Download,
        desc: Descriptor,
        why: str,
        verdict: str | None,
    ) -> SyncItem:
        from .formats import SNIFF_BYTES, sniff_format
        from .units import human_bytes

        fmt = sniff_format(download.data[:SNIFF_BYTES]) or desc.format
        stem, ext = file_name(download.url, download.content_disposition, fmt)
        rel = self._write_new(url, download, stem, ext, "")
        if not self.dry_run:
            self._index_new(url, rel, desc, "downloaded", verdict)
        facts = f"{fmt} {desc.width}×{desc.height}, {human_bytes(len(download.data))}"
        prefix = "would save" if self.dry_run else "saved"
        return SyncItem(
            url,
            "downloaded",
            f"{why}; {prefix} as {rel} ({facts})",
            path=self.root / rel,
            verdict=verdict,
            transferred=download.transferred,
            line=line,
        )

    # -- replacing -----------------------------------------------------------------------------

    def _best_copy(self, matches: Sequence[Any]) -> Any:
        """The match a user would keep: most pixels, lossless, higher JPEG quality, larger
        file; among equals, the closest (``find``'s order)."""

        def key(position: int) -> Any:
            rel = matches[position].path.relative_to(self.root).as_posix()
            entry = self.index.get(rel)
            if entry is None:
                return (_quality(0, 0, None, None, 0), -position)
            d = entry.descriptor
            quality = _quality(d.width, d.height, d.lossless, d.jpeg_quality, entry.size)
            return (quality, -position)

        return matches[max(range(len(matches)), key=key)]

    def _replace_target(
        self, matches: Iterable[Any], desc: Descriptor, size: int
    ) -> IndexEntry | None:
        """The best local copy among ``matches`` when the download is better than it."""
        entries = [
            e
            for m in matches
            if (e := self.index.get(m.path.relative_to(self.root).as_posix())) is not None
        ]
        if not entries:
            return None

        def key(e: IndexEntry) -> Any:
            d = e.descriptor
            return _quality(d.width, d.height, d.lossless, d.jpeg_quality, e.size)

        best = max(entries, key=key)
        mine = _quality(desc.width, desc.height, desc.lossless, desc.jpeg_quality, size)
        return best if mine > key(best) else None

    def _replace(
        self,
        line: int,
        url: str,
        download: Download,
        desc: Descriptor,
        old: IndexEntry,
        verdict: str,
    ) -> SyncItem:
        from .formats import SNIFF_BYTES, sniff_format

        fmt = sniff_format(download.data[:SNIFF_BYTES]) or desc.format
        old_rel = PurePosixPath(old.path)
        choices = EXTENSIONS.get(fmt or "", (old_rel.suffix.lower(),))
        ext = old_rel.suffix if old_rel.suffix.lower() in choices else choices[0]
        new_rel = old_rel.with_suffix(ext).as_posix()
        d = old.descriptor
        was = f"{d.width}×{d.height} {d.format or '?'}"
        if d.jpeg_quality:
            was += f" q≈{d.jpeg_quality}"
        facts = f"{desc.width}×{desc.height} {fmt} over {was}"
        kept_rel = self._kept_name(old.path)
        if self.dry_run:
            return SyncItem(
                url,
                "replaced",
                f"{verdict} picture, better copy ({facts}): would replace {old.path}",
                path=self.root / new_rel,
                verdict=verdict,
                transferred=download.transferred,
                line=line,
                kept=self.root / kept_rel,
            )
        old_path = self.root / old.path
        kept = self.root / kept_rel
        sha = download.sha256
        try:
            # 1. keep the old file (locally a second name for it: the path holds old or new
            # at all times; in a bucket a copy, made only of the very object judged worse)
            version = self.target.keep(old.path, kept_rel, old.sha256)
        except (OSError, SourceError) as exc:
            raise self._fatal(kept, exc) from exc
        if version is None:
            return self._changed(line, url, download, old.path)
        if new_rel == old.path:
            # 2. the new bytes over the old name, whole, and only over the version kept
            self.store.record(url, new_rel, sha, sha, "replaced", verdict, complete=False)
            try:
                replaced = self.target.replace(old.path, download.data, version)
            except (OSError, SourceError) as exc:
                raise self._fatal(old_path, exc) from exc
            if not replaced:
                return self._changed(line, url, download, old.path)
        else:
            # 2. the new file under its own name (another format), then the old name goes
            folder = str(old_rel.parent) if str(old_rel.parent) != "." else ""
            new_rel = self._write_new(url, download, old_rel.stem, ext, folder, mode_of=old_path)
            try:
                self.target.remove(old.path, version)
            except SourceError as exc:
                raise self._fatal(old_path, exc) from exc
        # 3. the index and the record, in one transaction
        self._index_new(url, new_rel, desc, "replaced", verdict, remove=(old.path,))
        return SyncItem(
            url,
            "replaced",
            f"{verdict} picture, better copy ({facts}); old file kept at {kept_rel}",
            path=self.root / new_rel,
            verdict=verdict,
            transferred=download.transferred,
            line=line,
            kept=kept,
        )

    def _kept_name(self, rel: str) -> str:
        base = PurePosixPath(STATE_DIR, REPLACED_DIR, rel)
        for name in _candidates(base.stem, base.suffix):
            candidate = (base.parent / name).as_posix()
            # free, or holding the old file already (kept by an interrupted run)
            if not self.target.taken(candidate) or self.target.holds_same(candidate, rel):
                return candidate
        raise AssertionError("unreachable")  # pragma: no cover

    def _changed(self, line: int, url: str, download: Download, rel: str) -> SyncItem:
        """The file judged worse changed before it could be replaced (another writer of the
        bucket): nothing is overwritten or removed; the next sync decides again."""
        return SyncItem(
            url,
            "failed",
            f"{rel} changed while it was being replaced: nothing was overwritten; run the sync "
            "again to decide with its new bytes",
            transferred=download.transferred,
            line=line,
        )


# ---------------------------------------------------------------------------------------------
# The log


class _Log:
    """One JSON line per decision, flushed as written (a killed sync keeps its log)."""

    def __init__(self, target: SyncLog | None) -> None:
        self._stream: IO[str] | None = None
        self._owned = False
        if target is None:
            return
        if isinstance(target, (str, os.PathLike)):
            try:
                self._stream = open(target, "a", encoding="utf-8")  # noqa: SIM115 - closed below
            except OSError as exc:
                raise SourceError(f"{target}: cannot open the log ({exc.strerror or exc})") from exc
            self._owned = True
        else:
            self._stream = target

    def write(self, row: dict[str, Any]) -> None:
        if self._stream is None:
            return
        self._stream.write(json_text(row) + "\n")  # names that are not UTF-8 stay writable
        self._stream.flush()

    def close(self) -> None:
        if self._owned and self._stream is not None:
            self._stream.close()
        self._stream = None


# ---------------------------------------------------------------------------------------------
# The whole run


def run_sync(
    lib: SyncFolder,
    urls: Iterable[str],
    *,
    dry_run: bool = False,
    replace_better: bool = False,
    concurrency: int = 16,
    per_host: int = 6,
    log: SyncLog | None = None,
    retry: Retry | None = None,
    allow_private: bool = True,
    cache: bool = True,
    keep_items: bool = True,
    wait: float = 0,
) -> SyncSummary:
    """Sync ``urls`` into ``lib``'s folder; see :meth:`samepix.library.Library.sync`."""
    from .fetch import DEFAULT_RETRY, Fetcher
    from .state import FetchState

    if concurrency < 1:
        raise UsageError(f"concurrency must be at least 1, got {concurrency}")
    if per_host < 1:
        raise UsageError(f"per_host must be at least 1, got {per_host}")
    started = time.perf_counter()
    root = lib.root
    target = _target_for(lib)  # a local folder, or a folder on S3 (samepix.bucket_sync)
    target.prepare(dry_run=dry_run, replace_better=replace_better)
    if isinstance(urls, str):
        urls = split_lines(urls)
    # The list is read and synced a window of lines at a time (samepix.url_stream): a list of
    # millions is never held whole. The first window is read now, so a list that cannot be
    # read fails before any work.
    from .url_stream import SeenUrls, url_windows

    seen = SeenUrls()
    chunks = url_windows(urls)
    windows = (parse_window(chunk, seen) for chunk in chunks)
    first = next(windows, UrlList(()))
    # The items (all, or the failed ones only: keep_items=False) and the repeated lines go to
    # a temporary file as they are decided (samepix.sync_items): nothing per URL stays in
    # memory, whatever the report.
    spool = ItemSpool()
    totals: dict[str, int] = {}
    transferred = 0

    def decided(item: SyncItem) -> None:
        nonlocal transferred
        totals[item.decision] = totals.get(item.decision, 0) + 1
        transferred += item.transferred
        if keep_items or item.decision == "failed":
            spool.add("items", item.line, item, decision=item.decision, path=item.path)
        journal.write(item.to_dict())

    total = 0  # URLs (malformed ones too) of the windows read so far
    journal = _Log(log)
    scratch = _DryRunCopies(lib, target.fetch_state_path) if dry_run else None
    try:
        # A dry run works on copies of the index and state in a temporary folder (and takes no
        # lock): it writes nothing into DIR, and runs on a read-only folder.
        with scratch or target.hold(wait):
            if scratch is not None:
                lib = scratch.library
            else:
                target.clean_parts([""])
            # Held now: what other machines saved into a bucket is known after this update.
            lib.update()
            store = _Store(lib.index, read_only=dry_run)
            if not dry_run:
                store.settle(target)

            state_path = target.fetch_state_path
            state: FetchState | None
            if not cache:  # --no-cache: no validators sent or remembered; everything downloaded
                state = None
            elif scratch is not None:  # validators are read (from the copy), never remembered
                copy = scratch.state_path
                state = _read_only_state(copy) if copy is not None else None
            else:
                state = FetchState(state_path)

            def make_fetcher() -> Fetcher:
                return Fetcher(
                    limits=lib.limits,
                    retry=retry or DEFAULT_RETRY,
                    allow_private=allow_private,
                    state=state,
                    concurrency=concurrency,
                )

            one_off: list[Fetcher] = []
            # With an executor, the downloads and the decoding of new bodies run as shards
            # there (samepix.sync_shards); the descriptors made there are used here.
            executor = lib.executor
            described: dict[str, Described] = {}

            def refetch(url: str) -> Download:
                if not one_off:
                    one_off.append(make_fetcher())
                return one_off[0].get(url)

            syncer = _Syncer(
                lib,
                store,
                dry_run=dry_run,
                replace_better=replace_better,
                refetch=refetch,
                described=described,
                target=target,
            )
            done = 0
            progress = lib.progress
            try:
                for parsed in itertools.chain([first], windows):
                    # Every URL the summary counts: the malformed ones are decided already.
                    total += len(parsed.urls) + len(parsed.malformed)
                    for rep in parsed.repeated:
                        spool.add("repeated", rep.line, rep)
                    for number, text, why in parsed.malformed:
                        decided(
                            SyncItem(
                                text,
                                "failed",
                                f"malformed URL: {why}",
                                line=number,
                                retryable=False,
                            )
                        )
                    done += len(parsed.malformed)
                    for rep in parsed.repeated:
                        journal.write(
                            {
                                "line": rep.line,
                                "url": rep.url,
                                "decision": "repeated",
                                "reason": f"same URL as line {rep.first_line}; processed once",
                                "path": None,
                                "verdict": None,
                                "bytes": 0,
                            }
                        )
                    # A conditional request only where a 304 could be used: the URL's file is
                    # there.
                    store.forget_read_ahead()  # what the last window read
                    store.preload([url for _, url in parsed.urls])
                    work = []
                    for number, url in parsed.urls:
                        record = store.get(url)
                        usable = (
                            record is not None
                            and _trusted(record, replace_better)
                            and store.holds(record.path) == record.local_sha256
                        )
                        work.append((number, url, usable))
                    if state is not None:  # the validators of every URL to re-check, at once
                        state.forget_preloaded()
                        state.preload(url for _, url, conditional in work if conditional)
                    if progress:
                        progress(Progress("syncing", done, total))
                    with _downloads(
                        make_fetcher(),
                        work,
                        executor,
                        state,
                        described,
                        concurrency,
                        per_host,
                        lib.policy,
                    ) as downloads:
                        for number, url, result in downloads:
                            decided(syncer.decide(number, url, result))
                            done += 1
                            if progress:
                                progress(Progress("syncing", done, total))
            finally:
                for fetcher in one_off:
                    fetcher.close()
                if state is not None:
                    state.close()
    except KeyboardInterrupt as exc:
        # Every decision so far is on disk (file, index and record together); say so.
        partial = _summary(root, spool, dry_run, started, totals, transferred)
        # The lines not read yet count without being parsed (a repeat or a malformed URL among
        # them counts too): quick, even for millions.
        unread = sum(1 for chunk in chunks for _, raw in chunk if _COMMENT.sub("", raw).strip())
        raise SyncInterrupted(partial, left=total + unread - partial.urls) from exc
    finally:
        journal.close()
        seen.close()
    return _summary(root, spool, dry_run, started, totals, transferred)


def _summary(
    root: Path,
    spool: ItemSpool,
    dry_run: bool,
    started: float,
    totals: dict[str, int],
    transferred: int,
) -> SyncSummary:
    return SyncSummary(
        root=root,
        items=spool.view("items"),
        repeated=spool.view("repeated"),
        dry_run=dry_run,
        elapsed_s=time.perf_counter() - started,
        totals=tuple(sorted(totals.items())),
        bytes_total=transferred,
    )


class SyncInterrupted(KeyboardInterrupt):
    """Ctrl-C during a sync: what was decided before it (``summary``) and how many URLs were
    ``left`` undecided. Each decided URL is complete on disk; a new run continues."""

    def __init__(self, summary: SyncSummary, *, left: int) -> None:
        super().__init__(f"sync interrupted with {left} URLs left")
        self.summary = summary
        self.left = left


def read_url_file(source: str) -> Iterator[str]:
    """The lines of a URL list file, or of standard input for ``-``, read as they are needed
    (see :func:`samepix.url_stream.read_lines`; bytes that are not UTF-8 become U+FFFD, and
    such a URL is reported as malformed). The file is opened now: a missing one fails here."""
    from .url_stream import read_lines

    return read_lines(source)
