"""The freedesktop.org trash (https://specifications.freedesktop.org/trash-spec/), for ``--trash``.

Written here rather than taken from ``send2trash`` because undo needs what the library does not
return: where the file went in the trash and the name of its ``.trashinfo`` (send2trash picks
both and keeps them to itself). The spec is short; this module follows it:

- a file on the home trash's device goes to ``$XDG_DATA_HOME/Trash`` (default
  ``~/.local/share/Trash``); a file on another device goes to its top directory's
  ``$topdir/.Trash/$uid`` when that folder exists, is not a link and is sticky, else to
  ``$topdir/.Trash-$uid`` (created with mode 0700);
- ``info/NAME.trashinfo`` is created first (``O_EXCL``), then the file is renamed to
  ``files/NAME``; its ``Path`` is absolute for the home trash, relative to the top
  directory otherwise, percent-encoded, with a local ``DeletionDate``.

Only renames are used: a file is never copied into a trash on another device.
"""

from __future__ import annotations

import contextlib
import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = ["TrashSlot", "choose", "trash_dir_for", "write_info"]


@dataclass(frozen=True)
class TrashSlot:
    """Where one file goes in a trash: ``files/NAME`` and ``info/NAME.trashinfo``."""

    trash: Path
    name: str
    top: Path | None  # the top directory info paths are relative to; None: the home trash

    @property
    def file(self) -> Path:
        return self.trash / "files" / self.name

    @property
    def info(self) -> Path:
        return self.trash / "info" / f"{self.name}.trashinfo"


def _home_trash() -> Path:
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local/share")
    return Path(data) / "Trash"


def _top_dir(path: Path) -> Path:
    """The mount point holding ``path``: the highest ancestor on the same device."""
    dev = path.lstat().st_dev
    top = path
    for parent in path.parents:
        try:
            if parent.lstat().st_dev != dev:
                break
        except OSError:
            break
        top = parent
    return top


def _device(path: Path) -> int | None:
    """The device of ``path`` or of its nearest existing ancestor."""
    for candidate in (path, *path.parents):
        try:
            return candidate.stat().st_dev
        except OSError:
            continue
    return None


def trash_dir_for(path: Path) -> tuple[Path, Path | None]:
    """The trash for ``path`` (absolute) and the top directory its info paths are relative to
    (None for the home trash, whose info paths are absolute)."""
    home = _home_trash()
    if _device(home) == path.lstat().st_dev:
        return home, None
    top = _top_dir(path)
    uid = os.getuid()
    shared = top / ".Trash"
    with contextlib.suppress(OSError):
        st = shared.lstat()
        if stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX:
            return shared / str(uid), top
    return top / f".Trash-{uid}", top


def _make_dirs(trash: Path) -> None:
    for sub in (trash, trash / "files", trash / "info"):
        with contextlib.suppress(FileExistsError):
            sub.mkdir(mode=0o700, parents=True)


def choose(path: Path) -> TrashSlot:
    """A slot for ``path`` (absolute) under a NAME free in both ``files`` and ``info`` (the trash
    folders are created; nothing else is written)."""
    trash, top = trash_dir_for(path)
    _make_dirs(trash)
    stem, ext = os.path.splitext(path.name)
    for n in range(1, 100_000):
        slot = TrashSlot(trash, path.name if n == 1 else f"{stem}.{n}{ext}", top)
        if not any(os.path.lexists(p) for p in (slot.file, slot.info)):
            return slot
    raise OSError(f"{trash}: no free name for {path.name}")


def write_info(slot: TrashSlot, path: Path, now: float | None = None) -> None:
    """Create the slot's ``.trashinfo`` for ``path`` (``O_EXCL``: FileExistsError when another
    program took the name meanwhile); the caller then renames ``path`` to :attr:`TrashSlot.file`."""
    shown = str(path) if slot.top is None else os.path.relpath(path, slot.top)
    when = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(now))
    body = f"[Trash Info]\nPath={quote(shown)}\nDeletionDate={when}\n".encode()
    fd = os.open(slot.info, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, body)
        os.fsync(fd)
    finally:
        os.close(fd)
