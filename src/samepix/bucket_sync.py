"""Where ``sync`` writes when its folder is on object storage (``s3://bucket/prefix``).

The same guarantees as a local folder, by other means (:class:`samepix.sync.SyncTarget` is the
seam; a local folder is ``sync._FolderTarget``):

- **nothing partial visible**: each object is written whole, by one PUT (a store shows an object
  only once complete): no ``.part`` file, nothing to clean up;
- **never over another object**: the PUT is conditional (``If-None-Match: *``); on a name
  taken, by anyone, the next free name (``name-1.jpg``, ...) is used, as in a local folder;
- **one sync at a time into the folder, across machines**: :class:`samepix.bucket_lock.BucketLock`
  (``<prefix>/.samepix/sync.lock``, a lease renewed while the sync runs); the sync brings this
  machine's index of the bucket up to date once it holds the lock, so what other machines
  saved is known (by SHA-256 and by picture) and not saved again;
- **--replace-better**: the object judged worse is kept under ``.samepix/replaced/`` only if
  it still holds the bytes judged, then replaced (``If-Match`` on its ETag) or, for another
  format, deleted (``If-Match``) once the better copy is saved under its own name: an object
  another writer put there meanwhile is never overwritten or removed (S3 only);
- **local state**: the index of the bucket, with the sync records (which URL stands for which
  object), lives on this machine (``--db``, or the default of
  :func:`samepix.storage.remote_db_path`), and the fetch state (the validators of each URL)
  beside it: ``<db stem>.fetch-state.sqlite3``.

Where this holds:

- **S3** (and S3-compatible stores, through s3fs): conditional PUTs and the lock object above;
- **memory://** (fsspec's store inside this one process): each object is put with an atomic
  create-if-absent (:func:`samepix.storage.put_new`), and the lock is held in this process
  (:class:`samepix.bucket_lock.InProcessLock`): no other process can see that store, let alone
  write into it. Useful through the library only: a ``samepix sync`` command's store would
  vanish with the command, so the CLI refuses it (:func:`refuse_from_a_command`);
- **gs://, az://** and the rest: refused with one line. gcsfs offers a create-if-absent
  (``pipe_file(mode="create")``: ``ifGenerationMatch=0``) that gcsfs itself calls
  experimental, and no emulator runs here to test it; what adlfs and the other drivers offer
  was not examined (fsspec's generic ``mode="create"`` checks ``exists`` first: a race).

A dry run reads the folder and writes nothing into it, not even the lock.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SourceError, UsageError
from .index import STATE_DIR
from .storage import (
    ObjectPath,
    ObjectStat,
    conditional_writes,
    delete_if,
    get_versioned,
    in_process,
    put_if,
    put_new,
)

if TYPE_CHECKING:
    from .bucket_lock import BucketLock, InProcessLock

__all__ = ["LOCK_KEY", "BucketTarget", "fetch_state_beside", "refuse_from_a_command"]

#: The lock object, below the synced folder (its .samepix/ prefix is never listed as pictures).
LOCK_KEY = f"{STATE_DIR}/sync.lock"


# Why a store is refused for sync (each one line, after "... refuses to overwrite an object (").
_UNSUPPORTED = {
    "gs": "gcsfs's create-if-absent, ifGenerationMatch=0, is experimental in gcsfs and untested "
    "here",
    "gcs": "gcsfs's create-if-absent, ifGenerationMatch=0, is experimental in gcsfs and untested "
    "here",
}


def refuse_from_a_command(url: str) -> None:
    """Refuse a ``samepix sync`` command into ``memory://``: that store lives inside one
    Python process, so what the command saved would be gone when it ends. (The library syncs
    into it: a program that keeps the store can use what was saved.)"""
    if url.split("://", 1)[0].lower() == "memory":
        raise UsageError(
            f"{url}: a samepix command cannot sync into memory://: that store lives inside one "
            "Python process and would be gone, with every picture saved, when the command ends; "
            "sync into it from Python (samepix.Library(url).sync(...)), or into s3:// or a "
            "local folder"
        )


def fetch_state_beside(db_path: Path) -> Path:
    """Where the fetch state of a bucket's sync lives: beside its local index."""
    return db_path.with_name(f"{db_path.stem}.fetch-state.sqlite3")


