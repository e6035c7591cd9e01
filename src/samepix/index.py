"""The folder index: one SQLite file that remembers every image under a folder.

For each image file it keeps what later decisions need without reading the file again: the
SHA-256 of its bytes, its format, orientation-corrected size, JPEG quality or lossless flag, the
four 64-bit perceptual hashes (from a DCT-scaled draft decode, exactly as a query is hashed) and a
16×16 grey thumbnail that rules candidates out before any full decode.

Updates are incremental. A file whose (size, mtime_ns, inode) is unchanged is not opened. A new
or changed file is first read and hashed with SHA-256 only; if those bytes are already in the index
(a rename, a move, a copy, a touched file) the stored description is reused and nothing is decoded.
Only new content is decoded, in a pool of worker processes. Rows are committed in small batches,
so a killed update loses at most the last second of work and never leaves a half-written row
(SQLite transactions, WAL journal).

Layout: ``DIR/.samepix/index.db`` by default. Paths are stored relative to the folder with ``/``
separators, so a folder moved together with its ``.samepix`` keeps its index.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import sqlite3
import stat as stat_module
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from . import sqlite_errors
from .errors import (
    IndexCorrupt,
    LimitExceeded,
    SamepixError,
    SourceError,
    UsageError,
    WriteFailed,
)
from .executor import Executor, LocalExecutor
from .limits import DEFAULT_LIMITS, Limits
from .names import NameConnection, from_db

if TYPE_CHECKING:
    import numpy as np

    from .hashes import HashSet
    from .sources import Blob

__all__ = [
    "DEFAULT_DB_NAME",
    "IMAGE_EXTENSIONS",
    "SCHEMA_VERSION",
    "THUMB_SIDE",
    "CropTable",
    "DescribeShard",
    "Descriptor",
    "EntryCache",
    "HashTable",
    "Index",
    "IndexEntry",
    "IndexSummary",
    "Progress",
    "Unreadable",
    "default_db_path",
    "describe_blob",
    "describe_shard",
    "require_folder",
    "update_index",
]

#: ``PRAGMA user_version`` of the schema below and of the way files are described. 2: hashes from
#: a grey image of at least ``decode.HASH_MIN_SIDE`` = 128 px (was 256). An index of an older
#: version keeps its sync records; its file rows are dropped and described again at the next
#: update. A newer version is refused (this samepix cannot know what changed).
SCHEMA_VERSION = 2

#: Folder (inside the indexed folder) that holds the index; never indexed itself, at any depth.
STATE_DIR = ".samepix"
DEFAULT_DB_NAME = "index.db"

#: Side of the grey thumbnail kept per image (256 bytes): enough to tell pictures apart, small
#: enough that 1,000,000 entries cost 256 MB on disk and nothing in memory until a query needs one.
THUMB_SIDE = 16

#: Files indexed, by extension (case-insensitive). Content is then sniffed from the bytes, so a
#: text file named ``x.jpg`` is reported as unreadable rather than skipped silently.
IMAGE_EXTENSIONS = frozenset(
    {
        ".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".gif", ".webp", ".bmp", ".dib",
        ".tif", ".tiff", ".ico", ".avif", ".heic", ".heif", ".jp2", ".j2k", ".jpf", ".ppm",
        ".pgm", ".pbm", ".pnm", ".qoi",
    }
)  # fmt: skip

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,      -- relative to the folder, '/' separators
    size INTEGER NOT NULL,          -- bytes
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    sha256 BLOB NOT NULL,           -- 32 bytes
    format TEXT,                    -- Pillow's name: JPEG, PNG, WEBP, ...
    width INTEGER NOT NULL,         -- after EXIF orientation
    height INTEGER NOT NULL,
    mode TEXT NOT NULL,             -- as stored: RGB, P, RGBA, I;16, ...
    lossless INTEGER,               -- 1, 0 or NULL (unknown)
    jpeg_quality INTEGER,           -- IJG-scale estimate, JPEG only
    ahash INTEGER NOT NULL,         -- 64-bit hashes as signed integers
    dhash INTEGER NOT NULL,
    phash INTEGER NOT NULL,
    whash INTEGER NOT NULL,
    thumb BLOB NOT NULL             -- THUMB_SIDE² grey bytes, row-major
);
CREATE INDEX IF NOT EXISTS files_sha256 ON files (sha256);
CREATE TABLE IF NOT EXISTS unreadable (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    inode INTEGER NOT NULL,
    reason TEXT NOT NULL
);
-- 'generation' counts changes to the hash columns, whoever writes them: it tells whether the
-- cached search table beside the database (index.db-hashes.npy) is still current.
INSERT OR IGNORE INTO meta (key, value) VALUES ('generation', '0');
CREATE TRIGGER IF NOT EXISTS files_insert AFTER INSERT ON files BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS files_update AFTER UPDATE OF id, phash, dhash ON files BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS files_delete AFTER DELETE ON files BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
"""

# Added after schema version 2 without changing it (an older samepix ignores the table): the
# crop hashes of each file (samepix.crophash). Created in an existing index when it is opened for
# writing; files without a row get theirs at the next update (decoded once more).
_CROP_SCHEMA = """
CREATE TABLE IF NOT EXISTS crop_hashes (
    id INTEGER PRIMARY KEY,         -- files.id
    hashes BLOB NOT NULL            -- crophash.STORED_CROPS × (pHash, dHash), int64 each
);
CREATE TRIGGER IF NOT EXISTS crop_hashes_insert AFTER INSERT ON crop_hashes BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';
END;
CREATE TRIGGER IF NOT EXISTS files_delete_crops AFTER DELETE ON files BEGIN
    DELETE FROM crop_hashes WHERE id = old.id;
END;
"""

_ENTRY_COLUMNS = (
    "path, size, mtime_ns, inode, sha256, format, width, height, mode, lossless, jpeg_quality, "
    "ahash, dhash, phash, whash, thumb"
)

# Commit at least this often while decoding, so a killed update keeps what it finished.
_COMMIT_EVERY_S = 1.0
_COMMIT_EVERY_ROWS = 500
# Rows read from SQLite per batch when the search table is loaded.
_LOAD_BATCH = 65536


# ---------------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True)
class Descriptor:
    """What the index keeps about an image's content (independent of where the file is)."""

    sha256: str  # hex
    format: str | None
    width: int
    height: int
    mode: str
    lossless: bool | None
    jpeg_quality: int | None
    hashes: HashSet
    thumb: bytes  # THUMB_SIDE × THUMB_SIDE grey, row-major
    # Hashes of crops (samepix.crophash.STORED_CROPS), int64 pairs; b"" where not read or made.
    crops: bytes = field(default=b"", repr=False, compare=False)


@dataclass(frozen=True)
class IndexEntry:
    """One indexed image file: where it is, how it looked on disk, and its :class:`Descriptor`.

    Parameters
    ----------
    path : str
        Relative to the indexed folder, with ``/`` separators.
    size, mtime_ns, inode : int
        ``os.stat`` values when the file was read; an update re-reads the file when any differs.
    descriptor : Descriptor
        Content hash, format, size in pixels, perceptual hashes, thumbnail.
    """

    path: str
    size: int
    mtime_ns: int
    inode: int
    descriptor: Descriptor

    @property
    def sha256(self) -> str:
        return self.descriptor.sha256

    @property
    def hashes(self) -> HashSet:
        return self.descriptor.hashes

    @property
    def pixels(self) -> int:
        return self.descriptor.width * self.descriptor.height

    def to_row(self) -> tuple[Any, ...]:
        """The SQLite row (columns in ``_ENTRY_COLUMNS`` order)."""
        d = self.descriptor
        return (
            self.path,
            self.size,
            self.mtime_ns,
            self.inode,
            bytes.fromhex(d.sha256),
            d.format,
            d.width,
            d.height,
            d.mode,
            None if d.lossless is None else int(d.lossless),
            d.jpeg_quality,
            d.hashes.ahash.to_signed64(),
            d.hashes.dhash.to_signed64(),
            d.hashes.phash.to_signed64(),
            d.hashes.whash.to_signed64(),
            d.thumb,
        )

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> IndexEntry:
        """Inverse of :meth:`to_row`."""
        from .hashes import HashSet, ImageHash

        (path, size, mtime_ns, inode, sha, fmt, width, height, mode, lossless, quality,
         ahash, dhash, phash, whash, thumb) = row  # fmt: skip
        path = from_db(path)  # a name that is not UTF-8 is kept as its bytes (samepix.names)
        hashes = HashSet(
            ahash=ImageHash.from_signed64("ahash", ahash),
            dhash=ImageHash.from_signed64("dhash", dhash),
            phash=ImageHash.from_signed64("phash", phash),
            whash=ImageHash.from_signed64("whash", whash),
        )
        descriptor = Descriptor(
            sha256=bytes(sha).hex(),
            format=fmt,
            width=width,
            height=height,
            mode=mode,
            lossless=None if lossless is None else bool(lossless),
            jpeg_quality=quality,
            hashes=hashes,
            thumb=bytes(thumb),
        )
        return cls(path, size, mtime_ns, inode, descriptor)


@dataclass(frozen=True)
class Unreadable:
    """A file under the folder that could not be indexed, and why (one line)."""

    path: str
    reason: str


