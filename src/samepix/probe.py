"""``probe`` for a local file: format, size and pixel dimensions from its first bytes only, as
:meth:`samepix.fetch.Fetcher.probe` does for a URL (reading a 12 MP JPEG's header takes one
64 KiB read, not a decode)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from .errors import DecodeError, SourceError
from .formats import describe_non_image, read_header, sniff_format
from .limits import DEFAULT_LIMITS, Limits

__all__ = ["FileProbe", "probe_file"]

_FIRST_READ = 64 * 1024


@dataclass(frozen=True)
class FileProbe:
    """What a local file's first bytes say."""

    path: str
    format: str
    width: int  # as displayed (EXIF orientation applied)
    height: int
    orientation: int
    size: int  # bytes of the whole file
    read: int  # bytes read to learn this

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "orientation": self.orientation,
            "size": self.size,
            "transferred": self.read,
        }


def probe_file(path: str | os.PathLike[str], *, limits: Limits = DEFAULT_LIMITS) -> FileProbe:
    """Format and dimensions of the image file at ``path`` from as few bytes as its header needs.

    Raises
    ------
    SourceError
        Missing, a folder, unreadable.
    DecodeError
        Not an image (the reason says what it looks like), or no header in ``max_bytes``.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            head = handle.read(_FIRST_READ)
            info = read_header(head)
            while info is None and len(head) < min(size, limits.max_bytes):
                more = handle.read(max(len(head), _FIRST_READ))
                if not more:
                    break
                head += more
                info = read_header(head)
    except IsADirectoryError:
        raise SourceError(f"{name}: is a folder, not an image file") from None
    except FileNotFoundError:
        raise SourceError(f"{name}: no such file") from None
    except OSError as exc:
        raise SourceError(f"{name}: cannot read ({exc.strerror or exc})") from exc
    if info is None:
        if sniff_format(head[:32]) is None:
            raise DecodeError(f"{name}: {describe_non_image(head)}")
        raise DecodeError(f"{name}: no readable image header in its first {len(head):,} bytes")
    width, height = info.oriented_size
    return FileProbe(name, info.format, width, height, info.orientation, size, len(head))
