"""Folders on object storage (``s3://bucket/prefix``, ``gs://...``, ``memory://...``) through
fsspec, for ``index``, ``find --in`` and ``dupes``.

A local folder is a :class:`pathlib.Path`; a folder on object storage is an :class:`ObjectPath`,
which offers the few path operations the index and the library use (``/``, ``str``, ``name``,
``is_dir``) and reads objects whole, within the byte limit. fsspec and its storage library
(``samepix[s3]`` → s3fs) are imported only when such a URL is used; credentials and endpoints
come from fsspec's usual configuration (environment variables such as ``AWS_ACCESS_KEY_ID`` and
``AWS_ENDPOINT_URL``, ``~/.aws``, ``FSSPEC_S3_*``), and no message ever shows one.

What the index keeps for a local file's (size, mtime, inode) it keeps for an object as (size,
mtime, a 63-bit digest of its ETag or version id): an object rewritten with other bytes has a
new ETag, so an update reads it again; one copied or renamed keeps its bytes, which the index
recognises by SHA-256 without decoding. The index of a remote folder lives on this machine (see
:func:`remote_db_path`); nothing is written into the bucket by ``index``, ``find`` or ``dupes``.

:func:`put_new` writes an object whole (one PUT: a reader never sees part of it) and never
over another object: a conditional write (``If-None-Match: *``) where the store supports it,
an atomic create in this process for ``memory://``.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from .errors import LimitExceeded, SamepixError, SourceError, UsageError

if TYPE_CHECKING:
    from .limits import Limits

__all__ = [
    "OBJECT_SCHEMES",
    "ObjectPath",
    "ObjectStat",
    "VersionedObject",
    "conditional_writes",
    "delete_if",
    "get_versioned",
    "in_process",
    "is_object_url",
    "put_if",
    "put_new",
    "remote_db_path",
    "walk_objects",
]

_S3_INSTALL = "pip install 'samepix[s3]'"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Object stores read through fsspec. Not every fsspec protocol: http(s) goes through
# samepix.fetch (limits, --no-private), and ftp/sftp/ssh are not folders samepix claims.
OBJECT_SCHEMES = frozenset(
    {"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "oci", "oss", "memory"}
)


def is_object_url(text: str) -> bool:
    """True for an object-storage URL (``s3://``, ``gs://``, ``az://``, ``memory://``, ...)."""
    match = _SCHEME.match(text)
    return match is not None and match.group(1).lower() in OBJECT_SCHEMES


@dataclass(frozen=True)
class ObjectStat:
    """The fields of ``os.stat_result`` the index compares, for an object."""

    st_size: int
    st_mtime_ns: int
    st_ino: int  # 63-bit digest of the ETag / version id: changes when the bytes do
    st_dev: int = 0


def _filesystem(url: str) -> tuple[Any, str]:
    try:
        fsspec: Any = importlib.import_module("fsspec")  # untyped; optional (samepix[s3])
    except ImportError as exc:
        raise UsageError(
            f"{url}: reading object storage needs fsspec (install it with: {_S3_INSTALL})"
        ) from exc
    try:
        fs, path = fsspec.core.url_to_fs(url)
    except ImportError as exc:  # fsspec without the storage library (s3fs, gcsfs, ...)
        raise UsageError(f"{url}: {_one_line(exc)} (for S3: {_S3_INSTALL})") from exc
    except ValueError as exc:
        raise UsageError(f"{url}: {_one_line(exc)}") from exc
    return fs, str(path).rstrip("/")


def _one_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


def _storage_error(where: str, exc: BaseException) -> SamepixError:
    """One line for a failed storage call (no secret: only the error's class and first line;
    botocore's messages name the operation and the bucket, never a key)."""
    if isinstance(exc, FileNotFoundError):
        return SourceError(f"{where}: no such bucket, folder or object")
    if isinstance(exc, PermissionError):
        return SourceError(f"{where}: access denied ({_one_line(exc)})")
    name = type(exc).__name__
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return SourceError(
            f"{where}: no credentials for object storage (set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws)"
        )
    return SourceError(f"{where}: storage error ({name}: {_one_line(exc)})")


def _version_digest(info: dict[str, Any]) -> int:
    tag = info.get("VersionId") or info.get("ETag") or info.get("etag") or info.get("md5") or ""
    if not tag:  # a store without validators: size and mtime decide alone
        return 0
    return int.from_bytes(hashlib.sha256(str(tag).encode()).digest()[:8], "big") >> 1


def _mtime_ns(info: dict[str, Any]) -> int:
    value = info.get("LastModified") or info.get("mtime") or info.get("created")
    if value is None:
        return 0
    if hasattr(value, "timestamp"):
        return int(value.timestamp() * 1_000_000_000)
    with contextlib.suppress(TypeError, ValueError):
        return int(float(value) * 1_000_000_000)
    return 0


def _stat(info: dict[str, Any]) -> ObjectStat:
    return ObjectStat(int(info.get("size") or 0), _mtime_ns(info), _version_digest(info))


class ObjectPath(os.PathLike[str]):
    """A folder or object on fsspec storage, with the path operations samepix uses."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") if not url.endswith("://") else url
        self._fs: Any = None
        self._path = ""

    # -- as a path ---------------------------------------------------------------------------

    def __fspath__(self) -> str:
        return self.url

    def __str__(self) -> str:
        return self.url

    def __repr__(self) -> str:
        return f"ObjectPath({self.url!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ObjectPath) and other.url == self.url

    def __hash__(self) -> int:
        return hash(self.url)

    def __truediv__(self, rel: str) -> ObjectPath:
        return ObjectPath(f"{self.url}/{rel}")

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]

    @property
    def parent(self) -> ObjectPath:
        return ObjectPath(self.url.rsplit("/", 1)[0])

    def resolve(self) -> ObjectPath:
        return self

    def relative_to(self, other: object) -> PurePosixPath:
        """The key below ``other`` (a folder URL), as a relative POSIX path."""
        base = str(other).rstrip("/") + "/"
        if not self.url.startswith(base):
            raise ValueError(f"{self.url} is not under {other}")
        return PurePosixPath(self.url[len(base) :])

    # -- storage -----------------------------------------------------------------------------

    @property
    def fs(self) -> Any:
        if self._fs is None:
            self._fs, self._path = _filesystem(self.url)
        return self._fs

    @property
    def key(self) -> str:
        """The path the filesystem object uses (bucket/prefix, no scheme)."""
        self.fs  # noqa: B018 - sets _path
        return self._path

    def is_dir(self) -> bool:
        """True when the folder (bucket or prefix) exists; errors other than "not found"
        (access denied, no credentials) are raised, as they would hide the real reason."""
        try:
            return bool(self.fs.isdir(self.key))
        except FileNotFoundError:
            return False
        except SamepixError:
            raise
        except Exception as exc:
            raise _storage_error(self.url, exc) from exc

    def exists(self) -> bool:
        """True when an object (or folder) is at this path now (asked again, not cached)."""
        try:
            self.fs.invalidate_cache(self.key)
            return bool(self.fs.exists(self.key))
        except Exception as exc:
            raise _storage_error(self.url, exc) from exc

    def stat(self) -> ObjectStat:
        """The object's (size, mtime, ETag digest), as a listing would give them."""
        try:
            self.fs.invalidate_cache(self.key)
            return _stat(self.fs.info(self.key))
        except Exception as exc:
            raise _storage_error(self.url, exc) from exc

    def read(self, limits: Limits, listed: ObjectStat | None = None) -> tuple[bytes, ObjectStat]:
        """The object's bytes and the stat they were read at.

        With ``listed`` (its stat from the listing) one GET; else a HEAD first. Either way the
        stat kept is from before the read, so an object replaced meanwhile has a newer ETag
        than the one kept, and the next update reads it again.
        """
        try:
            stat = listed if listed is not None else _stat(self.fs.info(self.key))
            if stat.st_size > limits.max_bytes:
                raise LimitExceeded(
                    f"{stat.st_size:,} bytes exceeds the limit of {limits.max_bytes:,} "
                    "(--max-bytes)"
                )
            # A range: an object grown past the limit since it was listed is not read whole.
            data = bytes(self.fs.cat_file(self.key, start=0, end=limits.max_bytes + 1))
        except SamepixError:
            raise
        except Exception as exc:
            raise _storage_error(self.url, exc) from exc
        if len(data) > limits.max_bytes:
            raise LimitExceeded(f"more than {limits.max_bytes:,} bytes (--max-bytes)")
        if len(data) != stat.st_size:  # replaced since: read it again next time
            stat = ObjectStat(len(data), stat.st_mtime_ns, 0)
        return data, stat


def walk_objects(
    root: ObjectPath, extensions: frozenset[str], skip_dir: str
) -> Iterator[tuple[str, ObjectStat]]:
    """``(relative key, stat)`` of every object under ``root`` with one of ``extensions``,
    in key order, one listing page (folder) at a time; ``skip_dir`` folders are left out."""
    fs, base = root.fs, root.key
    if not root.is_dir():
        raise SourceError(f"{root}: no such bucket or folder")
    try:
        for folder, dirs, files in fs.walk(base, detail=True):
            for name in [d for d in dirs if d == skip_dir]:
                dirs.pop(name) if isinstance(dirs, dict) else dirs.remove(name)
            rel_folder = str(folder).rstrip("/")[len(base) :].lstrip("/")
            for name in sorted(files):
                if os.path.splitext(name)[1].lower() not in extensions:
                    continue
                rel = f"{rel_folder}/{name}" if rel_folder else name
                yield rel, _stat(files[name])
    except SamepixError:
        raise
    except Exception as exc:
        raise _storage_error(str(root), exc) from exc


def conditional_writes(target: ObjectPath) -> bool:
    """Whether the store takes conditional writes here (``If-None-Match`` / ``If-Match`` on a
    PUT): S3 and S3-compatible stores through s3fs."""
    return type(target.fs).__name__ == "S3FileSystem"


def in_process(target: ObjectPath) -> bool:
    """Whether the store lives inside this Python process (fsspec's ``memory://``): nothing
    outside it can write there, so an atomic create-if-absent here is a whole guarantee."""
    return type(target.fs).__name__ == "MemoryFileSystem"


def _create_in_memory(target: ObjectPath, data: bytes) -> bool:
    """Put ``data`` at ``target`` in fsspec's memory store, only where no object is: one
    ``dict.setdefault`` on the store (atomic under the GIL, so no writer of this process can
    slip in between a check and the write, as it could with ``pipe_file(mode="create")``,
    which checks ``exists`` first). The object is complete before it is visible."""
    memory: Any = importlib.import_module("fsspec.implementations.memory")  # untyped
    fs = target.fs
    path = fs._strip_protocol(target.key)
    new = memory.MemoryFile(fs, path, data)
    return fs.store.setdefault(path, new) is new


def _bucket_and_key(target: ObjectPath) -> tuple[str, str]:
    bucket, _, key = target.key.partition("/")
    return bucket, key


def _precondition_failed(exc: BaseException) -> bool:
    """A conditional write refused: 412 Precondition Failed (s3fs raises FileExistsError for
    If-None-Match, an OSError for If-Match), or 409 ConditionalRequestConflict (AWS, when two
    conditional writes to one key race)."""
    if isinstance(exc, FileExistsError):
        return True
    response = getattr(exc.__cause__, "response", None)
    if not isinstance(response, dict):
        return False
    code = response.get("Error", {}).get("Code")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412)


