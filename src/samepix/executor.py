"""Where shard tasks run: this process, a local pool of worker processes, or a Dask cluster.

The work of ``index`` (and of ``sync``'s index update) is cut into *shards*: a bounded list of
files, described by a plain picklable function. An :class:`Executor` runs that function over a
stream of shards and yields each shard's result as it finishes (in no particular order), with at
most a bounded number of shards in flight, so a stream of millions never sits in memory. The
caller (the one coordinator) is the only writer of the index.

- :class:`LocalExecutor` — the default: worker processes on this machine (``fork`` when this
  process has one thread: fast, no re-import; ``spawn`` otherwise), or this process itself when
  a pool would not pay (one worker, a single shard).
- :class:`DaskExecutor` — a ``dask.distributed`` cluster: ``tcp://host:8786`` for a running
  scheduler, ``local:N`` for a ``LocalCluster`` of N worker processes started here. Needs the
  ``samepix[dask]`` extra; imported only when asked for.

Local worker processes never outlive the process that started them: on Linux the kernel kills
them when it dies (``PR_SET_PDEATHSIG``), everywhere a watchdog thread notices that they were
orphaned. They do not hold the parent's standard streams open (a caller reading samepix's output
sees end of file when samepix ends), and a fork does not carry the parent's locks
(see :func:`close_in_children`).
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import signal
import sys
import threading
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Protocol, TypeVar

from .errors import SamepixError, UsageError

__all__ = [
    "DaskExecutor",
    "Executor",
    "LocalExecutor",
    "close_in_children",
    "cpu_count",
    "make_executor",
]

T = TypeVar("T")
R = TypeVar("R")

#: Shards in flight per slot: enough that a slot never waits for the coordinator, few enough
#: that results waiting to be written stay small.
_IN_FLIGHT_PER_SLOT = 4


class Executor(Protocol):
    """Runs ``fn(shard)`` for every shard; the seam between the work and where it runs."""

    #: Shards that run at the same time (workers × threads).
    slots: int
    #: The most items a shard should hold here (a task's fixed cost decides: about 1 ms to send
    #: a shard to a local process, a few ms through a Dask scheduler).
    max_shard: int

    def map_unordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        """``fn(shard)`` for each shard, yielded as they finish; at most ``4 × slots`` in
        flight. A shard whose task raises ends the iteration with that exception."""
        ...

    def map_ordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        """``fn(shard)`` for each shard, yielded in the order of ``shards``; at most
        ``4 × slots`` shards submitted past the oldest one not yielded yet, so the finished
        results held while a slow shard runs stay bounded (a stream of shards runs in constant
        memory). A shard whose task raises ends the iteration with that exception."""
        ...

    def forget(self, fn: Callable[[], object]) -> None:
        """Run ``fn()`` once in every worker process that outlives a job (to drop what a job's
        shards kept there: decoded images); a no-op where workers end with the job."""
        ...

    def close(self) -> None:
        """Release workers and connections (the executor cannot be used afterwards)."""
        ...


def cpu_count() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


# ---------------------------------------------------------------------------------------------
# File descriptors a forked worker must not keep


_CLOSE_IN_CHILD: set[int] = set()


def close_in_children(fd: int, *, on: bool = True) -> None:
    """Close ``fd`` in every process forked from this one while it is registered (``on``).

    For a lock file: ``flock`` locks belong to the open file description, which a forked child
    shares; a child that outlived its parent would keep the lock. (``spawn`` and ``subprocess``
    children never get it: Python opens files non-inheritable.)
    """
    if on:
        _CLOSE_IN_CHILD.add(fd)
    else:
        _CLOSE_IN_CHILD.discard(fd)


def _after_fork_in_child() -> None:
    for fd in list(_CLOSE_IN_CHILD):
        with contextlib.suppress(OSError):
            os.close(fd)
    _CLOSE_IN_CHILD.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# ---------------------------------------------------------------------------------------------
# Local worker processes


_PR_SET_PDEATHSIG = 1


def _worker_init(parent: int, deathsig: bool) -> None:
    """Runs first in every local worker process: tie its life to the parent's."""
    # The parent handles interruption (it stops the pool); a worker must not print a traceback
    # of its own for the Ctrl-C its process group received, nor run the parent's handlers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if deathsig and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the line above took effect
        os._exit(1)
    # Results and errors travel back through the pool's pipes; the standard streams are the
    # parent's caller's, and a worker holding them would keep that caller waiting for EOF.
    with contextlib.suppress(OSError):
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        os.close(null)
    watchdog = threading.Thread(
        target=_watch_parent, args=(parent,), name="samepix-orphan-watch", daemon=True
    )
    watchdog.start()


