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
- **local state**: the index of the bucket, with the sync records (which URL stands for which
  object), lives on this machine (``--db``, or the default of
  :func:`samepix.storage.remote_db_path`), and the fetch state (the validators of each URL)
  beside it: ``<db stem>.fetch-state.sqlite3``.

Only S3 (and S3-compatible stores) take conditional writes through fsspec here; other stores are
refused for ``sync`` with one line. A dry run reads the bucket and writes nothing into it, not
even the lock.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SourceError, UsageError
from .index import STATE_DIR
from .storage import ObjectPath, ObjectStat, conditional_writes, put_new

if TYPE_CHECKING:
    from .bucket_lock import BucketLock

__all__ = ["LOCK_KEY", "BucketTarget", "fetch_state_beside"]

#: The lock object, below the synced folder (its .samepix/ prefix is never listed as pictures).
LOCK_KEY = f"{STATE_DIR}/sync.lock"


def fetch_state_beside(db_path: Path) -> Path:
    """Where the fetch state of a bucket's sync lives: beside its local index."""
    return db_path.with_name(f"{db_path.stem}.fetch-state.sqlite3")


class BucketTarget:
    """A folder on S3 as the place a sync writes into."""

    def __init__(self, root: ObjectPath, db_path: Path) -> None:
        self.root = root
        self.fetch_state_path = fetch_state_beside(db_path)
        self._lock: BucketLock | None = None

    def prepare(self, *, dry_run: bool, replace_better: bool) -> None:
        """Refuse what cannot be done here, before any work: a store without conditional
        writes, --replace-better, a bucket that is missing or cannot be read."""
        scheme = self.root.url.split("://", 1)[0]
        if not conditional_writes(self.root):
            raise UsageError(
                f"{self.root}: sync into {scheme}:// is not supported: it needs conditional "
                "writes (S3's If-None-Match / If-Match) to never overwrite an object and to "
                "keep two machines apart; sync into s3://, or into a local folder"
            )
        if replace_better:
            raise UsageError(
                f"{self.root}: --replace-better into object storage is not supported yet (it "
                "replaces a file in place); sync into a local folder for it"
            )
        if self.root.is_dir():  # errors (denied, no credentials) are raised as one line
            return
        bucket = ObjectPath(f"{scheme}://{self.root.key.split('/', 1)[0]}")
        if not bucket.is_dir():
            raise SourceError(f"{self.root}: no such bucket (samepix does not create buckets)")
        if dry_run:
            raise SourceError(
                f"{self.root}: no such folder (a dry run creates nothing; without --dry-run "
                "sync creates it)"
            )

    def hold(self, wait: float = 0) -> contextlib.AbstractContextManager[object]:
        """The bucket's sync lock, for the whole run (not taken by a dry run)."""
        from .bucket_lock import BucketLock

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