def put_if(target: ObjectPath, data: bytes, etag: str | None) -> str | None:
    """One conditional PUT on S3: only where no object is (``etag`` None: ``If-None-Match: *``),
    or only over the object whose ETag is ``etag`` (``If-Match``). The new object's ETag, or
    None when the condition did not hold (another writer got there first)."""
    bucket, key = _bucket_and_key(target)
    condition = {"IfNoneMatch": "*"} if etag is None else {"IfMatch": etag}
    try:
        answer = target.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, **condition)
    except Exception as exc:
        if _precondition_failed(exc):
            return None
        raise _storage_error(str(target), exc) from exc
    finally:
        target.fs.invalidate_cache(target.key)
    return str(answer.get("ETag") or "")


def delete_if(target: ObjectPath, etag: str) -> bool:
    """Delete the object at ``target`` only while its ETag is ``etag`` (``If-Match`` on a
    DELETE: honoured by moto and S3; a store that ignores it deletes whatever is there). False
    when the condition did not hold (another writer changed the object: it stays)."""
    bucket, key = _bucket_and_key(target)
    try:
        target.fs.call_s3("delete_object", Bucket=bucket, Key=key, IfMatch=etag)
    except Exception as exc:
        if _precondition_failed(exc):
            return False
        if isinstance(exc, FileNotFoundError):
            return False
        raise _storage_error(str(target), exc) from exc
    finally:
        target.fs.invalidate_cache(target.key)
    return True