@dataclass(frozen=True)
class IndexSummary:
    """What one :func:`update_index` did.

    ``added``/``updated``/``moved``/``removed`` count files; ``moved`` are files recognised by their
    content hash at a new path (not decoded again); ``decoded`` counts the files whose pixels were
    decoded in this update; ``unreadable`` lists every image file of the folder that cannot be
    indexed now (new ones and ones already known to be unreadable and unchanged since).
    """

    root: Path
    db: Path
    total: int
    added: int = 0
    updated: int = 0
    moved: int = 0
    removed: int = 0
    unchanged: int = 0
    decoded: int = 0
    unreadable: tuple[Unreadable, ...] = ()
    moves: tuple[tuple[str, str], ...] = ()  # (old path, new path)
    elapsed_s: float = 0.0
    skipped_links: int = 0  # symbolic links leading out of the folder, not followed

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.moved or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "db": str(self.db),
            "total": self.total,
            "added": self.added,
            "updated": self.updated,
            "moved": self.moved,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "decoded": self.decoded,
            "unreadable": [{"path": u.path, "reason": u.reason} for u in self.unreadable],
            "moves": [{"from": a, "to": b} for a, b in self.moves],
            "skipped_links": self.skipped_links,
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class Progress:
    """A progress report: ``done`` of ``total`` items of the current ``stage``."""

    # index: "scanning", "hashing", "decoding"; dupes: "loading", "searching", "screening",
    # "comparing candidate pairs", "comparing turned" (with --flip/--rotation-is-same),
    # "comparing crops" (with --crop-is-same),
    # "comparing copies with the best"; sync: "syncing" (URLs)
    stage: str
    done: int
    total: int


ProgressCallback = Callable[[Progress], None]