def _watch_parent(parent: int) -> None:
    """End this worker once its parent is gone (where no parent-death signal exists, or the
    thread that forked it ended first)."""
    import time

    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(1)


class LocalExecutor:
    """Worker processes on this machine (``workers`` of them; default one per CPU).

    A pool lives for one :meth:`map_unordered` call; with one worker, or a single shard, the
    shards run in this process (starting processes would cost more than it saves).
    """

    max_shard = 8

    def __init__(self, workers: int | None = None) -> None:
        if workers is not None and workers < 1:
            raise UsageError(f"workers must be at least 1, got {workers}")
        self.slots = workers or cpu_count()

    def __repr__(self) -> str:
        return f"<LocalExecutor {self.slots} processes>"

    def close(self) -> None:
        pass

    def forget(self, fn: Callable[[], object]) -> None:
        pass  # the pool's processes end with each map; in-process shards are the caller's

    def map_unordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        queue, pooled = self._peek(shards)
        if not pooled:
            yield from map(fn, queue)
            return
        yield from self._pool_map(fn, queue)

    def map_ordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        queue, pooled = self._peek(shards)
        if not pooled:
            yield from map(fn, queue)
            return
        from collections import deque
        from concurrent.futures import Future

        pool = self._start_pool()
        window: deque[Future[R]] = deque(
            pool.submit(fn, shard)
            for shard in itertools.islice(queue, _IN_FLIGHT_PER_SLOT * self.slots)
        )
        clean = False
        try:
            while window:
                result = _local_result(window.popleft())
                nxt = next(queue, None)
                if nxt is not None:  # submitted before the caller takes its time with result
                    window.append(pool.submit(fn, nxt))
                yield result
            clean = True
        finally:
            _end_pool(pool, clean)

    def _start_pool(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # fork when this process has no other thread (fast, and a caller's script is not
        # re-imported: no `if __name__ == "__main__"` guard needed); spawn otherwise, as forking
        # a threaded process can deadlock. Workers never touch the parent's SQLite connection.
        methods = multiprocessing.get_all_start_methods()
        single = threading.active_count() == 1
        ctx = multiprocessing.get_context("fork" if "fork" in methods and single else "spawn")
        # The pool starts its processes from the thread that submits (this one). The kernel's
        # parent-death signal fires when that *thread* ends, so it is used only from the main
        # thread; the watchdog covers the rest.
        deathsig = threading.current_thread() is threading.main_thread()
        return ProcessPoolExecutor(
            max_workers=self.slots,
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(), deathsig),
        )

    def _peek(self, shards: Iterable[T]) -> tuple[Iterator[T], bool]:
        """The shards (two read ahead), and whether a pool is worth starting for them: with one
        slot or one shard, they run in this process."""
        stream = iter(shards)
        head = list(itertools.islice(stream, 2))
        return itertools.chain(head, stream), self.slots > 1 and len(head) == 2

    def _pool_map(self, fn: Callable[[T], R], queue: Iterator[T]) -> Iterator[R]:
        from concurrent.futures import FIRST_COMPLETED, Future, wait

        pool = self._start_pool()
        running: set[Future[R]] = set()
        clean = False
        try:
            for shard in queue:  # keep a bounded number of shards in flight
                running.add(pool.submit(fn, shard))
                if len(running) >= _IN_FLIGHT_PER_SLOT * self.slots:
                    break
            while running:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    result = _local_result(fut)
                    yield result
                    nxt = next(queue, None)
                    if nxt is not None:
                        running.add(pool.submit(fn, nxt))
            clean = True
        finally:
            _end_pool(pool, clean)


