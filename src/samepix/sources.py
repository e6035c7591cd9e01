"""Where an image comes from: a path, a ``file://``, ``data:`` or ``http(s)://`` URL, ``-``
(standard input) or bytes already in memory. Each is read into a :class:`Blob` with a name that
error messages and reports use.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from .errors import SourceError
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .fetch import Download, Fetcher

__all__ = ["Blob", "SourceSpec", "blob_from_download", "is_url", "read_source"]

# "ftp://x", "s3://x": a URL we do not read. A Windows drive ("C:\\x") has no "//".
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")

SourceSpec = str | os.PathLike[str] | bytes | bytearray | memoryview


@dataclass(frozen=True)
class Blob:
    """The encoded bytes of one image and where they came from."""

    data: bytes
    name: str  # path or URL, for messages (data: URLs shortened)
    path: Path | None = None
    url: str | None = None
    content_type: str | None = None
    transferred: int = 0  # bytes that crossed the network
    etag: str | None = None
    last_modified: str | None = None
    sha256: str | None = None  # of ``data``, when already computed (downloads)


def is_url(text: str) -> bool:
    """True for the URL schemes samepix reads (http, https, file, data), in any case."""
    return _has_scheme(text, ("http://", "https://", "file://", "data:"))


def is_http_url(text: str) -> bool:
    """True for an ``http://`` or ``https://`` URL; schemes are case-insensitive (RFC 3986
    3.1), so ``HTTP://`` is one too, as it is for ``sync``'s URL lists."""
    return _has_scheme(text, ("http://", "https://"))


def _has_scheme(text: str, prefixes: tuple[str, ...]) -> bool:
    return text[:8].lower().startswith(prefixes)


def blob_from_download(download: Download) -> Blob:
    """The :class:`Blob` of a complete download (not of a ``304``, which has no body)."""
    if download.not_modified:
        raise ValueError(f"{download.url}: a 304 answer has no body to read")
    return Blob(
        data=download.data,
        name=download.url,
        url=download.url,
        content_type=download.content_type,
        transferred=download.transferred,
        etag=download.etag,
        last_modified=download.last_modified,
        sha256=download.sha256,
    )


def read_source(
    spec: SourceSpec, *, limits: Limits = DEFAULT_LIMITS, fetcher: Fetcher | None = None
) -> Blob:
    """Read a source into memory, within ``limits.max_bytes``.

    ``http(s)://`` URLs are downloaded with ``fetcher`` (its limits, retries, address policy
    and state file), or with a one-off :class:`~samepix.fetch.Fetcher` using ``limits``. A
    fetcher that does not allow private addresses refuses ``file://`` URLs too; plain paths
    are read, since the caller named them.

    Raises
    ------
    SourceError
        Missing file, a directory, permission denied, malformed URL, or a failed download
        (:class:`~samepix.errors.FetchError`).
    LimitExceeded
        More bytes than ``limits.max_bytes``.
    """
    if isinstance(spec, (bytes, bytearray, memoryview)):
        data = bytes(spec)
        _check_size("<bytes>", len(data), limits)
        return Blob(data=data, name=f"<{len(data)} bytes>")
    text = os.fspath(spec)
    if text == "-":
        data = sys.stdin.buffer.read(limits.max_bytes + 1)
        _check_size("<stdin>", len(data), limits)
        return Blob(data=data, name="<stdin>")
    if is_http_url(text):
        if fetcher is not None:
            return blob_from_download(fetcher.get(text))
        from .fetch import Fetcher

        with Fetcher(limits=limits) as one_off:
            return blob_from_download(one_off.get(text))
    if _has_scheme(text, ("data:",)):
        return _read_data_url(text, limits)
    if _has_scheme(text, ("file://",)):
        if fetcher is not None and not fetcher.allow_private:
            raise SourceError(
                f"{text}: file:// URLs are refused when private addresses are not allowed"
            )
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{text}: file URLs on other hosts ({parts.netloc}) are not read")
        return _read_file(Path(unquote(parts.path)), limits, name=text)
    if _SCHEME.match(text):
        from .storage import ObjectPath, is_object_url

        if is_object_url(text):  # s3://, gs://, memory://: through fsspec (samepix[s3])
            data, _ = ObjectPath(text).read(limits)
            return Blob(data=data, name=text)
        raise SourceError(f"{text}: unsupported URL scheme (http, https, file and data work)")
    return _read_file(Path(text), limits, name=text)


def _check_size(name: str, size: int, limits: Limits) -> None:
    if size > limits.max_bytes:
        from .errors import LimitExceeded

        raise LimitExceeded(f"{name}: {size:,} bytes exceeds the limit of {limits.max_bytes:,}")


def _read_file(path: Path, limits: Limits, *, name: str) -> Blob:
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            _check_size(name, size, limits)
            data = handle.read(limits.max_bytes + 1)
    except FileNotFoundError as exc:
        raise SourceError(f"{name}: no such file") from exc
    except IsADirectoryError as exc:
        raise SourceError(f"{name}: is a directory, not an image file") from exc
    except PermissionError as exc:
        raise SourceError(f"{name}: permission denied") from exc
    except OSError as exc:
        raise SourceError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    _check_size(name, len(data), limits)
    return Blob(data=data, name=name, path=path)


def _read_data_url(text: str, limits: Limits) -> Blob:
    shown = text if len(text) <= 48 else text[:40] + "…"
    header, sep, payload = text[5:].partition(",")
    if not sep:
        raise SourceError(f"{shown}: malformed data URL (no comma)")
    params = header.split(";")
    try:
        if "base64" in params[1:]:
            data = base64.b64decode(unquote(payload), validate=False)
        else:
            data = unquote_to_bytes(payload)
    except (binascii.Error, ValueError) as exc:
        raise SourceError(f"{shown}: malformed data URL ({exc})") from exc
    _check_size(shown, len(data), limits)
    return Blob(data=data, name=shown, url=text, content_type=params[0] or None)