class BucketTarget:
    """A folder on object storage (S3, or ``memory://``) as the place a sync writes into."""

    def __init__(self, root: ObjectPath, db_path: Path) -> None:
        self.root = root
        self.fetch_state_path = fetch_state_beside(db_path)
        self._lock: BucketLock | InProcessLock | None = None

    def prepare(self, *, dry_run: bool, replace_better: bool) -> None:
        """Refuse what cannot be done here, before any work: a store that cannot refuse to
        overwrite an object, --replace-better, a bucket that is missing or cannot be read."""
        scheme = self.root.url.split("://", 1)[0]
        memory = in_process(self.root)
        if not (memory or conditional_writes(self.root)):
            why = _UNSUPPORTED.get(scheme.lower(), "no create-if-absent samepix has tested")
            raise UsageError(
                f"{self.root}: sync into {scheme}:// is not supported: samepix writes only "
                f"where the store itself refuses to overwrite an object ({why}); sync into "
                "s3://, or into a local folder"
            )
        if replace_better and memory:
            raise UsageError(
                f"{self.root}: --replace-better into memory:// is not supported (it replaces "
                "an object only over the version judged, which needs S3's conditional writes); "
                "sync into s3:// or a local folder for it"
            )
        if self.root.is_dir():  # errors (denied, no credentials) are raised as one line
            return
        if not memory:
            bucket = ObjectPath(f"{scheme}://{self.root.key.split('/', 1)[0]}")
            if not bucket.is_dir():
                raise SourceError(f"{self.root}: no such bucket (samepix does not create buckets)")
        if dry_run:
            raise SourceError(
                f"{self.root}: no such folder (a dry run creates nothing; without --dry-run "
                "sync creates it)"
            )
        if memory:  # no buckets there: the folder is made, as a local one is
            self.root.fs.makedirs(self.root.key, exist_ok=True)

    def hold(self, wait: float = 0) -> contextlib.AbstractContextManager[object]:
        """The bucket's sync lock, for the whole run (not taken by a dry run)."""
        from .bucket_lock import BucketLock, InProcessLock

        if in_process(self.root):
            self._lock = InProcessLock(self.root, wait=wait)
        else:
            self._lock = BucketLock(self.root, self.root / LOCK_KEY, wait=wait)
        return self._lock

    def clean_parts(self, folders: Iterable[str]) -> None:
        """Nothing to clean: an object is written whole or not at all."""

    def taken(self, rel: str) -> bool:
        return (self.root / rel).exists()

    def write_new(self, rel: str, data: bytes, mode_of: Path | None = None) -> bool:
        """Put ``data`` at ``rel`` whole, never over an object; False if the name is taken."""
        if self._lock is not None:
            self._lock.check()  # another machine may have taken over a lease this one lost
        return put_new(self.root / rel, data)

    def stat(self, rel: str) -> ObjectStat:
        """As the bucket's listing will show it, so the next update finds it unchanged."""
        return (self.root / rel).stat()

    # --replace-better (S3 only): every step conditional on the object judged worse.

    def holds_same(self, rel: str, other: str) -> bool:
        """The same ETag (a PUT of the same bytes gets the same one)."""
        try:
            mine, theirs = (self.root / rel).stat(), (self.root / other).stat()
        except SourceError:
            return False
        return mine.st_ino != 0 and mine.st_ino == theirs.st_ino

    def keep(self, rel: str, kept_rel: str, sha256: str) -> object | None:
        """Read the object (bytes and ETag), check that it holds the bytes judged worse, and
        put a copy at ``kept_rel`` (``If-None-Match: *``); its ETag, or None when it changed
        (or the kept name was taken meanwhile): then nothing is replaced."""
        found = get_versioned(self.root / rel)
        if found is None or hashlib.sha256(found.data).hexdigest() != sha256:
            return None
        if self._lock is not None:
            self._lock.check()
        if put_if(self.root / kept_rel, found.data, None) is None and not self.holds_same(
            kept_rel, rel
        ):
            return None
        return found.etag

    def replace(self, rel: str, data: bytes, version: object) -> bool:
        """One PUT over ``rel``, only while its ETag is the one kept (``If-Match``)."""
        if self._lock is not None:
            self._lock.check()
        return put_if(self.root / rel, data, str(version)) is not None

    def remove(self, rel: str, version: object) -> None:
        """One DELETE, only while ``rel``'s ETag is the one kept (``If-Match``): an object
        written there meanwhile stays (and is indexed by the next update)."""
        if self._lock is not None:
            self._lock.check()
        delete_if(self.root / rel, str(version))
