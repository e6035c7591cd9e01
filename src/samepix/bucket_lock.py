"""One sync at a time into a bucket: a lock object with a lease, taken by conditional writes.

Two machines syncing into one ``s3://bucket/prefix`` could each pick the same free name, or save
the same picture twice, since each keeps its own index on its own disk. So a sync holds
``<prefix>/.samepix/sync.lock`` while it runs:

- **taken** with a PUT that succeeds only where no object is (``If-None-Match: *``); when the
  object is there, it is read (its ETag, and the holder it names) and taken over with a PUT that
  succeeds only over that very version (``If-Match: <ETag>``) when it was **released**, when its
  lease has **run out** (the store's own clock: the response's ``Date`` minus the object's
  ``Last-Modified``, so no two machines' clocks are compared), or when its holder is a process of
  this very boot that no longer exists (a sync killed here: taken back at once). Of two machines
  taking over one stale lock, only one PUT matches the ETag: the other is told who holds it.
- **renewed** by a thread every quarter of the lease (a conditional PUT on the lock's current
  ETag). A renewal refused means another machine took the lock over (this process was stopped
  longer than the lease): :meth:`BucketLock.check`, called before every write, then stops the
  sync. So does a lease this process could not renew for most of its length.
- **released** with a conditional PUT of a "released" body (the object stays: S3 deletes are
  not conditional everywhere, and a released lock is taken like a missing one).

The lease is 60 seconds by default; ``SAMEPIX_SYNC_LEASE`` (seconds) sets another, written
into the lock, so the machine that judges staleness uses the holder's own lease.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from .errors import SyncError, SyncLocked
from .storage import ObjectPath, get_versioned, put_if

__all__ = ["DEFAULT_LEASE_S", "LEASE_ENV", "BucketLock", "InProcessLock", "lease_seconds"]

_log = logging.getLogger("samepix.bucket_lock")  # shown by --debug

DEFAULT_LEASE_S = 60.0
LEASE_ENV = "SAMEPIX_SYNC_LEASE"
_TRIES = 5  # lost races in a row before giving up (each one means another taker won)
_POLL_S = 2.0  # how often a waiting sync looks at the lock again (a GET each time)


def lease_seconds() -> float:
    """The lease this process promises to renew within (``SAMEPIX_SYNC_LEASE``, else 60 s)."""
    text = os.environ.get(LEASE_ENV, "").strip()
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 1.0 <= value <= 86_400.0:
        raise SyncError(f"{LEASE_ENV}={text!r}: a lease of 1 to 86400 seconds is expected")
    return value


def _boot_id() -> str:
    """This kernel boot's id (Linux), so a pid is compared only with pids of this boot."""
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: someone else's process, alive
        return True
    return True


def _printable(text: object, limit: int = 80) -> str:
    """Text another machine wrote, safe in a one-line message."""
    value = "".join(c if c.isprintable() and c.isascii() else "?" for c in str(text))
    return value[:limit]


@dataclass(frozen=True)
class _Holder:
    token: str
    host: str
    pid: int
    boot: str
    lease_s: float
    released: bool

    @staticmethod
    def parse(data: bytes) -> _Holder | None:
        try:
            raw: Any = json.loads(data)
            return _Holder(
                str(raw["token"]),
                str(raw["host"]),
                int(raw["pid"]),
                str(raw.get("boot", "")),
                float(raw["lease_s"]),
                bool(raw.get("released", False)),
            )
        except (ValueError, KeyError, TypeError):
            return None  # not samepix's lock: held until it goes stale at the default lease

    def describe(self) -> str:
        return f"host {_printable(self.host)}, pid {self.pid}"