def _local_result(future: Any) -> Any:
    from concurrent.futures.process import BrokenProcessPool

    try:
        return future.result()
    except BrokenProcessPool as exc:
        raise SamepixError(
            f"a worker process died ({exc}); run again to resume (finished work is kept)"
        ) from exc


def _end_pool(pool: Any, clean: bool) -> None:
    if clean:
        pool.shutdown(wait=True)
    else:
        # Interrupted, or a shard failed: stop now rather than finish what is queued.
        _kill_pool(pool)


def _kill_pool(pool: Any) -> None:
    processes = list(getattr(pool, "_processes", {}).values())  # no public way to reach them
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        with contextlib.suppress(Exception):
            process.kill()
    for process in processes:
        with contextlib.suppress(Exception):
            process.join(5)


# ---------------------------------------------------------------------------------------------
# Dask


_DASK_INSTALL = "pip install 'samepix[dask]'"


class DaskExecutor:
    """Shards as tasks on a ``dask.distributed`` cluster.

    Parameters
    ----------
    address : str
        ``tcp://host:port`` (or any scheduler address Dask accepts) for a running scheduler;
        ``local:N`` to start a ``LocalCluster`` of N single-threaded worker processes here
        (closed with the executor).
    timeout : float
        Seconds to wait for the scheduler before giving up (nothing has been done by then).

    A worker process that dies mid-task costs nothing but time: the scheduler runs its tasks
    again on another worker, and each shard's result reaches the coordinator once. Workers
    must be able to import samepix and read the files (the same path, or object storage).
    """

    max_shard = 32

    def __init__(self, address: str, *, timeout: float = 10.0) -> None:
        try:
            # Typed as Any: distributed ships no complete annotations, and may be absent.
            distributed: Any = importlib.import_module("distributed")
        except ImportError as exc:
            raise UsageError(
                f"--dask {address}: Dask is not installed (install it with: {_DASK_INSTALL})"
            ) from exc
        self.address = address
        self._cluster: Any = None
        if address.startswith("local:"):
            count = address[len("local:") :]
            if not count.isdigit() or int(count) < 1:
                raise UsageError(f"--dask {address}: expected local:N with N ≥ 1 worker processes")
            with warnings.catch_warnings(), _forkserver_workers():
                # "Port 8787 is already in use": its HTTP server moves to a free port, fine.
                warnings.simplefilter("ignore")
                self._cluster = distributed.LocalCluster(
                    n_workers=int(count),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",  # this machine only
                    dashboard_address=None,
                    silence_logs=50,  # logging.CRITICAL: the CLI's stderr is samepix's
                )
            target: Any = self._cluster
        else:
            _reachable(address, timeout)
            target = address
        try:
            self.client = distributed.Client(target, timeout=timeout, set_as_default=False)
        except (OSError, TimeoutError) as exc:
            self._close_cluster()
            raise SamepixError(
                f"--dask {address}: cannot reach the Dask scheduler ({_short(exc)})"
            ) from exc
        threads = sum(self.client.nthreads().values())
        self.slots = max(1, threads)

    def __repr__(self) -> str:
        return f"<DaskExecutor {self.address} {self.slots} slots>"

    def map_unordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        as_completed: Any = importlib.import_module("distributed").as_completed

        queue = iter(shards)
        limit = _IN_FLIGHT_PER_SLOT * max(self.slots, len(self.client.nthreads()) or 1)
        first = [
            self.client.submit(fn, shard, pure=False) for shard in itertools.islice(queue, limit)
        ]
        if not first:
            return
        pending = as_completed(first, loop=self.client.loop)
        try:
            for future in pending:
                result = self._result(future)
                yield result
                nxt = next(queue, None)
                if nxt is not None:
                    pending.add(self.client.submit(fn, nxt, pure=False))
        finally:
            for future in list(pending.futures):
                with contextlib.suppress(Exception):
                    future.cancel()

    def map_ordered(self, fn: Callable[[T], R], shards: Iterable[T]) -> Iterator[R]:
        from collections import deque

        queue = iter(shards)
        limit = _IN_FLIGHT_PER_SLOT * max(self.slots, len(self.client.nthreads()) or 1)
        window: deque[Any] = deque(
            self.client.submit(fn, shard, pure=False) for shard in itertools.islice(queue, limit)
        )
        try:
            while window:
                result = self._result(window[0])
                window.popleft()
                nxt = next(queue, None)
                if nxt is not None:  # submitted before the caller takes its time with result
                    window.append(self.client.submit(fn, nxt, pure=False))
                yield result
        finally:
            for future in window:
                with contextlib.suppress(Exception):
                    future.cancel()

    def _result(self, future: Any) -> Any:
        """A finished task's result (released on the cluster once here)."""
        try:
            result = future.result()
        except Exception as exc:
            if type(exc).__name__ == "KilledWorker":
                raise SamepixError(
                    f"--dask {self.address}: a shard killed its workers repeatedly "
                    f"({_short(exc)}); run again to resume (finished work is kept)"
                ) from exc
            raise
        future.release()
        return result

    def forget(self, fn: Callable[[], object]) -> None:
        # Dask's workers outlive the job (a running cluster serves the next one too). Best
        # effort: a worker lost meanwhile took what it kept with it; the job's result stands.
        with contextlib.suppress(Exception):
            self.client.run(fn)

    def _close_cluster(self) -> None:
        if self._cluster is not None:
            with contextlib.suppress(Exception):
                self._cluster.close()
            self._cluster = None

    def close(self) -> None:
        client = getattr(self, "client", None)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()
        self._close_cluster()


