"""Re-checking URLs already downloaded: one conditional GET on a kept-alive connection.

A second ``sync`` of an unchanged list is, per URL, one small request and a ``304`` answer
with no body. httpx, samepix's HTTP client (:mod:`samepix.fetch`), spends 0.5-2.6 ms of CPU
on each (its async pool the most, and more with more connections: encode/httpx#3215), which
held sync's re-check at 380-470 URLs/s on a local server; Python's own ``http.client`` on a
kept-alive connection spends about 0.1 ms (``benchmarks/bench_sync.py``, docs/benchmarks.md).

So this module makes exactly that request (the headers httpx would send, plus the validators)
and recognises exactly one answer: a clean ``304 Not Modified``. Anything else — a ``200``, a
redirect, an error status, a URL it would have to rewrite, a connection that fails or is slow,
a proxy in the environment, an address policy (``allow_private=False``) — gives None, and the
caller fetches the URL with the :class:`~samepix.fetch.Fetcher` as before, with its retries,
redirect checks, limits and messages. Nothing is lost by falling back but the one request.

Each request ends by the fetcher's ``limits.total_timeout`` (every socket read is cut to what
is left, so a server dripping its headers is cut off), connects within ``connect_timeout``,
and reads within ``read_timeout``; a host whose connection failed once is left to the fetcher
for the rest of the run, and so is the rest of a list whose URLs have mostly changed (each
re-check here would be a request more than the fetcher's alone).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import io
import queue
import re
import socket
import threading
import time
import urllib.request
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    import ssl

    from .fetch import Download, Fetcher

__all__ = ["Rechecker"]

# A URL sent as written: ASCII characters RFC 3986 allows in a URL, so httpx would not
# percent-encode anything either (it normalises dot segments too: those are checked apart).
_SENT_AS_IS = re.compile(r"[A-Za-z0-9\-._~:/?\[\]@!$&'()*+,;=%]*")
# Errors of the connection or of the answer's framing: the fetcher takes the URL over.
_FAILURES = (OSError, http.client.HTTPException, ValueError)
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
# Answers other than 304 after which, when they outnumber the 304s, re-checks stop here.
_CHANGED_ENOUGH = 16


class Rechecker:
    """Conditional re-checks for ``fetcher``'s URLs on kept-alive connections, in threads.

    Use :meth:`for_fetcher` (None where its configuration needs the fetcher's own path), then
    :meth:`acheck` from the event loop or :meth:`check` from a thread; :meth:`close` at the end.
    """

    def __init__(self, fetcher: Fetcher, *, threads: int) -> None:
        self.fetcher = fetcher
        self._confirms = fetcher.state is not None  # else the caller remembers each 304
        self._headers = fetcher.request_headers()
        self._idle: dict[tuple[str, str, int], list[http.client.HTTPConnection]] = {}
        self._failed_hosts: set[tuple[str, str, int]] = set()
        self._unchanged = self._changed = 0  # answers so far: 304s, and anything else
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None
        self._threads = max(1, threads)
        self._workers: list[threading.Thread] = []
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()

    @classmethod
    def for_fetcher(
        cls, fetcher: Fetcher, *, threads: int, stateless: bool = False
    ) -> Rechecker | None:
        """A Rechecker, or None where only the fetcher may connect: no state file to hold the
        validators, an address policy to enforce, or a proxy from the environment.

        ``stateless``: the fetcher has no state file but knows the validators
        (:meth:`Fetcher.known`, as a sync shard's fetcher on a worker does), and the caller
        remembers each 304 (:meth:`Fetcher.remember`, on the coordinator)."""
        if (fetcher.state is None and not stateless) or not fetcher.allow_private:
            return None
        if any(k in ("http", "https", "all") for k in urllib.request.getproxies()):
            return None
        return cls(fetcher, threads=threads)

    async def acheck(self, url: str) -> Download | None:
        """:meth:`check` in one of this Rechecker's threads."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Download | None] = loop.create_future()
        if len(self._workers) < self._threads:
            # Daemon threads: a run stopped early (Ctrl-C) does not wait at exit for a check
            # stuck on a slow server; each ends by its deadline anyway.
            worker = threading.Thread(target=self._work, name="samepix-recheck", daemon=True)
            worker.start()
            self._workers.append(worker)
        self._jobs.put((url, loop, future))
        return await future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            url, loop, future = job
            try:
                result = self.check(url)
            except BaseException as exc:  # a bug or a state-file error: the caller's to raise
                _hand(loop, future, None, exc)
            else:
                _hand(loop, future, result, None)

    def check(self, url: str) -> Download | None:
        """The 304 Download for ``url`` (remembered in the fetcher's state), or None when the
        server said anything else or the fetcher must handle the URL."""
        previous = self.fetcher.known(url)
        if previous is None or not previous.has_validators:
            return None
        where = _where(url)
        if where is None:
            return None
        key = (where[0], where[1], where[2])
        if key in self._failed_hosts or self._mostly_changed():
            return None
        headers = {**self._headers, **previous.conditional_headers()}
        limits = self.fetcher.limits
        deadline = time.monotonic() + limits.total_timeout
        status: int | None = None
        etag = last_modified = None
        for _try in range(2):  # a kept-alive connection the server closed meanwhile: once more
            conn, reused = self._take(key)
            try:
                status, etag, last_modified = self._exchange(conn, where[3], headers, deadline)
                break
            except _FAILURES as exc:
                conn.close()
                if reused and isinstance(exc, _STALE):
                    continue
                if not reused:
                    self._failed_hosts.add(key)  # slow or down: the fetcher's retries decide
                return None
        with self._lock:
            if status == 304:
                self._unchanged += 1
            else:
                self._changed += 1
        if status != 304:
            return None
        return self._confirmed(url, previous, etag, last_modified)

    def _mostly_changed(self) -> bool:
        """Whether this run's list has mostly changed: then every re-check here is a request
        more than the fetcher's alone, and the rest of the list goes straight to the fetcher."""
        with self._lock:
            return self._changed >= _CHANGED_ENOUGH and self._changed > self._unchanged

    def close(self) -> None:
        """Stop the threads (once their checks end) and close every kept-alive connection."""
        for _ in self._workers:
            self._jobs.put(None)
        with self._lock:
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    # -- one exchange ---------------------------------------------------------------------------

    def _exchange(
        self,
        conn: http.client.HTTPConnection,
        target: str,
        headers: dict[str, str],
        deadline: float,
    ) -> tuple[int, str | None, str | None]:
        """Send the GET, read the status line and headers; keep the connection after a 304."""
        limits = self.fetcher.limits
        if conn.sock is None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no time left to connect")
            conn.timeout = min(limits.connect_timeout, left)
            conn.connect()
        sock = conn.sock
        assert isinstance(sock, _DeadlineSocket)
        sock.deadline = deadline
        conn.request("GET", target, headers=headers)
        response = conn.getresponse()
        status = response.status
        etag, last_modified = response.getheader("etag"), response.getheader("last-modified")
        if status != 304:
            conn.close()  # the body is the fetcher's to read (or not): this connection is done
            return status, etag, last_modified
        response.read()  # nothing: a 304 has no body
        if response.will_close:
            conn.close()
        else:
            self._give_back(conn)
        return status, etag, last_modified

    def _confirmed(
        self, url: str, previous: Any, etag: str | None, last_modified: str | None
    ) -> Download:
        """The Download the fetcher makes of a 304 (``Fetcher.get``), remembered the same way."""
        from .fetch import Download

        download = Download.not_modified_since(
            previous, url, final_url=url, etag=etag, last_modified=last_modified, transferred=0
        )
        state = self.fetcher.state
        if self._confirms and state is not None:
            state.confirm(
                url,
                etag=download.etag,
                last_modified=download.last_modified,
                checked_at=time.time(),
            )
        return download

    # -- connections ------------------------------------------------------------------------------

    def _take(self, key: tuple[str, str, int]) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get(key)
            if idle:
                return idle.pop(), True
        scheme, host, port = key
        read_timeout = self.fetcher.limits.read_timeout
        if scheme == "https":
            return _HTTPSConnection(host, port, read_timeout, self._ssl_context()), False
        return _HTTPConnection(host, port, read_timeout), False

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        key = ("https" if isinstance(conn, _HTTPSConnection) else "http", conn.host, conn.port)
        with self._lock:
            self._idle.setdefault(key, []).append(conn)

    def _ssl_context(self) -> ssl.SSLContext:
        with self._lock:
            if self._ssl is None:
                import httpx

                # The very certificates httpx verifies against (certifi, SSL_CERT_FILE/DIR).
                self._ssl = httpx.create_ssl_context(trust_env=True)
            return self._ssl


_Job = tuple[str, asyncio.AbstractEventLoop, "asyncio.Future[Download | None]"]


def _hand(
    loop: asyncio.AbstractEventLoop,
    future: asyncio.Future[Download | None],
    result: Download | None,
    error: BaseException | None,
) -> None:
    """Give a worker's answer to the waiting coroutine (unless it was cancelled meanwhile)."""

    def deliver() -> None:
        if future.cancelled():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)

    with contextlib.suppress(RuntimeError):  # the loop has closed: nobody waits for this answer
        loop.call_soon_threadsafe(deliver)


def _where(url: str) -> tuple[str, str, int, str] | None:
    """(scheme, host, port, request target), or None for a URL httpx would send rewritten."""
    if _SENT_AS_IS.fullmatch(url) is None:
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if scheme not in ("http", "https") or not host or parts.username or parts.password:
        return None
    path = parts.path or "/"
    if any(segment in (".", "..") for segment in path.split("/")):
        return None  # httpx removes dot segments
    if url.endswith("?") or "#" in url:
        return None  # httpx drops an empty query and the fragment: leave those to it
    target = f"{path}?{parts.query}" if parts.query else path
    return scheme, host, port or (443 if scheme == "https" else 80), target


class _DeadlineSocket:
    """A connection's socket whose every read and write ends by the request's deadline:
    socket timeouts are per operation, and a server sending a byte a second never trips one."""

    def __init__(self, sock: socket.socket, read_timeout: float) -> None:
        self.sock = sock
        self.read_timeout = read_timeout
        self.deadline = float("inf")

    def arm(self) -> None:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("the total time allowed for this request has passed")
        self.sock.settimeout(min(self.read_timeout, left))

    def sendall(self, data: bytes) -> None:
        self.arm()
        self.sock.sendall(data)

    def makefile(self, mode: str) -> io.BufferedReader:
        assert mode == "rb"
        return io.BufferedReader(_DeadlineReader(self))

    def close(self) -> None:
        self.sock.close()


class _DeadlineReader(io.RawIOBase):
    def __init__(self, owner: _DeadlineSocket) -> None:
        self.owner = owner

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.owner.arm()
        return self.owner.sock.recv_into(buffer)


class _HTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, port: int, read_timeout: float) -> None:
        super().__init__(host, port)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()
        self.sock = _DeadlineSocket(self.sock, self.read_timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    def __init__(self, host: str, port: int, read_timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, context=context)
        self.read_timeout = read_timeout

    def connect(self) -> None:
        super().connect()  # TCP, then TLS with SNI and the host name checked
        self.sock = _DeadlineSocket(self.sock, self.read_timeout)