class BucketLock:
    """The sync lock of a folder on S3 (see the module's text). A context manager."""

    def __init__(self, root: ObjectPath, lock: ObjectPath, *, wait: float = 0) -> None:
        self.root = root
        self.lock = lock
        self.wait = wait  # seconds to wait for a live holder to finish (0: refuse at once)
        self.lease_s = lease_seconds()
        self.token = uuid.uuid4().hex
        self._etag: str | None = None
        self._renewals = 0
        self._renewed = 0.0  # monotonic time of the last write of the lock
        self._lost: str | None = None
        self._stop = threading.Event()
        self._guard = threading.Lock()  # one writer of the lock at a time in this process
        self._thread: threading.Thread | None = None

    # -- the body ------------------------------------------------------------------------------

    def _body(self, *, released: bool = False) -> bytes:
        return json.dumps(
            {
                "token": self.token,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "boot": _boot_id(),
                "lease_s": self.lease_s,
                "renewals": self._renewals,  # every write has new bytes, so a new ETag
                "written_at": time.time(),
                "released": released,
            }
        ).encode()

    # -- taking --------------------------------------------------------------------------------

    def __enter__(self) -> BucketLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def acquire(self) -> None:
        deadline = time.monotonic() + self.wait
        while True:
            try:
                return self._try_acquire()
            except SyncLocked:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise
                time.sleep(min(_POLL_S, left))  # --wait: released, or stale, meanwhile

    def _try_acquire(self) -> None:
        for _ in range(_TRIES):
            etag = put_if(self.lock, self._body(), None)
            if etag is not None:
                return self._held(etag)
            found = get_versioned(self.lock)
            if found is None:  # released and removed meanwhile: try again
                continue
            holder = _Holder.parse(found.data)
            age = found.server_now - found.last_modified
            lease = holder.lease_s if holder is not None else DEFAULT_LEASE_S
            free = holder is not None and (holder.released or self._dead_here(holder))
            if not (free or age > lease):
                raise self._locked(holder, age, lease)
            etag = put_if(self.lock, self._body(), found.etag)
            if etag is not None:
                if holder is None or not holder.released:
                    who = holder.describe() if holder is not None else "not a samepix lock"
                    why = "gone" if free else f"not renewed for {age:.0f} s"
                    _log.debug("%s: took the sync lock over from %s (%s)", self.root, who, why)
                return self._held(etag)
            # Another machine took it over first (or its holder renewed it): look again.
        raise SyncLocked(
            f"{self.root}: the sync lock {self.lock} changed hands {_TRIES} times while this "
            "sync tried to take it; another sync is starting: try again later"
        )

    @staticmethod
    def _dead_here(holder: _Holder) -> bool:
        """A holder that was a process of this boot and is gone (killed): free at once."""
        boot = _boot_id()
        return bool(boot) and holder.boot == boot and not _alive(holder.pid)

    def _locked(self, holder: _Holder | None, age: float, lease: float) -> SyncLocked:
        who = holder.describe() if holder is not None else "not a samepix lock"
        left = max(0, int(lease - age + 0.999))
        return SyncLocked(
            f"another samepix sync is running into {self.root} ({who}; lock renewed "
            f"{max(0, int(age))} s ago, stale after {left} s more without renewal); wait for it "
            f"to finish, or stop it (lock: {self.lock})"
        )

    def _held(self, etag: str) -> None:
        self._etag = etag
        self._renewed = time.monotonic()
        self._thread = threading.Thread(
            target=self._renew_loop, name="samepix-bucket-lock", daemon=True
        )
        self._thread.start()

    # -- holding -------------------------------------------------------------------------------

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease_s / 4):
            with contextlib.suppress(Exception):  # a network error: tried again next time
                self.renew()
            if self._lost is not None:
                return

    def renew(self) -> None:
        """Write the lock again (a new Last-Modified), only over this process's own version."""
        with self._guard:
            if self._lost is not None or self._etag is None:
                return
            self._renewals += 1
            etag = put_if(self.lock, self._body(), self._etag)
            if etag is None:
                found = get_versioned(self.lock)
                holder = _Holder.parse(found.data) if found is not None else None
                who = holder.describe() if holder is not None else "another writer"
                self._lost = f"taken over by {who}"
                return
            self._etag = etag
            self._renewed = time.monotonic()

    def check(self) -> None:
        """Raise unless this process still holds the lock (called before every write)."""
        why = self._lost
        if why is None and time.monotonic() - self._renewed > 0.9 * self.lease_s:
            why = f"not renewed for {time.monotonic() - self._renewed:.0f} s"
        if why is not None:
            raise SyncError(
                f"{self.root}: this sync lost its lock ({why}; lease {self.lease_s:.0f} s); it "
                "stopped before writing again: objects saved before are kept, run it again "
                "to continue"
            )

    # -- releasing -----------------------------------------------------------------------------

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        with self._guard:
            if self._etag is None or self._lost is not None:
                return
            # Only over this process's own version: a lock taken over stays with its taker.
            with contextlib.suppress(Exception):
                put_if(self.lock, self._body(released=True), self._etag)
            self._etag = None


# ---------------------------------------------------------------------------------------------
# memory://: a store that lives inside this process


_IN_PROCESS_HELD: dict[str, tuple[object, str]] = {}  # folder URL -> (token, thread's name)
_IN_PROCESS_GUARD = threading.Lock()
_IN_PROCESS_POLL_S = 0.2


class InProcessLock:
    """The sync lock of a folder in fsspec's ``memory://`` store. That store exists only in
    this process, so no other machine or process can write there: a lock held in this process
    keeps a second sync (another thread) out. A context manager, like :class:`BucketLock`."""

    def __init__(self, root: ObjectPath, *, wait: float = 0) -> None:
        self.root = root
        self.wait = wait
        self._held = False

    def __enter__(self) -> InProcessLock:
        me = (object(), threading.current_thread().name)
        deadline = time.monotonic() + self.wait
        while True:
            with _IN_PROCESS_GUARD:
                holder = _IN_PROCESS_HELD.setdefault(self.root.url, me)
                if holder is me:
                    self._held = True
                    return self
            left = deadline - time.monotonic()
            if left <= 0:
                raise SyncLocked(
                    f"another samepix sync is running into {self.root} in this process "
                    f"(thread {holder[1]}); wait for it to finish"
                )
            time.sleep(min(_IN_PROCESS_POLL_S, left))

    def __exit__(self, *exc: object) -> None:
        if self._held:
            with _IN_PROCESS_GUARD:
                _IN_PROCESS_HELD.pop(self.root.url, None)
            self._held = False

    def check(self) -> None:
        """Held until released: nothing outside this process can take it over."""