@dataclass(frozen=True)
class VersionedObject:
    """An object read whole, with its ETag, its last-modified time and the store's clock at
    the read (both from the server, so no two machines' clocks are compared)."""

    data: bytes
    etag: str
    last_modified: float  # seconds since the epoch, server time
    server_now: float


def get_versioned(target: ObjectPath) -> VersionedObject | None:
    """The object at ``target`` with its ETag and the server's times; None when there is none."""
    import email.utils

    sync: Any = importlib.import_module("fsspec.asyn").sync  # untyped; installed with fsspec
    fs = target.fs
    bucket, key = _bucket_and_key(target)

    async def get() -> tuple[bytes, dict[str, Any]]:
        answer = await fs._call_s3("get_object", Bucket=bucket, Key=key)
        try:
            return bytes(await answer["Body"].read()), answer
        finally:
            answer["Body"].close()

    try:
        data, answer = sync(fs.loop, get)
    except FileNotFoundError:
        return None
    except Exception as exc:
        raise _storage_error(str(target), exc) from exc
    modified = answer.get("LastModified")
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    now = email.utils.parsedate_to_datetime(date).timestamp() if date else None
    stamp = modified.timestamp() if hasattr(modified, "timestamp") else None
    if stamp is None or now is None:  # without the server's times, staleness cannot be judged
        stamp = now = 0.0
    return VersionedObject(data, str(answer.get("ETag") or ""), stamp, now)


