"""Writes that never leave a partial file: a temporary file in the same folder, fsynced, then
renamed into place (atomic on POSIX and on Windows for files on one volume).

The file gets the mode a plain ``open(path, "wb")`` would give it — 0666 less the user's umask —
and a file that is replaced keeps its mode: ``tempfile.mkstemp`` would make every file 0600,
which web servers, Samba shares and other users cannot read.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .errors import SourceError

__all__ = ["atomic_write_bytes", "atomic_writer"]


@contextlib.contextmanager
def atomic_writer(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = True,
    mode_of: str | os.PathLike[str] | None = None,
) -> Iterator[BinaryIO]:
    """Open a temporary file beside ``path``; on success it replaces ``path``, else vanishes.

    With ``overwrite=False`` an existing ``path`` is never replaced (``FileExistsError``).
    The new file gets the mode of the file it replaces, else of ``mode_of`` (a file it stands
    in for under another name), else 0666 less the umask, like ``open()``.
    """
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    fd, tmp = _create_temporary(folder, target.name)
    try:
        with os.fdopen(fd, "wb") as handle:
            for model in ([target] if overwrite else []) + ([Path(mode_of)] if mode_of else []):
                try:
                    os.chmod(tmp, stat.S_IMODE(os.stat(model).st_mode))
                    break
                except FileNotFoundError:
                    continue
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if overwrite:
            os.replace(tmp, target)
        else:
            os.link(tmp, target)  # fails if target exists, unlike rename
            tmp.unlink()
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_dir(folder)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes, *, overwrite: bool = True
) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_writer`)."""
    try:
        with atomic_writer(path, overwrite=overwrite) as handle:
            handle.write(data)
    except FileExistsError:
        raise
    except OSError as exc:
        raise SourceError(f"{path}: cannot write ({exc.strerror or exc})") from exc


def _create_temporary(folder: Path, name: str) -> tuple[int, Path]:
    """A new, empty ``.NAME.XXXX.part`` beside the target, opened for writing.

    Created with mode 0666 so the kernel applies the umask, exactly as for ``open()``; the
    random part and ``O_EXCL`` make it ours alone (what ``mkstemp`` does, without its 0600).
    """
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    for _ in range(100):
        tmp = folder / f".{name}.{secrets.token_hex(4)}.part"
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue
        except OSError as exc:
            raise SourceError(f"{folder / name}: cannot write ({exc.strerror or exc})") from exc
    raise SourceError(f"{folder / name}: cannot write (no free temporary name)")


def _fsync_dir(folder: Path) -> None:
    # The rename is durable only once the folder's entry is on disk (POSIX); best effort.
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
