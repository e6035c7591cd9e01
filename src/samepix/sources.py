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
from urllib.parse import unquote, unquote_to_bytes, urlsplit

from .errors import SourceError
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["Blob", "SourceSpec", "is_url", "read_source"]

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


def is_url(text: str) -> bool:
    """True for the URL schemes samepix reads (http, https, file, data)."""
    return text.startswith(("http://", "https://", "file://", "data:"))


def read_source(spec: SourceSpec, *, limits: Limits = DEFAULT_LIMITS) -> Blob:
    """Read a source into memory, within ``limits.max_bytes``.

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
    if text.startswith(("http://", "https://")):
        from .fetch import fetch_url

        got = fetch_url(text, limits=limits)
        return Blob(
            data=got.data,
            name=text,
            url=text,
            content_type=got.content_type,
            transferred=got.transferred,
            etag=got.etag,
            last_modified=got.last_modified,
        )
    if text.startswith("data:"):
        return _read_data_url(text, limits)
    if text.startswith("file://"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost"):
            raise SourceError(f"{text}: file URLs on other hosts ({parts.netloc}) are not read")
        return _read_file(Path(unquote(parts.path)), limits, name=text)
    if _SCHEME.match(text):
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