def put_new(target: ObjectPath, data: bytes) -> bool:
    """Write ``data`` as a new object at ``target``, whole; False if an object is there already.

    One PUT: object stores make an object visible only once it is complete (no ``.part`` a
    reader could see). Never over another object: a conditional write (``If-None-Match: *``,
    honoured by S3 since 2024 and by moto) where the filesystem takes it; an atomic
    create-if-absent for ``memory://``; else an existence check first (a race between two
    writers is then possible: sync refuses such stores, see docs/scale.md).
    """
    if conditional_writes(target):
        return put_if(target, data, None) is not None
    if in_process(target):
        return _create_in_memory(target, data)
    fs, key = target.fs, target.key
    try:
        if fs.exists(key):
            return False
        fs.pipe_file(key, data)
        return True
    except SamepixError:
        raise
    except Exception as exc:
        raise _storage_error(str(target), exc) from exc


def remote_db_path(url: str) -> Path:
    """Where the index of a folder on object storage lives by default: this machine's user
    data folder, one file per URL (``.../samepix/remote/<host>-<digest>.db``)."""
    import platformdirs

    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    bucket = re.sub(r"[^A-Za-z0-9._-]", "_", url.split("://", 1)[-1].split("/", 1)[0])[:40]
    base = Path(platformdirs.user_data_dir("samepix", appauthor=False))
    return base / "remote" / f"{bucket}-{digest}.db"