@dataclass(frozen=True, eq=False)
class HashTable:
    """Every entry's row id and pHash/dHash as numpy arrays: the in-memory candidate search.

    24 bytes per entry (24 MB for 1,000,000 images); a query XORs and popcounts both columns.
    """

    ids: np.ndarray  # int64
    phash: np.ndarray  # int64 (the 64 bits of the hash, signed as stored)
    dhash: np.ndarray  # int64

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def candidates(self, hashes: HashSet, max_distance: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ids with pHash or dHash within ``max_distance``, closest first, and their distance.

        The distance returned is the smaller of the two: pHash finds re-encodes and resizes,
        dHash adds the copies whose pHash moved a little more (brightness, gamma).
        """
        import numpy as np

        from .hashes import hamming_distances

        dp = hamming_distances(hashes.phash.to_signed64(), self.phash)
        dd = hamming_distances(hashes.dhash.to_signed64(), self.dhash)
        dist = np.minimum(dp, dd)
        hits = np.flatnonzero(dist <= max_distance)
        order = np.argsort(dist[hits], kind="stable")
        return self.ids[hits[order]], dist[hits[order]]


@dataclass(frozen=True, eq=False)
class CropTable:
    """Every entry's crop hashes (:mod:`samepix.crophash`): row ids and an ``(n, slots, 2)``
    int64 array of pHash/dHash (784 bytes an entry), loaded only for a crop search.

    ``missing`` counts the indexed files that have no crop hashes yet (an index made by an
    older samepix, used without an update or read-only): a crop of them cannot be found.
    """

    ids: np.ndarray  # int64
    hashes: np.ndarray  # int64, (n, slots, 2)
    missing: int = 0

    def __len__(self) -> int:
        return int(self.ids.shape[0])


class EntryCache:
    """Index entries by their position in a :class:`HashTable`, read from SQLite on demand.

    ``dupes`` over 1,000,000 entries needs only the few it screens or groups: reading every row
    (``Index.entries()``) would hold about 2 GB of Python objects. At most ``capacity`` entries
    are kept (least recently used go first); :meth:`prefetch` reads many in a few queries.
    A position whose row is gone (deleted by another process since the table was loaded) gives
    None.
    """

    def __init__(self, index: Index, ids: np.ndarray, *, capacity: int = 65536) -> None:
        self._index = index
        self._ids = ids
        self._capacity = max(1, capacity)
        self._cache: OrderedDict[int, IndexEntry | None] = OrderedDict()

    def __len__(self) -> int:
        return int(self._ids.shape[0])

    def get(self, position: int) -> IndexEntry | None:
        if position not in self._cache:
            self.prefetch([position])
        self._cache.move_to_end(position)
        return self._cache[position]

    def prefetch(self, positions: Iterable[int]) -> None:
        """Read the entries at ``positions`` not held yet (500 a query)."""
        wanted = [p for p in dict.fromkeys(positions) if p not in self._cache]
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            found = self._index.by_ids(int(self._ids[p]) for p in chunk)
            for p in chunk:
                self._cache[p] = found.get(int(self._ids[p]))
        while len(self._cache) > self._capacity:
            self._cache.popitem(last=False)


# ---------------------------------------------------------------------------------------------
# Describing one image (runs in worker processes too)


def describe_blob(blob: Blob, *, limits: Limits = DEFAULT_LIMITS) -> Descriptor:
    """Describe encoded image bytes for the index: header facts, hashes and thumbnail.

    The hashes and the thumbnail come from :func:`samepix.decode.draft_grey` (a DCT-scaled decode
    for JPEG), the same path a query takes, so an indexed file and a query of the same bytes get
    the same bits.

    Raises
    ------
    DecodeError, LimitExceeded
        Not an image, corrupt or truncated data, too many pixels.
    """
    from PIL import Image

    from .crophash import crop_hashes
    from .decode import draft_grey, read_info
    from .hashes import hash_image

    info = read_info(blob, limits=limits)
    grey = draft_grey(blob, limits=limits)
    hashes = hash_image(grey)
    crops = crop_hashes(grey).tobytes()
    # BOX is an exact area average: a resized copy has (nearly) the original's thumbnail.
    thumb = grey.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
    return Descriptor(
        sha256=hashlib.sha256(blob.data).hexdigest(),
        format=info.format,
        width=info.width,
        height=info.height,
        mode=info.mode,
        lossless=info.lossless,
        jpeg_quality=info.jpeg_quality,
        hashes=hashes,
        thumb=thumb,
        crops=crops,
    )


def as_folder(location: str | os.PathLike[str]) -> Path:
    """A local folder as a Path; a folder on object storage (``s3://...``) as an
    :class:`~samepix.storage.ObjectPath`, which does the Path operations the index uses."""
    text = os.fspath(location)
    from .storage import is_object_url

    if is_object_url(text):
        from .storage import ObjectPath

        return cast(Path, ObjectPath(text))
    return Path(text)


def _is_object(path: Path) -> bool:
    return not isinstance(path, Path)


def _read_file(path: Path, limits: Limits, listed: Any = None) -> tuple[bytes, os.stat_result]:
    """The bytes of a file and the ``fstat`` of the handle they were read from (for an object:
    an ObjectStat, with the same fields; ``listed``, its stat from the listing, saves a HEAD)."""
    if _is_object(path):
        return cast(Any, path).read(limits, listed=listed)  # type: ignore[no-any-return]
    with path.open("rb") as handle:
        st = os.fstat(handle.fileno())
        if st.st_size > limits.max_bytes:
            raise LimitExceeded(
                f"{st.st_size:,} bytes exceeds the limit of {limits.max_bytes:,} (--max-bytes)"
            )
        data = handle.read(limits.max_bytes + 1)
    if len(data) > limits.max_bytes:
        raise LimitExceeded(f"more than {limits.max_bytes:,} bytes (--max-bytes)")
    return data, st


def _describe_file(
    root: str, rel: str, limits: Limits, listed: Any = None
) -> IndexEntry | Unreadable:
    from .sources import Blob

    path = as_folder(root) / rel
    try:
        data, st = _read_file(path, limits, listed)
        descriptor = describe_blob(Blob(data=data, name=rel, path=path), limits=limits)
    except OSError as exc:
        return Unreadable(rel, f"cannot read ({exc.strerror or exc})")
    except SamepixError as exc:
        return Unreadable(rel, _strip_name(str(exc), rel))
    except Exception as exc:  # a decoder bug on one hostile file must not stop a whole folder
        return Unreadable(rel, f"cannot decode ({type(exc).__name__}: {exc})")
    return IndexEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, descriptor)


@dataclass(frozen=True)
class DescribeShard:
    """One unit of indexing work: files of one folder to describe (picklable, small)."""

    root: str
    paths: tuple[str, ...]
    limits: Limits
    #: Objects only: each path's stat from the bucket listing (size, mtime, ETag digest).
    listed: tuple[Any, ...] = ()


def describe_shard(shard: DescribeShard) -> list[IndexEntry | Unreadable]:
    """Describe every file of ``shard``: the per-shard work of ``index``, wherever it runs (this
    process, a local worker process, a Dask worker)."""
    listed = shard.listed or (None,) * len(shard.paths)
    return [
        _describe_file(shard.root, rel, shard.limits, stat)
        for rel, stat in zip(shard.paths, listed, strict=True)
    ]


def _strip_name(message: str, name: str) -> str:
    prefix = f"{name}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def _sha256_file(
    root: Path, rel: str, limits: Limits, listed: Any = None
) -> tuple[str, str | None, Any]:
    """(rel, hex digest or None, stat or the reason it failed); threads: hashlib drops the GIL."""
    try:
        data, st = _read_file(root / rel, limits, listed)
    except OSError as exc:
        return rel, None, f"cannot read ({exc.strerror or exc})"
    except SamepixError as exc:
        return rel, None, str(exc)
    return rel, hashlib.sha256(data).hexdigest(), st


# ---------------------------------------------------------------------------------------------
# The database


def default_db_path(root: str | os.PathLike[str]) -> Path:
    """``ROOT/.samepix/index.db``; for a folder on object storage, a file on this machine
    (:func:`samepix.storage.remote_db_path`): the bucket is only read."""
    from .storage import is_object_url

    if is_object_url(os.fspath(root)):
        from .storage import remote_db_path

        return remote_db_path(os.fspath(root))
    return Path(root) / STATE_DIR / DEFAULT_DB_NAME


class Index:
    """An open folder index (one SQLite connection; not shared between threads).

    Parameters
    ----------
    root : path
        The indexed folder.
    db : path, optional
        The database file; default ``ROOT/.samepix/index.db``.
    create : bool
        Create the database (and its folder) when missing.
    read_only : bool
        Open the database for reading only. An existing index that this process cannot write
        (a read-only folder or file system, another user's index) is opened so anyway: finding
        and listing work, and a write that would be needed fails with a
        :class:`~samepix.errors.WriteFailed` that says why.

    Raises
    ------
    SourceError
        ``root`` is not a folder, or the database cannot be created.
    IndexCorrupt
        The file is not a samepix index, is damaged, or was written by a newer samepix; the
        message names the file and ``samepix index --rebuild``.
    WriteFailed
        The database could not be written: disk full, file-size limit, read-only.
    UsageError
        A ``db`` given explicitly belongs to another folder.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        db: str | os.PathLike[str] | None = None,
        *,
        create: bool = True,
        read_only: bool = False,
    ) -> None:
        self.root = as_folder(root)
        if isinstance(self.root, Path):
            require_folder(self.root)  # "no such folder" or "not a folder"
        elif not self.root.is_dir():
            raise SourceError(f"{self.root}: not a folder")
        self.explicit_db = db is not None
        self.path = Path(db) if db is not None else default_db_path(self.root)
        self._table: HashTable | None = None
        self._crops: CropTable | None = None
        self.read_only = read_only or (self.path.exists() and not _writable(self.path))
        self.conn = self._open(create)

    # -- opening ---------------------------------------------------------------------------

    def corrupt(self, exc: BaseException | str) -> SamepixError:
        """The error for a failed database operation, naming the file and the way out.

        Only a damaged file is called corrupted (and ``--rebuild`` suggested): a full disk, a
        file-size limit or a read-only place is a :class:`~samepix.errors.WriteFailed` that
        says which (a rebuild would throw away sync's records for nothing), a lock says so.
        """
        if isinstance(exc, BaseException):
            what = sqlite_errors.kind(exc)
            if what in ("full", "io", "readonly", "cantopen"):
                why = sqlite_errors.why_not_written(self.path, exc)
                return self.cannot_write(why, read_only=what in ("readonly", "cantopen"))
            if what == "locked":
                return SamepixError(
                    f"{self.path}: index is locked by another samepix process; try again later"
                )
        return IndexCorrupt(
            f"{self.path}: index database is unreadable or corrupted ({exc}); "
            f"rebuild it with: samepix index --rebuild {self.root}"
            + (f" --db {self.path}" if self.explicit_db else "")
        )

    def _unwritable(self, message: str) -> SourceError:
        """The error for an index that cannot be written here, with the way out (``--db``)."""
        if self.explicit_db or os.access(self.path.parent, os.W_OK):
            return SourceError(message)
        return SourceError(f"{message}; keep the index elsewhere with --db PATH (Library(db=...))")

    def cannot_write(self, why: str, *, read_only: bool = True) -> WriteFailed:
        """The error for an index that cannot be written now, with the ways out."""
        if read_only:
            out = "use the index as it is (--no-update), or keep an index elsewhere (--db PATH)"
        else:
            out = "free some space, then run again (or keep the index elsewhere: --db PATH)"
        return WriteFailed(
            f"{self.path}: cannot write the index ({why}); nothing in it was lost: {out}"
        )

    def _open(self, create: bool) -> sqlite3.Connection:
        exists = self.path.exists()
        if not exists and not create:
            raise SourceError(f"{self.path}: no index (run: samepix index {self.root})")
        if self.read_only:
            if not exists:
                raise SourceError(f"{self.path}: no index (run: samepix index {self.root})")
            return self._open_read_only()
        if not exists:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise self._unwritable(
                    f"{self.path.parent}: cannot create the index folder ({exc.strerror or exc})"
                ) from exc
        try:
            # isolation_level=None: transactions are explicit (BEGIN ... COMMIT) below.
            # NameConnection: file names that are not UTF-8 are stored as their bytes.
            conn = sqlite3.connect(
                self.path, timeout=30.0, isolation_level=None, factory=NameConnection
            )
        except sqlite3.Error as exc:
            raise self._unwritable(f"{self.path}: cannot open the index ({exc})") from exc
        try:
            conn.execute("PRAGMA busy_timeout = 30000")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            tables = {
                r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
            if version > SCHEMA_VERSION:
                raise IndexCorrupt(
                    f"{self.path}: index schema version {version} is newer than this samepix "
                    f"understands ({SCHEMA_VERSION}); upgrade samepix or rebuild with: "
                    f"samepix index --rebuild {self.root}"
                )
            if version == 0 and tables:
                raise self.corrupt("not a samepix index: unknown tables, no schema version")
            if version == SCHEMA_VERSION and not {"files", "unreadable", "meta"} <= tables:
                raise self.corrupt("tables missing")
            # WAL: readers never block the writer, and a crash mid-commit rolls back cleanly.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
            if 0 < version < SCHEMA_VERSION:
                # Descriptions made another way would not match a query's: describe the files
                # again, in one transaction. Sync's URL records stay: they name files and bytes.
                conn.executescript(
                    "BEGIN IMMEDIATE; DELETE FROM files; DELETE FROM unreadable; "
                    f"PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
            if version == 0:
                # One transaction: the schema and its version land together, or not at all.
                conn.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA}; PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;"
                )
                conn.execute("BEGIN IMMEDIATE")
                self._set_meta(conn, "root", str(self.root.resolve()))
                self._set_meta(conn, "created", time.strftime("%Y-%m-%dT%H:%M:%S%z"))
                conn.execute("COMMIT")
            self._add_crop_table(conn)
            self._check_root(conn)
        except sqlite3.DatabaseError as exc:
            conn.close()
            if not os.access(self.path.parent, os.W_OK):  # read-only, not damaged
                raise self._unwritable(
                    f"{self.path}: cannot open the index in a read-only folder ({exc})"
                ) from exc
            raise self.corrupt(exc) from exc
        except BaseException:
            conn.close()
            raise
        return conn

    def _open_read_only(self) -> sqlite3.Connection:
        """A connection that never writes (``mode=ro``). A WAL database read where its
        ``-shm`` file cannot be made is opened ``immutable``: nobody can be writing it there."""
        from urllib.parse import quote

        base = f"file:{quote(os.fsencode(self.path.absolute()))}?mode=ro"
        last: sqlite3.Error | None = None
        for uri in (base, f"{base}&immutable=1"):
            conn: sqlite3.Connection | None = None
            try:
                conn = sqlite3.connect(
                    uri, uri=True, timeout=30.0, isolation_level=None, factory=NameConnection
                )
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                tables = {
                    r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
            except sqlite3.Error as exc:
                if conn is not None:
                    conn.close()
                last = exc
                continue
            if version != SCHEMA_VERSION or not {"files", "unreadable", "meta"} <= tables:
                conn.close()
                if version == 0 and not tables:
                    raise SourceError(f"{self.path}: no index (run: samepix index {self.root})")
                if 0 < version < SCHEMA_VERSION:
                    raise self.cannot_write(
                        f"it was written by an older samepix and must be updated, but "
                        f"{sqlite_errors.why_read_only(self.path)}"
                    )
                raise self.corrupt(f"schema version {version}, tables {sorted(tables)}")
            row = conn.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
            stored = None if row is None else from_db(row[0])
            here = str(self.root.resolve())
            if stored is not None and stored != here and self.explicit_db:
                conn.close()
                raise UsageError(f"{self.path}: this index belongs to {stored}, not to {here}")
            return conn
        assert last is not None
        raise self.corrupt(last) from last

    @staticmethod
    def _add_crop_table(conn: sqlite3.Connection) -> None:
        """The crop-hash table (an index from before it gets it, empty: the next update fills
        it), made again empty when its grid is not this samepix's."""
        from .crophash import STORED_CROPS_ID

        row = conn.execute("SELECT value FROM meta WHERE key = 'crop_grid'").fetchone()
        if row is not None and row[0] == STORED_CROPS_ID:
            return
        conn.executescript(
            f"BEGIN IMMEDIATE; {_CROP_SCHEMA}; DELETE FROM crop_hashes; UPDATE meta "
            "SET value = CAST(value AS INTEGER) + 1 WHERE key = 'generation';"
        )
        try:
            Index._set_meta(conn, "crop_grid", STORED_CROPS_ID)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    @staticmethod
    def _set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _check_root(self, conn: sqlite3.Connection) -> None:
        row = conn.execute("SELECT value FROM meta WHERE key = 'root'").fetchone()
        here = str(self.root.resolve())
        stored = None if row is None else from_db(row[0])
        if stored is not None and stored != here and self.explicit_db:
            # An index kept elsewhere must not be applied to another folder; one inside the folder
            # simply moved with it, which is fine.
            raise UsageError(f"{self.path}: this index belongs to {stored}, not to {here}")
        if stored != here:
            conn.execute("BEGIN IMMEDIATE")
            self._set_meta(conn, "root", here)
            conn.execute("COMMIT")

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def remove_files(db: str | os.PathLike[str]) -> None:
        """Delete an index database and its WAL/shared-memory files (for ``--rebuild``)."""
        base = Path(db)
        for suffix in ("", "-wal", "-shm", "-journal", "-hashes.npy", "-crops.npy"):
            try:
                Path(f"{base}{suffix}").unlink()
            except FileNotFoundError:
                pass
            except OSError as exc:
                raise WriteFailed(
                    f"{base}: cannot delete the index to rebuild it ({exc.strerror or exc}); "
                    "keep the new index elsewhere with --db PATH"
                ) from exc

    # -- reading ---------------------------------------------------------------------------

    def _query(self, sql: str, params: Iterable[Any] = ()) -> list[Any]:
        try:
            return self.conn.execute(sql, tuple(params)).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self.corrupt(exc) from exc

    def __len__(self) -> int:
        return int(self._query("SELECT count(*) FROM files")[0][0])

    def entries(self) -> list[IndexEntry]:
        """Every entry, by path."""
        return [
            IndexEntry.from_row(r)
            for r in self._query(f"SELECT {_ENTRY_COLUMNS} FROM files ORDER BY path")
        ]

    def get(self, path: str) -> IndexEntry | None:
        rows = self._query(f"SELECT {_ENTRY_COLUMNS} FROM files WHERE path = ?", (path,))
        return IndexEntry.from_row(rows[0]) if rows else None

    def by_ids(self, ids: Iterable[int]) -> dict[int, IndexEntry]:
        """Entries by row id (ids no longer present are left out)."""
        wanted = [int(i) for i in ids]
        found: dict[int, IndexEntry] = {}
        for start in range(0, len(wanted), 500):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in self._query(
                f"SELECT id, {_ENTRY_COLUMNS} FROM files WHERE id IN ({marks})", chunk
            ):
                found[row[0]] = IndexEntry.from_row(row[1:])
        return found

    def by_sha256(self, digest: str) -> list[IndexEntry]:
        rows = self._query(
            f"SELECT {_ENTRY_COLUMNS} FROM files WHERE sha256 = ? ORDER BY path",
            (bytes.fromhex(digest),),
        )
        return [IndexEntry.from_row(r) for r in rows]

    def first_by_sha256(self, digest: str) -> IndexEntry | None:
        """The first file indexed with these bytes (the oldest row), or None: one index lookup
        however many copies the folder holds (:meth:`by_sha256` reads every one of them)."""
        rows = self._query(
            f"SELECT {_ENTRY_COLUMNS} FROM files WHERE sha256 = ? ORDER BY id LIMIT 1",
            (bytes.fromhex(digest),),
        )
        return IndexEntry.from_row(rows[0]) if rows else None

    def unreadable(self) -> list[Unreadable]:
        return [
            Unreadable(from_db(p), from_db(r))
            for p, r in self._query("SELECT path, reason FROM unreadable ORDER BY path")
        ]

    def hash_table(self, progress: ProgressCallback | None = None) -> HashTable:
        """The candidate-search arrays (loaded once, reloaded after this object writes).

        Reading 1,000,000 rows through sqlite3 takes about 2 s, so the arrays are also kept in
        ``<db>-hashes.npy`` beside the database (24 bytes an entry, loaded in milliseconds) and
        used while the database's change counter (``meta.generation``, kept by triggers) says
        they are current. Rows are read in batches straight into preallocated arrays: the load
        never holds more than the arrays and one batch (``progress`` gets ``"loading"`` reports).
        """
        if self._table is None:
            import numpy as np

            flat, _ = self._cached_rows(
                Path(f"{self.path}-hashes.npy"), 3, lambda: self._read_hashes(progress)
            )
            self._table = HashTable(
                ids=np.ascontiguousarray(flat[:, 0]),
                phash=np.ascontiguousarray(flat[:, 1]),
                dhash=np.ascontiguousarray(flat[:, 2]),
            )
        if progress:
            progress(Progress("loading", len(self._table), len(self._table)))
        return self._table

    def crop_table(self) -> CropTable:
        """The crop hashes of every entry that has them (loaded once; reloaded after writes).

        Kept in ``<db>-crops.npy`` beside the database like the hash table (read in
        milliseconds while ``meta.generation`` says it is current).
        """
        if self._crops is None:
            import numpy as np

            from .crophash import STORED_CROPS

            slots = len(STORED_CROPS)

            def read() -> np.ndarray:
                tables = {
                    r[0]
                    for r in self.conn.execute("SELECT name FROM sqlite_master WHERE type='table'")
                }
                if "crop_hashes" not in tables:  # an index made before crop hashes
                    return np.zeros((0, 1 + 2 * slots), np.int64)
                return self._read_crops(slots)

            flat, total = self._cached_rows(
                Path(f"{self.path}-crops.npy"), 1 + 2 * slots, read, count_files=True
            )
            self._crops = CropTable(
                ids=np.ascontiguousarray(flat[:, 0]),
                hashes=np.ascontiguousarray(flat[:, 1:]).reshape(-1, slots, 2),
                missing=total - flat.shape[0],
            )
        return self._crops

    def _cached_rows(
        self,
        cache: Path,
        columns: int,
        read: Callable[[], np.ndarray],
        *,
        count_files: bool = False,
    ) -> tuple[np.ndarray, int]:
        """``read()``'s (n, ``columns``) rows, or ``cache``'s while ``meta.generation`` says it
        is current (``read()``'s are saved there otherwise), and with ``count_files`` the number
        of files (else -1): one snapshot for the counter, the rows and the count."""
        try:
            self.conn.execute("BEGIN")
            try:
                row = self.conn.execute(
                    "SELECT value FROM meta WHERE key = 'generation'"
                ).fetchone()
                generation = int(row[0]) if row else -1
                total = -1
                if count_files:  # a scan of the table: only where it is needed
                    total = int(self.conn.execute("SELECT count(*) FROM files").fetchone()[0])
                flat = _load_table_cache(cache, generation, columns)
                if flat is None:
                    flat = read()
                    if generation >= 0:
                        _save_table_cache(cache, generation, flat)
            finally:
                self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self.corrupt(exc) from exc
        return flat, total

    def _read_crops(self, slots: int) -> np.ndarray:
        """(n, 1 + 2 × slots) int64 rows: id, then the crop hashes (inside a read transaction).
        A row of another length (written with another grid) is left out."""
        import numpy as np

        cur = self.conn.execute(
            "SELECT c.id, c.hashes FROM crop_hashes c JOIN files f ON f.id = c.id ORDER BY c.id"
        )
        width = 1 + 2 * slots
        parts: list[np.ndarray] = []
        while rows := cur.fetchmany(_LOAD_BATCH):
            good = [r for r in rows if len(r[1]) == 16 * slots]
            block = np.empty((len(good), width), np.int64)
            block[:, 0] = [r[0] for r in good]
            if good:
                block[:, 1:] = np.frombuffer(b"".join(r[1] for r in good), np.int64).reshape(
                    len(good), 2 * slots
                )
            parts.append(block)
        return np.concatenate(parts) if parts else np.zeros((0, width), np.int64)

    def _read_hashes(self, progress: ProgressCallback | None) -> np.ndarray:
        """(n, 3) int64 id/pHash/dHash rows by id, read in batches (inside a read transaction)."""
        import numpy as np

        total = int(self.conn.execute("SELECT count(*) FROM files").fetchone()[0])
        flat = np.empty((total, 3), dtype=np.int64)
        cur = self.conn.execute("SELECT id, phash, dhash FROM files ORDER BY id")
        done = 0
        while done < total:
            rows = cur.fetchmany(_LOAD_BATCH)
            if not rows:
                break
            flat[done : done + len(rows)] = rows
            done += len(rows)
            if progress:
                progress(Progress("loading", done, total))
        return flat[:done]

    def same_content_ids(self) -> list[list[int]]:
        """Row ids of the entries whose bytes are identical, a list per SHA-256 held twice or
        more (read through the ``sha256`` index: no other row is loaded)."""
        groups: dict[bytes, list[int]] = {}
        for sha, row_id in self._query(
            "SELECT sha256, id FROM files WHERE sha256 IN "
            "(SELECT sha256 FROM files GROUP BY sha256 HAVING count(*) > 1) ORDER BY sha256, id"
        ):
            groups.setdefault(bytes(sha), []).append(int(row_id))
        return list(groups.values())

    def entry_cache(self, ids: np.ndarray, *, capacity: int = 65536) -> EntryCache:
        """Entries by position in ``ids`` (a :class:`HashTable`'s), read on demand."""
        return EntryCache(self, ids, capacity=capacity)

    # -- writing ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: everything in it lands, or nothing does."""
        if self.read_only:
            raise self.cannot_write(sqlite_errors.why_read_only(self.path))
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise SamepixError(
                    f"{self.path}: index is locked by another samepix process; try again later"
                ) from exc
            raise self.corrupt(exc) from exc
        except sqlite3.DatabaseError as exc:
            raise self.corrupt(exc) from exc
        self._table = None
        self._crops = None
        try:
            yield self.conn
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise self.corrupt(exc) from exc

    def add(
        self,
        entry: IndexEntry,
        *,
        remove: Iterable[str] = (),
        also: Callable[[sqlite3.Connection], None] | None = None,
    ) -> None:
        """Record one file just put in place, in one transaction with ``also`` (a caller's own
        rows, e.g. sync's record of the URL), dropping the rows of ``remove``.

        Unlike a plain :meth:`transaction`, the in-memory search table is kept and patched
        rather than dropped: a sync adds files one at a time and searches between two adds,
        and reloading 1,000,000 rows after each would cost seconds.
        """
        import numpy as np

        table, crops = self._table, self._crops
        gone = [p for p in remove if p != entry.path]
        with self.transaction() as conn:
            gone_ids = [
                row[0]
                for p in gone
                for row in conn.execute("SELECT id FROM files WHERE path = ?", (p,))
            ]
            for p in gone:
                self.delete(conn, p)
            self.put(conn, entry)
            row_id = int(
                conn.execute("SELECT id FROM files WHERE path = ?", (entry.path,)).fetchone()[0]
            )
            if also is not None:
                also(conn)
        if table is not None:
            keep = ~np.isin(table.ids, [row_id, *gone_ids])
            hashes = entry.descriptor.hashes
            self._table = HashTable(
                ids=np.append(table.ids[keep], np.int64(row_id)),
                phash=np.append(table.phash[keep], np.int64(hashes.phash.to_signed64())),
                dhash=np.append(table.dhash[keep], np.int64(hashes.dhash.to_signed64())),
            )
        if crops is not None and len(entry.descriptor.crops) == crops.hashes.shape[1] * 16:
            keep = ~np.isin(crops.ids, [row_id, *gone_ids])
            new = np.frombuffer(entry.descriptor.crops, np.int64).reshape(1, -1, 2)
            self._crops = CropTable(
                ids=np.append(crops.ids[keep], np.int64(row_id)),
                hashes=np.concatenate([crops.hashes[keep], new]),
                missing=crops.missing,
            )

    @staticmethod
    def put(conn: sqlite3.Connection, entry: IndexEntry) -> None:
        """Insert or replace the row of ``entry.path`` (inside :meth:`transaction`)."""
        marks = ",".join("?" * 16)
        updates = ", ".join(f"{c} = excluded.{c}" for c in _ENTRY_COLUMNS.split(", ")[1:])
        conn.execute(
            f"INSERT INTO files ({_ENTRY_COLUMNS}) VALUES ({marks}) "
            f"ON CONFLICT (path) DO UPDATE SET {updates}",
            entry.to_row(),
        )
        conn.execute("DELETE FROM unreadable WHERE path = ?", (entry.path,))
        (row_id,) = conn.execute("SELECT id FROM files WHERE path = ?", (entry.path,)).fetchone()
        if entry.descriptor.crops:
            conn.execute(
                "INSERT OR REPLACE INTO crop_hashes (id, hashes) VALUES (?, ?)",
                (row_id, entry.descriptor.crops),
            )
        else:  # a copy or a move of described bytes: the crop hashes of those bytes
            # Those of the first other row with these bytes (every copy gets the same ones):
            # one index lookup. Joining every row of the SHA-256 with the crop table scanned
            # all earlier copies when the bytes have none: quadratic for thousands of copies.
            conn.execute(
                "INSERT OR REPLACE INTO crop_hashes (id, hashes) SELECT ?, c.hashes "
                "FROM crop_hashes c WHERE c.id = (SELECT f.id FROM files f "
                "WHERE f.sha256 = ? AND f.id != ? ORDER BY f.id LIMIT 1)",
                (row_id, bytes.fromhex(entry.sha256), row_id),
            )

    @staticmethod
    def put_unreadable(
        conn: sqlite3.Connection, path: str, st: os.stat_result | None, reason: str
    ) -> None:
        size, mtime, inode = (st.st_size, st.st_mtime_ns, st.st_ino) if st else (-1, -1, -1)
        conn.execute(
            "INSERT INTO unreadable (path, size, mtime_ns, inode, reason) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (path) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, "
            "inode = excluded.inode, reason = excluded.reason",
            (path, size, mtime, inode, reason),
        )
        conn.execute("DELETE FROM files WHERE path = ?", (path,))

    @staticmethod
    def delete(conn: sqlite3.Connection, path: str) -> None:
        conn.execute("DELETE FROM files WHERE path = ?", (path,))


def _writable(path: Path) -> bool:
    """Whether this process may write ``path`` and create files beside it (its -wal, -shm)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)


def _load_table_cache(path: Path, generation: int, columns: int = 3) -> np.ndarray | None:
    """The cached (n, columns) array (id/pHash/dHash, or id and crop hashes) if it was written
    at ``generation``, else None."""
    import numpy as np

    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError):
        return None
    # Row 0 is a header: (generation, rows, 0); anything unexpected means "rebuild it".
    if data.dtype != np.int64 or data.ndim != 2 or data.shape[1] != columns or data.shape[0] < 1:
        return None
    if int(data[0, 0]) != generation or int(data[0, 1]) != data.shape[0] - 1 or generation < 0:
        return None
    out: np.ndarray = data[1:]
    return out


def _save_table_cache(path: Path, generation: int, flat: np.ndarray) -> None:
    import numpy as np

    from .atomic import atomic_writer

    header = np.zeros((1, flat.shape[1]), dtype=np.int64)
    header[0, :2] = (generation, flat.shape[0])
    # A cache: a read-only folder is fine.
    with contextlib.suppress(OSError, SamepixError), atomic_writer(path) as handle:
        np.save(handle, np.concatenate([header, flat]), allow_pickle=False)


def require_folder(path: Path) -> None:
    """Raise :class:`SourceError` unless ``path`` is a folder: "no such folder" for a missing
    path, "not a folder" for a file."""
    if path.is_dir():
        return
    if os.path.lexists(path):
        raise SourceError(f"{path}: not a folder")
    raise SourceError(f"{path}: no such folder")


# ---------------------------------------------------------------------------------------------
# Walking the folder


class _Walked:
    """The files a walk has given so far, with their (device, inode), in a private temporary
    SQLite file (``sqlite3.connect("")``: deleted when closed; only its small page cache in
    memory): what tells a second name of a file already listed, and a row of the index whose
    file is gone, without a map of every file (a 10M-file folder is never held whole)."""

    _BATCH = 1000

    def __init__(self) -> None:
        db = sqlite3.connect("", isolation_level=None, factory=NameConnection)
        db.execute("PRAGMA journal_mode = OFF")
        db.execute("PRAGMA synchronous = OFF")
        db.execute(
            "CREATE TABLE walked (path TEXT PRIMARY KEY, dev INTEGER, ino INTEGER) WITHOUT ROWID"
        )
        self.db = db
        self._keyed = False  # the (device, inode) index, made when a second name is first asked
        self.count = 0
        self._pending: list[tuple[str, int, int]] = []
        self._matching = False  # the matched table, made when a file first takes a description
        self._matches: list[tuple[str, bytes, int]] = []

    def add(self, rel: str, st: os.stat_result) -> None:
        self._pending.append((rel, getattr(st, "st_dev", 0), st.st_ino))
        self.count += 1
        if len(self._pending) >= self._BATCH:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT INTO walked VALUES (?, ?, ?)", self._pending)
            self.db.execute("COMMIT")
            self._pending.clear()

    def has_file(self, st: os.stat_result) -> bool:
        """Whether the file ``st`` describes was given already (under any name)."""
        self._flush()
        if not self._keyed:  # most folders have no hard link and no link: no index to keep
            self.db.execute("CREATE INDEX walked_key ON walked (dev, ino)")
            self._keyed = True
        found = self.db.execute(
            "SELECT 1 FROM walked WHERE dev = ? AND ino = ? LIMIT 1", (st.st_dev, st.st_ino)
        )
        return found.fetchone() is not None

    def present(self, paths: list[str]) -> set[str]:
        """Those of ``paths`` the walk gave."""
        self._flush()
        marks = ",".join("?" * len(paths))
        rows = self.db.execute(f"SELECT path FROM walked WHERE path IN ({marks})", paths)
        return {from_db(p) for (p,) in rows}

    # Files that took the description of bytes the index held (a move, a copy, or a file now
    # holding another file's bytes), in walk order: which of them are moves is known only once
    # the walk has found every file that is gone.

    def matched(self, rel: str, digest: bytes, had_row: bool) -> None:
        if not self._matching:
            self.db.execute(
                "CREATE TABLE matched (seq INTEGER PRIMARY KEY, path TEXT, sha256 BLOB, "
                "had_row INTEGER)"
            )
            self.db.execute("CREATE INDEX matched_sha ON matched (sha256, seq)")
            self._matching = True
        self._matches.append((rel, digest, int(had_row)))
        if len(self._matches) >= self._BATCH:
            self._flush_matches()

    def _flush_matches(self) -> None:
        if self._matches:
            self.db.execute("BEGIN")
            self.db.executemany(
                "INSERT INTO matched (path, sha256, had_row) VALUES (?, ?, ?)", self._matches
            )
            self.db.execute("COMMIT")
            self._matches.clear()

    def first_matched(self, digest: bytes, count: int) -> list[tuple[int, str, bool]]:
        """The first ``count`` matched files holding ``digest``: (walk position, path, had a
        row)."""
        if not self._matching:
            return []
        self._flush_matches()
        rows = self.db.execute(
            "SELECT seq, path, had_row FROM matched WHERE sha256 = ? ORDER BY seq LIMIT ?",
            (digest, count),
        )
        return [(seq, from_db(p), bool(had)) for seq, p, had in rows]

    def matched_counts(self) -> tuple[int, int]:
        """Matched files without a row of their own before, and with one."""
        if not self._matching:
            return 0, 0
        self._flush_matches()
        without, with_row = self.db.execute(
            "SELECT COUNT(*) - COALESCE(SUM(had_row), 0), COALESCE(SUM(had_row), 0) FROM matched"
        ).fetchone()
        return int(without), int(with_row)

    def close(self) -> None:
        with contextlib.suppress(sqlite3.Error):
            self.db.close()


class _Walk:
    """The image files of a folder, given one at a time by :meth:`files` (the order a sorted
    list of them had: real paths by name, then paths through a symbolic link by name), each
    file once. ``problems`` and ``links_out`` are complete once :meth:`files` is."""

    def __init__(self) -> None:
        self.problems: dict[str, str] = {}  # rel path -> reason
        self.links_out = 0  # symbolic links leading out of the folder, not followed
        self.walked = _Walked()

    def files(self) -> Iterator[tuple[str, os.stat_result]]:
        raise NotImplementedError

    def close(self) -> None:
        self.walked.close()


# What a file that is neither a folder nor a regular file is, for the summary.
_SPECIAL = (
    (stat_module.S_ISFIFO, "a named pipe (FIFO)"),
    (stat_module.S_ISSOCK, "a socket"),
    (stat_module.S_ISCHR, "a character device"),
    (stat_module.S_ISBLK, "a block device"),
)


def _special_kind(mode: int) -> str | None:
    return next((what for test, what in _SPECIAL if test(mode)), None)


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class _FolderWalk(_Walk):
    """Every image file under ``root``; symbolic links followed only where they stay inside it.

    A symbolic link whose target lies outside the folder (a link to ``/``, to ``/proc``, to
    another user's pictures) is not followed, only counted (``links_out``), unless
    ``follow_links``. Directories are identified by (device, inode): a symlink back to an
    ancestor, or two links to one folder, is entered once, so following links never loops.
    Files too: a hard link or symlink to a file already seen is the same file, not a copy, and
    is listed once. Real paths win over paths through a symbolic link (every real folder is
    walked before any linked one), then name order decides.

    Nothing but folders and regular files is opened: a FIFO (opening one blocks), a socket or a
    device is listed in ``problems`` with what it is. Names are the file system's, as Python
    gives them (bytes that are not UTF-8 held as lone surrogates).

    Streaming: the real folders are walked depth first with each folder's entries in the order
    of their paths (a folder's name counts with its "/"), so files come out in path order as
    they are found; only the folders on the way down, and what was reached through a link
    (walked last, as before), are held. A file is looked up among those already given (by
    device and inode) only where it may be a second name: more than one hard link, or reached
    through a link.
    """

    def __init__(self, root: Path, skip: set[Path], *, follow_links: bool = False) -> None:
        super().__init__()
        self.root = root
        self.skip = skip
        self.follow_links = follow_links
        self.real_root = os.path.realpath(root)
        self.seen_dirs: set[tuple[int, int]] = set()
        self.through_links: list[tuple[str, os.stat_result]] = []
        # Linked folders met in the real walk: (its folder's path parts, name, path, rel).
        self.links_met: list[tuple[tuple[str, ...], str, Path, str]] = []

    def files(self) -> Iterator[tuple[str, os.stat_result]]:
        # Real folders, depth first; each one's entries in path order.
        stack: list[Iterator[tuple[str, Any, str]]] = []
        top = self._list(self.root, "", via_link=False)
        if top is not None:
            stack.append(iter(top))
        while stack:
            entry = next(stack[-1], None)
            if entry is None:
                stack.pop()
                continue
            kind, what, rel = entry
            if kind == "dir":
                children = self._list(what, rel, via_link=False)
                if children is not None:
                    stack.append(iter(children))
                continue
            fst = cast(os.stat_result, what)
            if fst.st_nlink > 1 and self.walked.has_file(fst):
                continue  # a hard link to a file given already
            self.walked.add(rel, fst)
            yield rel, fst
        # Then every folder reached through a link, in the order the walk met them (as the
        # whole walk did before it streamed), and each file reached through a link, by path.
        linked: list[tuple[Path, str]] = []
        by_folder: dict[tuple[str, ...], list[tuple[Path, str]]] = {}
        for parts, _name, path, rel in sorted(self.links_met, key=lambda m: (m[0], m[1])):
            by_folder.setdefault(parts, []).append((path, rel))
        for links in by_folder.values():
            linked.extend(reversed(links))
        while linked:
            folder, rel = linked.pop()
            children = self._list(folder, rel, via_link=True)
            sublinks = [(what, child) for kind, what, child in children or () if kind == "dir"]
            linked.extend(reversed(sublinks))
        for rel, fst in sorted(self.through_links, key=lambda f: f[0]):
            if not self.walked.has_file(fst):
                self.walked.add(rel, fst)
                yield rel, fst
        self.through_links = []

    def _list(self, folder: Path, rel: str, *, via_link: bool) -> list[tuple[str, Any, str]] | None:
        """The sub-folders and image files of ``folder``, in path order: ``("dir", Path, rel)``
        and ``("file", stat, rel)``. Files reached through a link, and folders through a link
        met in a real folder, are put aside for the end; None if the folder is not walked."""
        try:
            st = folder.stat()
        except OSError as exc:
            self.problems[rel or "."] = f"cannot open folder ({exc.strerror or exc})"
            return None
        key = (st.st_dev, st.st_ino)
        if key in self.seen_dirs:
            return None
        self.seen_dirs.add(key)
        try:
            with os.scandir(folder) as it:
                items = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            self.problems[rel or "."] = f"cannot list folder ({exc.strerror or exc})"
            return None
        out: list[tuple[str, str, Any]] = []  # (sort key, kind, what) of this folder's entries
        parts = tuple(rel.split("/")) if rel else ()
        for item in items:
            child_rel = f"{rel}/{item.name}" if rel else item.name
            try:
                is_link = item.is_symlink()
            except OSError:
                is_link = False
            if (
                is_link
                and not self.follow_links
                and not _inside(os.path.realpath(item.path), self.real_root)
            ):
                self.links_out += 1
                continue
            try:
                is_dir = item.is_dir(follow_symlinks=True)
            except OSError:
                is_dir = False
            if is_dir:
                if item.name == STATE_DIR or Path(item.path) in self.skip:
                    continue
                if via_link:
                    out.append((child_rel + "/", "dir", Path(item.path)))
                elif is_link:
                    self.links_met.append((parts, item.name, Path(item.path), child_rel))
                else:
                    out.append((child_rel + "/", "dir", Path(item.path)))
                continue
            if not is_link:
                # d_type says what it is without a system call; only the odd ones are stat'ed.
                try:
                    regular = item.is_file(follow_symlinks=False)
                    kind = (
                        None if regular else _special_kind(item.stat(follow_symlinks=False).st_mode)
                    )
                except OSError:
                    regular, kind = False, None
                if kind is not None:
                    self.problems[child_rel] = f"skipped: {kind}, not a regular file"
                if not regular:
                    continue
            if os.path.splitext(item.name)[1].lower() not in IMAGE_EXTENSIONS:
                continue
            try:
                fst = os.stat(item.path)  # follows a symlink to its file; opens nothing
            except OSError as exc:
                self.problems[child_rel] = (
                    "broken symbolic link" if is_link else f"cannot stat ({exc.strerror or exc})"
                )
                continue
            kind = _special_kind(fst.st_mode)
            if kind is not None:  # a link to a FIFO or a device
                self.problems[child_rel] = f"skipped: {kind}, not a regular file"
            elif stat_module.S_ISREG(fst.st_mode):
                if via_link or is_link:
                    self.through_links.append((child_rel, fst))
                else:
                    out.append((child_rel, "file", fst))
        if not via_link:  # linked folders are entered in name order, as they always were
            out.sort(key=lambda e: e[0])
        return [(kind, what, key.rstrip("/") if kind == "dir" else key) for key, kind, what in out]


class _ObjectWalk(_Walk):
    """Every image object under a folder on object storage (key order; no links there)."""

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root

    def files(self) -> Iterator[tuple[str, os.stat_result]]:
        from .storage import ObjectPath, walk_objects

        for rel, st in walk_objects(cast(ObjectPath, self.root), IMAGE_EXTENSIONS, STATE_DIR):
            fst = cast(os.stat_result, st)  # the fields the index reads
            self.walked.add(rel, fst)
            yield rel, fst


def _same_stat(row: tuple[int, int, int], st: os.stat_result) -> bool:
    return row == (st.st_size, st.st_mtime_ns, st.st_ino)


_LOOKUP_BATCH = 500  # paths a query (SQLite's bound-parameter limit is 999 on old builds)


_T = TypeVar("_T")


def _batches(items: Iterable[_T], size: int) -> Iterator[list[_T]]:
    it = iter(items)
    while batch := list(itertools.islice(it, size)):
        yield batch


def _stat_rows(index: Index, paths: list[str]) -> dict[str, tuple[int, int, int]]:
    """The stored (size, mtime, inode) of those of ``paths`` the index has."""
    marks = ",".join("?" * len(paths))
    return {
        from_db(p): (s, m, i)
        for p, s, m, i in index._query(
            f"SELECT path, size, mtime_ns, inode FROM files WHERE path IN ({marks})", paths
        )
    }


def _paths(index: Index) -> Iterator[str]:
    """Every path of the index, read through a cursor (never all at once)."""
    try:
        cursor = index.conn.execute("SELECT path FROM files")
        while rows := cursor.fetchmany(1000):
            yield from (from_db(p) for (p,) in rows)
    except sqlite3.DatabaseError as exc:
        raise index.corrupt(exc) from exc


# Files hashed ahead of the one being decided (4 threads read them); their results are taken in
# walk order, so that which file is a move, a copy or new is decided as the sorted list of every
# file used to decide it.
_HASH_AHEAD = 64


class _Changes:
    """An update's comparison of the folder with the index, as the walk goes.

    :meth:`to_describe` walks the folder and gives each file that must be described (new, or
    changed, or lacking crop hashes) as soon as it is known. When the index has rows, a new or
    changed file is hashed first: one whose bytes the index describes already takes that
    description at once, without decoding (touched: its own row; else the first other row
    holding them). Which of those are moves is known only once the walk has found every file
    that is gone: then the rows of vanished files are paired with the files that took their
    bytes (walk order against row order, as when every file was listed first) and removed.
    Held: the files in flight (hashed or described), the rows whose file is gone, and what the
    summary keeps (moves, unreadable files); the files that took a description wait in the
    walk's temporary SQLite file (:class:`_Walked`).
    """

    def __init__(
        self,
        index: Index,
        walk: _Walk,
        limits: Limits,
        known_count: int,
        known_bad: dict[str, tuple[tuple[int, int, int], str]],
        without_crops: set[str],
        progress: ProgressCallback | None,
    ) -> None:
        self.index = index
        self.walk = walk
        self.limits = limits
        self.known_count = known_count
        self.known_bad = known_bad
        self.without_crops = without_crops
        self.progress = progress
        self.hashing = known_count > 0  # an index with no rows has no bytes to recognise
        self.unchanged = self.added = self.updated = self.moved = self.removed = 0
        self.rows_seen = 0  # walked files the index had a row for
        self.queued = 0  # files given to the describing shards
        self.hashed = self.to_hash = 0
        self.walked_all = False
        self.still_bad: list[Unreadable] = []
        self.new_bad: list[Unreadable] = []
        self.bad_walked: set[str] = set()  # files known to be unreadable that are still there
        self.moves: list[tuple[str, str]] = []
        # The files in flight (being hashed or described), and facts about them kept as long:
        self.stats: dict[str, os.stat_result] = {}
        self.had_row: set[str] = set()  # the index has a (stale) row for them
        self.refreshing: set[str] = set()  # unchanged: described again for their crop hashes
        # Rows whose file now holds other bytes, until the file is described again: never the
        # source of another file's description meanwhile.
        self.stale: set[str] = set()

    # -- the walk ------------------------------------------------------------------------------

    def _compared(self) -> Iterator[tuple[str, bool]]:
        """(file, whether to hash it first) for each walked file that must be read."""
        index, walk = self.index, self.walk
        reported = 0
        # A batch is looked up in one query; with no rows to look up, each file goes on at once.
        for batch in _batches(walk.files(), _LOOKUP_BATCH if self.known_count else 1):
            rows = _stat_rows(index, [rel for rel, _ in batch]) if self.known_count else {}
            for rel, st in batch:
                row = rows.get(rel)
                bad = self.known_bad.get(rel)
                if bad is not None:
                    self.bad_walked.add(rel)
                if row is not None:
                    self.rows_seen += 1
                    if _same_stat(row, st):
                        self.unchanged += 1
                        if rel in self.without_crops:
                            self.stats[rel] = st
                            self.refreshing.add(rel)
                            yield rel, False
                        continue
                elif bad is not None and _same_stat(bad[0], st):
                    self.still_bad.append(Unreadable(rel, bad[1]))  # unchanged, still unreadable
                    continue
                self.stats[rel] = st
                if row is not None:
                    self.had_row.add(rel)
                yield rel, self.hashing
            if self.progress and walk.walked.count - reported >= 4096:
                reported = walk.walked.count
                self.progress(Progress("scanning", reported, reported))
        if self.progress:
            self.progress(Progress("scanning", walk.walked.count, walk.walked.count))

    def to_describe(self) -> Iterator[str]:
        """The files to describe, as the walk finds them; the rows of vanished files are
        removed once it is over. The walk is closed however the iteration ends."""
        try:
            if not self.hashing:
                for rel, _ in self._compared():
                    self.queued += 1
                    yield rel
            else:
                yield from self._hashed()
            self._walk_over()
        finally:
            self.walk.close()

    def _hashed(self) -> Iterator[str]:
        from collections import deque
        from concurrent.futures import Future

        root, limits, stats = self.index.root, self.limits, self.stats
        listed = _is_object(root)

        def sha(rel: str) -> tuple[str, str | None, Any]:
            return _sha256_file(root, rel, limits, stats.get(rel) if listed else None)

        pool = ThreadPoolExecutor(max_workers=4)
        ahead: deque[tuple[str, Future[tuple[str, str | None, Any]] | None]] = deque()
        try:
            for rel, must_hash in self._compared():
                if must_hash:
                    self.to_hash += 1
                ahead.append((rel, pool.submit(sha, rel) if must_hash else None))
                if len(ahead) >= 2 * _HASH_AHEAD:
                    yield from self._decide(ahead, _HASH_AHEAD)
            yield from self._decide(ahead, 0)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _decide(self, ahead: Any, keep: int) -> Iterator[str]:
        """Decide the oldest hashed files (all but ``keep``) in one transaction, then give
        those that must be described."""
        if len(ahead) <= keep:
            return  # (no transaction: an update that changes nothing writes nothing)
        out: list[str] = []
        with self.index.transaction() as conn:
            while len(ahead) > keep:
                rel, future = ahead.popleft()
                if future is None or self._take_description(conn, *future.result()):
                    out.append(rel)
        for rel in out:
            self.queued += 1
            yield rel

    def _take_description(self, conn: sqlite3.Connection, rel: str, digest: str | None,
                          st: Any) -> bool:  # fmt: skip
        """Give ``rel`` the description of bytes the index holds; True when there is none (it
        must be described)."""
        index = self.index
        self.hashed += 1
        if self.progress and self.hashed % 256 == 0:
            self.progress(Progress("hashing", self.hashed, self.to_hash))
        had_row = rel in self.had_row
        if digest is None:
            self.new_bad.append(Unreadable(rel, st))
            index.put_unreadable(conn, rel, self.stats.pop(rel, None), st)
            self.had_row.discard(rel)
            return False
        blob = bytes.fromhex(digest)
        if had_row:
            old = conn.execute("SELECT sha256 FROM files WHERE path = ?", (rel,)).fetchone()
            if old is not None and bytes(old[0]) != blob:
                self.stale.add(rel)  # its stored description no longer matches its bytes
        source = self._source_for(conn, rel, blob)
        if source is None:
            return True
        entry = index.get(source)
        if entry is None:  # pragma: no cover - rows change only in this thread
            return True
        index.put(conn, IndexEntry(rel, st.st_size, st.st_mtime_ns, st.st_ino, entry.descriptor))
        self.stats.pop(rel, None)
        self.had_row.discard(rel)
        self.stale.discard(rel)
        if source == rel:
            self.unchanged += 1  # touched: same bytes, new mtime or inode
        else:  # a move or a copy: told apart once every vanished file is known
            self.walk.walked.matched(rel, blob, had_row)
        return False

    def _source_for(self, conn: sqlite3.Connection, rel: str, blob: bytes) -> str | None:
        """The row whose description ``rel``'s bytes take: its own, else the first other row
        holding them (a vanished file's row is still there); None when no row holds them.
        Rows are read only as far as needed (not every copy of the bytes: adding k copies of
        one file read k²/2 rows)."""
        if (
            rel not in self.stale
            and conn.execute(
                "SELECT 1 FROM files WHERE sha256 = ? AND path = ?", (blob, rel)
            ).fetchone()
        ):
            return rel
        rows = conn.execute("SELECT path FROM files WHERE sha256 = ? ORDER BY id", (blob,))
        return next((p for p in map(from_db, (r[0] for r in rows)) if p not in self.stale), None)

    def _walk_over(self) -> None:
        """Every file is known: find the rows whose file is gone, pair them with the files that
        took their bytes (moves), count the rest, and remove those rows."""
        index, walked = self.index, self.walk.walked
        vanished: set[str] = set()
        if self.known_count > self.rows_seen:  # some row has no file any more
            for paths in _batches(_paths(index), _LOOKUP_BATCH):
                vanished.update(set(paths) - walked.present(paths))
        # The rows of vanished files by their bytes, in row order.
        gone_by_digest: dict[bytes, list[tuple[int, str]]] = {}
        for gone in vanished:
            row = index._query("SELECT id, sha256 FROM files WHERE path = ?", (gone,))
            if row:
                gone_by_digest.setdefault(bytes(row[0][1]), []).append((row[0][0], gone))
        pairs: list[tuple[int, str, str, bool]] = []  # (walk position, gone, new path, had row)
        for blob, holders in gone_by_digest.items():
            holders.sort()
            found = walked.first_matched(blob, len(holders))
            for (seq, rel, had_row), (_, gone) in zip(found, holders, strict=False):
                pairs.append((seq, gone, rel, had_row))
        pairs.sort()
        self.moves = [(gone, rel) for _, gone, rel, _ in pairs]
        self.moved = len(pairs)
        without_row, with_row = walked.matched_counts()
        moved_with_row = sum(1 for *_, had_row in pairs if had_row)
        self.added += without_row - (self.moved - moved_with_row)  # copies of indexed bytes
        self.updated += with_row - moved_with_row  # files now holding another file's bytes
        self.removed = len(vanished) - self.moved
        if vanished:
            with index.transaction() as conn:
                for rel in vanished:
                    index.delete(conn, rel)
        self.walked_all = True

    # -- the descriptions ----------------------------------------------------------------------

    def described(self, rel: str) -> None:
        """``rel``'s description came back (not yet written)."""
        if rel in self.refreshing:
            pass  # unchanged: only its crop hashes were missing
        elif rel in self.had_row:
            self.updated += 1
        else:
            self.added += 1

    def written(self, rel: str) -> None:
        """``rel``'s description (or its reason to be unreadable) is in the index."""
        self.had_row.discard(rel)
        self.refreshing.discard(rel)
        self.stale.discard(rel)


# ---------------------------------------------------------------------------------------------
# Updating


def update_index(
    index: Index,
    *,
    limits: Limits = DEFAULT_LIMITS,
    workers: int | None = None,
    progress: ProgressCallback | None = None,
    executor: Executor | None = None,
    follow_links: bool = False,
    fill_crop_hashes: bool = False,
) -> IndexSummary:
    """Bring ``index`` up to date with its folder.

    Parameters
    ----------
    index : Index
        The open index.
    limits : Limits
        Bytes and pixels refused per file (such files are listed as unreadable).
    workers : int, optional
        Processes that decode new images; default: one per CPU. ``1`` decodes in this process.
    progress : callable, optional
        Called with a :class:`Progress` now and then (at most a few times a second).
    executor : Executor, optional
        Where new images are decoded (:mod:`samepix.executor`, e.g. a Dask cluster); default
        a :class:`~samepix.executor.LocalExecutor` of ``workers`` processes. Results come back
        to this process, the only one that writes the index.
    follow_links : bool
        Follow symbolic links that lead out of the folder too (by default they are counted in
        ``IndexSummary.skipped_links`` and not followed; links within the folder always are).
    fill_crop_hashes : bool
        Also describe again the unchanged files that have no crop hashes (indexed by a samepix
        from before them): what a crop search needs. New and changed files always get them.

    Returns
    -------
    IndexSummary

    Raises
    ------
    IndexCorrupt
        The database is damaged (nothing in the folder is touched).
    """
    started = time.perf_counter()
    root = index.root
    skip = {index.path.parent} if index.path.parent.name == STATE_DIR else set()
    walk: _Walk = (
        _ObjectWalk(root)
        if _is_object(root)
        else _FolderWalk(root, skip, follow_links=follow_links)
    )

    # The folder is walked as it is compared with the index, and what changed flows on as it is
    # found (_Changes): its rows are looked up a batch of walked files at a time, the files
    # given so far are in a temporary SQLite file (_Walked), a changed file is hashed and, when
    # its bytes are described already, takes that description at once; the rest go to the
    # describing shards as they come. No list of every file, row or changed file is built (330 B
    # a row and about 800 B a file at 1M before, and then every changed file): only the files
    # in flight are held, and the rows whose file is gone.
    known_count = len(index)
    known_bad = {
        from_db(p): ((s, m, i), from_db(r))
        for p, s, m, i, r in index._query(
            "SELECT path, size, mtime_ns, inode, reason FROM unreadable"
        )
    }

    # Files described before the index kept crop hashes (or with another grid) are described
    # again, once, to add them, when a crop search asks (an index that cannot be written is used
    # as it is).
    without_crops = (
        set()
        if index.read_only or not fill_crop_hashes
        else {
            from_db(p)
            for (p,) in index._query(
                "SELECT path FROM files WHERE id NOT IN (SELECT id FROM crop_hashes)"
            )
        }
    )
    changes = _Changes(index, walk, limits, known_count, known_bad, without_crops, progress)
    stats = changes.stats
    decoded = 0

    # Describe what is new or changed, in parallel, as the walk finds it, committing as results
    # arrive. (The walk, the hashing and, once the walk is over, the removal of the rows whose
    # file is gone run as the shards are pulled: in this thread, between two results.)
    files, total = _counted(changes.to_describe())
    if total != 0:
        done = 0
        last_commit = time.monotonic()
        pending_rows: list[IndexEntry | Unreadable] = []

        def flush() -> None:
            nonlocal last_commit
            if not pending_rows:
                return
            with index.transaction() as conn:
                for item in pending_rows:
                    if isinstance(item, IndexEntry):
                        index.put(conn, item)
                    else:
                        index.put_unreadable(
                            conn, item.path, stats.pop(item.path, None), item.reason
                        )
                    changes.written(item.path)
            pending_rows.clear()
            last_commit = time.monotonic()

        own = executor is None
        runner: Executor = LocalExecutor(workers) if executor is None else executor
        try:
            finished = runner.map_unordered(
                describe_shard,
                _shards(
                    str(root), files, total, limits, runner, stats if _is_object(root) else None
                ),
            )
            for results in finished:
                for item in results:
                    done += 1
                    pending_rows.append(item)
                    if isinstance(item, IndexEntry):
                        stats.pop(item.path, None)  # kept only while in flight
                        decoded += 1
                        changes.described(item.path)
                    else:
                        changes.new_bad.append(item)
                if (
                    len(pending_rows) >= _COMMIT_EVERY_ROWS
                    or time.monotonic() - last_commit > _COMMIT_EVERY_S
                ):
                    flush()
                if progress:
                    progress(Progress("decoding", done, total or changes.queued))
        except BaseException:
            # Interrupted, or a worker died: keep every shard that finished (the next run
            # resumes after them), unless it is the database that failed.
            with contextlib.suppress(Exception):
                flush()
            raise
        finally:
            if own:
                runner.close()
        flush()
    if not changes.walked_all:  # pragma: no cover - the shards are cut until the walk ends
        raise AssertionError("the walk was not finished")

    # Unreadable rows for files that are gone (or now indexed) go too. (Only when there are
    # some: an update that changes nothing writes nothing, so a read-only index can be used.)
    gone_bad = [rel for rel in known_bad if rel not in changes.bad_walked]
    if gone_bad:
        with index.transaction() as conn:
            for rel in gone_bad:
                conn.execute("DELETE FROM unreadable WHERE path = ?", (rel,))

    problems = [Unreadable(rel, reason) for rel, reason in walk.problems.items()]
    unreadable = tuple(
        sorted([*changes.still_bad, *changes.new_bad, *problems], key=lambda u: u.path)
    )
    return IndexSummary(
        root=root,
        db=index.path,
        total=len(index),
        added=changes.added,
        updated=changes.updated,
        moved=changes.moved,
        removed=changes.removed,
        unchanged=changes.unchanged,
        decoded=decoded,
        unreadable=unreadable,
        moves=tuple(changes.moves),
        elapsed_s=time.perf_counter() - started,
        skipped_links=walk.links_out,
    )


def _shards(
    root: str,
    rels: Iterable[str],
    count: int | None,
    limits: Limits,
    executor: Executor,
    listed: dict[str, Any] | None = None,
) -> Iterator[DescribeShard]:
    """``rels`` (``count`` of them, or None: many, still being walked) cut into shards, as they
    come: at most ``executor.max_shard`` files each, fewer when there are few files, so that no
    worker idles while another finishes a shard of large ones (48 files at 8 a shard would be
    only 6 shards for 2 workers)."""
    size = executor.max_shard
    if count is not None:
        size = max(1, min(executor.max_shard, count // (16 * executor.slots)))
    stream = iter(rels)
    while paths := tuple(itertools.islice(stream, size)):
        stats = tuple(listed[p] for p in paths) if listed is not None else ()
        yield DescribeShard(root, paths, limits, stats)


# Files a first build reads ahead of the walk to learn whether the folder is small (then its
# shards are cut smaller, for every worker to have some): 16 shards a slot of 8 files for 8 slots.
_FEW_FILES = 16 * 8 * 8


def _counted(files: Iterable[str]) -> tuple[Iterator[str], int | None]:
    """The files, and how many there are when there are at most :data:`_FEW_FILES` (None: more;
    the rest are not read ahead)."""
    if isinstance(files, list):
        return iter(files), len(files)
    stream = iter(files)
    head = list(itertools.islice(stream, _FEW_FILES + 1))
    if len(head) <= _FEW_FILES:
        return iter(head), len(head)
    return itertools.chain(head, stream), None