@contextlib.contextmanager
def _forkserver_workers() -> Iterator[None]:
    """Start a ``LocalCluster``'s worker processes from a fork server, when this process has
    none running yet.

    Dask spawns each worker by default: a fresh interpreter that imports dask, distributed and
    numpy again, about 1.3 s of a 2-worker cluster's start on a 2-core machine (measured). A
    fork server is one fresh, single-threaded process that imports them once (Dask preloads
    them) and forks each worker from itself: the workers start in about half the time, and
    stop at once. Safe where forking this process would not be: the server has no threads
    and has run no OpenCV (a fork of a process whose OpenCV pool ran hangs in the child), and
    this process, which has threads (the client's event loop), is never forked.

    A fork server keeps the environment (credentials, endpoints), working folder and
    ``sys.path`` of the moment it started, for as long as this process lives. So it is used
    only for the first cluster a process starts (the command line starts one); a later one —
    a program that makes several executors — is spawned as before and sees the process as it
    is then. Only while the cluster starts: a worker restarted later is spawned too.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods() or _fork_server_running():
        yield
        return
    dask: Any = importlib.import_module("dask")
    with dask.config.set({"distributed.worker.multiprocessing-method": "forkserver"}):
        yield


def _fork_server_running() -> bool:
    """Whether this process already started multiprocessing's fork server (an older one)."""
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    # Private, so read defensively: unknown means "running", and workers are spawned.
    return server is None or getattr(server, "_forkserver_pid", 0) is not None


def _reachable(address: str, timeout: float) -> None:
    """Fail at once, in one line, when nothing listens at a ``tcp://`` address (Dask's own
    client would retry until its timeout, then raise a multi-line error)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if parts.scheme not in ("tcp", "") or parts.hostname is None:
        return  # tls://, ucx://, inproc://: left to Dask
    try:
        port = parts.port or 8786
    except ValueError as exc:
        raise UsageError(f"--dask {address}: not a scheduler address ({exc})") from exc
    try:
        with socket.create_connection((parts.hostname, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = exc.strerror or _short(exc) or type(exc).__name__
        raise SamepixError(f"--dask {address}: cannot reach the Dask scheduler ({reason})") from exc


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def make_executor(spec: str | None, *, workers: int | None = None) -> Executor:
    """The executor a command line asks for: ``--dask ADDRESS`` or local ``--workers N``."""
    if spec:
        return DaskExecutor(spec)
    return LocalExecutor(workers)
