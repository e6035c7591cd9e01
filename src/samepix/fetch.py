"""HTTP(S) downloads: the only module that knows the HTTP client (httpx).

A :class:`Fetcher` holds one configuration (limits, retry policy, address policy, state file,
User-Agent) for a sync and an async httpx client. Every download is bounded: connect/read
timeouts, a total deadline, a maximum body size enforced while streaming (a server that sends
forever or lies in Content-Length is cut off), a maximum number of redirects (followed here, so
each hop is checked) and the pixel limit, checked from the image header as soon as the first
bytes arrive. Bodies are sniffed from their magic bytes: an HTML page served as ``image/jpeg``
is an error that says so. Failures are retried with exponential backoff and jitter when they
may pass (connection errors, 5xx, 429 with its ``Retry-After``), never for other 4xx.

The request logic is written once, as generators that yield what they need done (send a
request, read a chunk, sleep); a small sync driver and a small async driver carry it out with
httpx's ``Client`` or ``AsyncClient``. httpx failures become
:class:`~samepix.errors.FetchError` here, and nowhere else. (One exception to "only module":
``sync`` re-checks URLs it already holds with :mod:`samepix.recheck`, a conditional GET on the
standard library's ``http.client``, about 10× cheaper per request; anything but a clean ``304``
there comes back to this module.)
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import ipaddress
import logging
import os
import random
import socket
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, Union

from . import __version__
from .errors import FetchError, LimitExceeded, SamepixError, UsageError
from .formats import SNIFF_BYTES, describe_non_image, read_header, sniff_format
from .limits import DEFAULT_LIMITS, Limits
from .state import FetchState, UrlRecord

if TYPE_CHECKING:
    import httpx

__all__ = [
    "DEFAULT_RETRY",
    "USER_AGENT",
    "Download",
    "Fetcher",
    "Probe",
    "Retry",
    "probe",
]

USER_AGENT = f"samepix/{__version__} (+https://pypi.org/project/samepix/)"

_log = logging.getLogger("samepix.fetch")

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Where a header check is tried while a body streams in: cheap (a Pillow header parse) and
# geometric, so a JPEG whose SOF follows a big EXIF block costs a handful of tries.
_FIRST_HEADER_TRY = 512
# Most bytes read from a body we do not need just to keep its connection alive.
_DRAIN_BYTES = 64 * 1024
# getaddrinfo's "this name does not exist" (Linux/glibc, macOS/BSD): trying again cannot help,
# unlike "Temporary failure in name resolution".
_NO_SUCH_HOST = ("Name or service not known", "nodename nor servname", "No address associated")
_T = TypeVar("_T")


# ---------------------------------------------------------------------------------------------
# Configuration and results


@dataclass(frozen=True)
class Retry:
    """When and how often a failed request is tried again.

    Tried again: connection errors (refused, reset, closed early, timed out), HTTP 5xx and 429.
    Never: other 4xx, a body that is not an image, a limit exceeded, a refused address.

    Parameters
    ----------
    tries
        Attempts in all (1 = no retry).
    backoff
        Delay before the second attempt, in seconds; it doubles for each further attempt.
    max_backoff
        Longest delay between two attempts.
    jitter
        Fraction of each delay drawn at random (0 = none, 1 = anywhere from 0 to the delay), so
        many clients failing together do not retry together.
    max_retry_after
        Longest ``Retry-After`` honoured, in seconds; a longer one is waited for this long.
    """

    tries: int = 3
    backoff: float = 0.5
    max_backoff: float = 8.0
    jitter: float = 0.5
    max_retry_after: float = 30.0

    def __post_init__(self) -> None:
        if self.tries < 1:
            raise UsageError(f"retry tries must be >= 1, got {self.tries}")
        if min(self.backoff, self.max_backoff, self.max_retry_after) < 0:
            raise UsageError("retry delays must be >= 0")
        if not 0.0 <= self.jitter <= 1.0:
            raise UsageError(f"retry jitter must be within [0, 1], got {self.jitter}")

    def delay(self, failed_tries: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after ``failed_tries`` failures (``Retry-After`` wins, capped)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.backoff * 2.0 ** (failed_tries - 1), self.max_backoff)
        return base * (1.0 - self.jitter * rng.random())


DEFAULT_RETRY = Retry()


@dataclass(frozen=True)
class Download:
    """A response body and what the server said about it.

    For a conditional request answered ``304 Not Modified``, ``not_modified`` is True, ``data``
    is empty and ``sha256``, ``size`` and ``content_type`` are those remembered from the last
    full download (``previous``).
    """

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    data: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    transferred: int  # bytes received on the wire, every try and redirect included
    sha256: str
    size: int  # bytes of the body (decoded from any Content-Encoding)
    not_modified: bool = False
    previous: UrlRecord | None = None  # what the state file knew before this request
    redirects: tuple[str, ...] = ()  # each URL redirected to, in order
    tries: int = 1
    content_disposition: str | None = None  # the header as sent (sync names files from it)

    @property
    def unchanged(self) -> bool:
        """True when the body is known to be the one downloaded last time (304 or same hash)."""
        return self.not_modified or (
            self.previous is not None and self.previous.sha256 == self.sha256
        )

    @classmethod
    def not_modified_since(
        cls,
        previous: UrlRecord,
        url: str,
        *,
        final_url: str,
        etag: str | None,
        last_modified: str | None,
        transferred: int,
        redirects: tuple[str, ...] = (),
        tries: int = 1,
    ) -> Download:
        """The answer ``304 Not Modified`` to a conditional request: the body, its hash and type
        are those of ``previous``; new validators sent with the 304 replace the old."""
        return cls(
            url=url,
            final_url=final_url,
            status=304,
            data=b"",
            content_type=previous.content_type,
            etag=etag or previous.etag,
            last_modified=last_modified or previous.last_modified,
            transferred=transferred,
            sha256=previous.sha256,
            size=previous.size,
            not_modified=True,
            previous=previous,
            redirects=redirects,
            tries=tries,
        )


@dataclass(frozen=True)
class Probe:
    """What the first bytes of a remote image say, without downloading all of it."""

    url: str
    final_url: str
    format: str
    width: int | None  # as a viewer shows it (EXIF orientation applied); None if not found
    height: int | None
    size: int | None  # bytes of the whole image (Content-Range or Content-Length), if told
    transferred: int  # bytes actually read
    ranged: bool  # the server honoured the Range request
    orientation: int = 1
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None

    @property
    def pixels(self) -> int | None:
        return None if self.width is None or self.height is None else self.width * self.height

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (``samepix probe --json``)."""
        return {
            "url": self.url,
            "final_url": self.final_url,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "orientation": self.orientation,
            "size": self.size,
            "transferred": self.transferred,
            "ranged": self.ranged,
            "content_type": self.content_type,
            "etag": self.etag,
            "last_modified": self.last_modified,
        }


# ---------------------------------------------------------------------------------------------
# What the request logic asks its driver to do


@dataclass(frozen=True)
class _Send:
    """Send a GET; the driver answers with the response (headers read, body not yet).

    Connecting, sending and reading the status line and headers must end by ``deadline``
    (``time.monotonic()``): a server that drips its headers a byte at a time is cut off then.
    """

    url: str
    headers: dict[str, str]
    deadline: float


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Read:
    """Read the next chunk of the current body, by ``deadline``; the driver answers b"" at its
    end."""

    deadline: float


_Effect = Union[_Send, _Sleep, _Read]  # noqa: UP007 - a runtime alias; X | Y needs 3.10 types
_Steps = Generator[_Effect, Any, _T]

# The deadline of the effect a driver is carrying out, for the network streams below: each
# socket operation waits at most until then, whatever the per-operation timeouts allow. A
# context variable, so concurrent downloads on one event loop each see their own.
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "samepix_fetch_deadline", default=None
)


def _clamp(timeout: float | None, kind: type[Exception]) -> float | None:
    """``timeout`` cut to what is left before the current deadline; ``kind`` when none is."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise kind("the total time allowed for this download has passed")
    return left if timeout is None else min(timeout, left)


class _Transient(Exception):
    """A failure worth another try."""

    def __init__(self, reason: str, status: int | None = None, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.retry_after = retry_after


class _Refused(Exception):
    """A connection to an address the address policy forbids (raised at connect time)."""

    def __init__(self, host: str, address: str, why: str) -> None:
        said = f"{host} is" if host == address else f"{host} resolves to {address},"
        super().__init__(f"{said} a {why} address")
        self.host = host
        self.address = address
        self.why = why


@dataclass
class _Tally:
    """Bookkeeping for one fetch across its tries and redirects."""

    responses: list[httpx.Response] = field(default_factory=list)
    tries: int = 0

    @property
    def transferred(self) -> int:
        return sum(r.num_bytes_downloaded for r in self.responses)


# ---------------------------------------------------------------------------------------------
# Address policy


def _blocked_reason(address: str) -> str | None:
    """Why a connection to ``address`` is refused when private addresses are not allowed."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone ("%eth0")
    except ValueError:
        return "unparsable"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for flag, why in (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "loopback"),
        ("is_link_local", "link-local"),
        ("is_multicast", "multicast"),
        ("is_private", "private"),
        ("is_reserved", "reserved"),
    ):
        if getattr(ip, flag):
            return why
    if not ip.is_global:  # shared (100.64/10), documentation, benchmarking ranges...
        return "non-public"
    return None


@dataclass(frozen=True)
class _AddressGuard:
    """Checks every address a host resolves to, at connect time (see :class:`Fetcher`)."""

    allowed: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()

    def check(self, host: str, addresses: Iterable[str]) -> list[str]:
        unique = list(dict.fromkeys(addresses))
        for address in unique:
            why = _blocked_reason(address)
            if why is not None and not self._exempt(address):
                # One bad address refuses the host: a public name has no business resolving
                # to a private address, and trying the others would let DNS pick for us.
                raise _Refused(host, address, why)
        return unique

    def _exempt(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.split("%", 1)[0])
        except ValueError:
            return False
        return any(ip in net for net in self.allowed if ip.version == net.version)


def _deadline_backend(inner: Any) -> Any:
    """A network backend whose every connect, read and write ends by the current deadline.

    httpx's timeouts are per operation: a server sending one byte a second never trips a read
    timeout, while reading headers or body. Here each socket operation waits at most until the
    download's deadline (:data:`_DEADLINE`), so the whole exchange fits in it.
    """
    import httpcore

    class DeadlineStream(httpcore.NetworkStream):
        def __init__(self, stream: httpcore.NetworkStream) -> None:
            self._stream = stream

        def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

        def write(self, buffer: bytes, timeout: float | None = None) -> None:
            self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

        def close(self) -> None:
            self._stream.close()

        def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.NetworkStream:
            wait = _clamp(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(self._stream.start_tls(ssl_context, server_hostname, wait))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class DeadlineBackend(httpcore.NetworkBackend):
        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            wait = _clamp(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(
                inner.connect_tcp(host, port, wait, local_address, socket_options)
            )

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.NetworkStream:
            raise httpcore.ConnectError("unix sockets are not allowed")

        def sleep(self, seconds: float) -> None:
            inner.sleep(seconds)

    return DeadlineBackend()


def _deadline_async_backend(inner: Any) -> Any:
    """The async twin of :func:`_deadline_backend`."""
    import httpcore

    class DeadlineStream(httpcore.AsyncNetworkStream):
        def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
            self._stream = stream

        async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
            return await self._stream.read(max_bytes, _clamp(timeout, httpcore.ReadTimeout))

        async def write(self, buffer: bytes, timeout: float | None = None) -> None:
            await self._stream.write(buffer, _clamp(timeout, httpcore.WriteTimeout))

        async def aclose(self) -> None:
            await self._stream.aclose()

        async def start_tls(
            self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
        ) -> httpcore.AsyncNetworkStream:
            wait = _clamp(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(await self._stream.start_tls(ssl_context, server_hostname, wait))

        def get_extra_info(self, info: str) -> Any:
            return self._stream.get_extra_info(info)

    class DeadlineBackend(httpcore.AsyncNetworkBackend):
        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            wait = _clamp(timeout, httpcore.ConnectTimeout)
            return DeadlineStream(
                await inner.connect_tcp(host, port, wait, local_address, socket_options)
            )

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.AsyncNetworkStream:
            raise httpcore.ConnectError("unix sockets are not allowed")

        async def sleep(self, seconds: float) -> None:
            await inner.sleep(seconds)

    return DeadlineBackend()


def _bound_by_deadline(client: httpx.Client | httpx.AsyncClient) -> None:
    """Wrap the network backend of every transport of ``client`` (the direct one, and those of
    proxies from the environment) so that each socket operation ends by the deadline."""
    wrap = _deadline_async_backend if hasattr(client, "aclose") else _deadline_backend
    for transport in (client._transport, *client._mounts.values()):
        pool = getattr(transport, "_pool", None)
        if pool is not None and hasattr(pool, "_network_backend"):
            pool._network_backend = wrap(pool._network_backend)


def _guarded_transport(guard: _AddressGuard, limits: httpx.Limits) -> httpx.HTTPTransport:
    """A transport connecting only to addresses ``guard`` accepts (no proxy: a proxy would
    resolve names itself, out of reach of the check)."""
    import httpx

    transport = httpx.HTTPTransport(limits=limits)
    pool = transport._pool
    pool._network_backend = _guarded_backend(guard, pool._network_backend)
    return transport


def _guarded_async_transport(
    guard: _AddressGuard, limits: httpx.Limits
) -> httpx.AsyncHTTPTransport:
    """The async twin of :func:`_guarded_transport`."""
    import httpx

    transport = httpx.AsyncHTTPTransport(limits=limits)
    pool = transport._pool
    pool._network_backend = _guarded_async_backend(guard, pool._network_backend)
    return transport


def _guarded_backend(guard: _AddressGuard, inner_backend: Any) -> Any:
    """A network backend whose connections go only to addresses ``guard`` accepts.

    The name is resolved and checked inside the connection itself and the socket connects to
    that very address, so DNS cannot answer differently between the check and the connect.
    """
    import httpcore

    class GuardedBackend(httpcore.NetworkBackend):
        def __init__(self, inner: httpcore.NetworkBackend) -> None:
            self._inner = inner

        def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.NetworkStream:
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except OSError as exc:
                raise httpcore.ConnectError(f"cannot resolve {host} ({exc})") from exc
            last: Exception | None = None
            for address in guard.check(host, [str(info[4][0]) for info in infos]):
                try:
                    return self._inner.connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc  # try the next checked address, as create_connection would
            assert last is not None
            raise last

        def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.NetworkStream:
            raise httpcore.ConnectError("unix sockets are not allowed")

        def sleep(self, seconds: float) -> None:
            self._inner.sleep(seconds)

    return GuardedBackend(inner_backend)


def _guarded_async_backend(guard: _AddressGuard, inner_backend: Any) -> Any:
    """The async twin of :func:`_guarded_backend`."""
    import httpcore

    class GuardedAsyncBackend(httpcore.AsyncNetworkBackend):
        def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
            self._inner = inner

        async def connect_tcp(
            self,
            host: str,
            port: int,
            timeout: float | None = None,
            local_address: str | None = None,
            socket_options: Iterable[Any] | None = None,
        ) -> httpcore.AsyncNetworkStream:
            loop = asyncio.get_running_loop()
            try:
                infos = await asyncio.wait_for(
                    loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout
                )
            except (OSError, asyncio.TimeoutError) as exc:
                raise httpcore.ConnectError(f"cannot resolve {host} ({exc})") from exc
            last: Exception | None = None
            for address in guard.check(host, [str(info[4][0]) for info in infos]):
                try:
                    return await self._inner.connect_tcp(
                        address, port, timeout, local_address, socket_options
                    )
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            assert last is not None
            raise last

        async def connect_unix_socket(
            self, path: str, timeout: float | None = None, socket_options: Any = None
        ) -> httpcore.AsyncNetworkStream:
            raise httpcore.ConnectError("unix sockets are not allowed")

        async def sleep(self, seconds: float) -> None:
            await self._inner.sleep(seconds)

    return GuardedAsyncBackend(inner_backend)


# ---------------------------------------------------------------------------------------------
# The fetcher


class Fetcher:
    """One HTTP configuration for sync and async downloads, probes and revalidation.

    Parameters
    ----------
    limits
        Timeouts, body size, redirects and pixels (:class:`~samepix.limits.Limits`).
    retry
        The retry policy (:class:`Retry`).
    allow_private
        False refuses connections to loopback, private, link-local, multicast, reserved and
        other non-public addresses, and ``file://`` URLs (for services that fetch URLs their
        users give). Names are resolved and checked when each connection is made — for every
        redirect — and the socket connects to the checked address, so DNS rebinding cannot
        slip in between. Proxies from the environment are not used in this mode (a proxy
        resolves names itself, out of reach of the check).
    allowed_networks
        With ``allow_private=False``: networks still allowed (your own image server), as CIDR
        strings such as ``"10.1.0.0/16"``.
    state
        A :class:`~samepix.state.FetchState` (or a path to one) to remember validators and
        results in; None (the default) writes nothing.
    user_agent
        The ``User-Agent`` header.
    concurrency
        Most requests in flight at once in :meth:`aget_many` / :meth:`astream`.
    probe_bytes
        Bytes asked for first by :meth:`probe` (then ×4 each time, up to ``max_header_bytes``).
    max_header_bytes
        Most bytes read looking for an image header (probe, and the early pixel-limit check).

    Proxies come from the environment (``HTTP_PROXY``, ``HTTPS_PROXY``, ``NO_PROXY``...) as
    httpx reads them. Use as a context manager, or call :meth:`close`, to release connections.
    """

    def __init__(
        self,
        *,
        limits: Limits = DEFAULT_LIMITS,
        retry: Retry = DEFAULT_RETRY,
        allow_private: bool = True,
        allowed_networks: Iterable[str] = (),
        state: FetchState | str | os.PathLike[str] | None = None,
        user_agent: str = USER_AGENT,
        concurrency: int = 16,
        probe_bytes: int = 32 * 1024,
        max_header_bytes: int = 1024 * 1024,
    ) -> None:
        if concurrency < 1:
            raise UsageError(f"concurrency must be >= 1, got {concurrency}")
        if not 0 < probe_bytes <= max_header_bytes:
            raise UsageError("probe_bytes must be positive and at most max_header_bytes")
        self.limits = limits
        self.retry = retry
        self.allow_private = allow_private
        try:
            networks = tuple(ipaddress.ip_network(n, strict=False) for n in allowed_networks)
        except ValueError as exc:
            raise UsageError(f"allowed_networks: {exc}") from exc
        self._guard = None if allow_private else _AddressGuard(networks)
        self._owns_state = state is not None and not isinstance(state, FetchState)
        self.state: FetchState | None = (
            state if isinstance(state, FetchState) or state is None else FetchState(state)
        )
        self.user_agent = user_agent
        self.concurrency = concurrency
        self.probe_bytes = probe_bytes
        self.max_header_bytes = max_header_bytes
        self._rng = random.Random()
        # Bytes that decompression added to the bodies being downloaded now (all of them):
        # bounded by limits.max_bytes, so a list of compression bombs costs one limit of
        # memory, not one per download in flight.
        self._inflated = 0
        self._inflated_lock = threading.Lock()
        self._client: httpx.Client | None = None
        self._aclient: httpx.AsyncClient | None = None

    def __repr__(self) -> str:
        return (
            f"<Fetcher allow_private={self.allow_private} state={self.state!r} "
            f"tries={self.retry.tries}>"
        )

    # -- clients: one configuration, two flavours ----------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        import httpx

        limits = self.limits
        return {
            "timeout": httpx.Timeout(
                connect=limits.connect_timeout,
                read=limits.read_timeout,
                write=limits.read_timeout,
                pool=limits.connect_timeout,
            ),
            "headers": {"User-Agent": self.user_agent},
            "follow_redirects": False,  # followed in _open, so every hop is checked
            "trust_env": True,
        }

    def _pool_limits(self) -> httpx.Limits:
        import httpx

        return httpx.Limits(
            max_connections=max(self.concurrency, 10),
            max_keepalive_connections=max(self.concurrency, 10),
        )

    def _sync_client(self) -> httpx.Client:
        if self._client is None:
            import httpx

            options = self._client_options()
            if self._guard is not None:
                options["transport"] = _guarded_transport(self._guard, self._pool_limits())
            self._client = httpx.Client(limits=self._pool_limits(), **options)
            _bound_by_deadline(self._client)
        return self._client

    def _new_async_client(self) -> httpx.AsyncClient:
        import httpx

        options = self._client_options()
        if self._guard is not None:
            options["transport"] = _guarded_async_transport(self._guard, self._pool_limits())
        client = httpx.AsyncClient(limits=self._pool_limits(), **options)
        _bound_by_deadline(client)
        return client

    def close(self) -> None:
        """Close the sync client's connections (and the state file if opened from a path)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._owns_state and self.state is not None:
            self.state.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    async def __aenter__(self) -> Fetcher:
        if self._aclient is None:
            self._aclient = self._new_async_client()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._aclient is not None:
            await self._aclient.aclose()
            self._aclient = None
        self.close()

    @contextlib.asynccontextmanager
    async def _async_client(self) -> AsyncIterator[httpx.AsyncClient]:
        if self._aclient is not None:  # inside ``async with fetcher``
            yield self._aclient
            return
        async with self._new_async_client() as client:
            yield client

    # -- public API -----------------------------------------------------------------------------

    def request_headers(self) -> dict[str, str]:
        """The headers every request of this fetcher carries (httpx's defaults and ours), for
        :mod:`samepix.recheck`, which sends the same ones."""
        client: httpx.Client | httpx.AsyncClient = self._aclient or self._sync_client()
        return dict(client.headers)

    def known(self, url: str) -> UrlRecord | None:
        """What the state file knows about ``url`` (None without a state file)."""
        return None if self.state is None else self.state.get(url)

    def remember(self, download: Download) -> None:
        """Keep what ``download`` told in the state file, as :meth:`get` does for its own (for
        downloads made elsewhere: a sync shard on another process or machine)."""
        self._remember(download)

    def get(self, url: str, *, conditional: bool = False) -> Download:
        """Download ``url`` within the limits, retrying what may pass.

        With ``conditional=True`` and validators remembered in the state file, the request
        carries ``If-None-Match`` / ``If-Modified-Since``; a ``304`` answer downloads nothing
        and gives a :class:`Download` with ``not_modified=True`` and the remembered
        ``sha256``. With a state file, every full download is remembered.

        Raises
        ------
        FetchError
            Connection failure, timeout, an HTTP error status, too many redirects or a
            redirect loop, a refused address, a body that is not an image.
        LimitExceeded
            A body over ``limits.max_bytes``, an image over ``limits.max_pixels`` (from its
            header, before the rest is downloaded), a download over ``limits.total_timeout``.
        """
        previous = self.known(url)
        download = self._run(self._get_steps(url, previous, conditional=conditional))
        self._remember(download)
        return download

    async def aget(self, url: str, *, conditional: bool = False) -> Download:
        """:meth:`get`, asynchronously."""
        async with self._async_client() as client:
            return await self._aget(client, url, conditional)

    async def _aget(self, client: httpx.AsyncClient, url: str, conditional: bool) -> Download:
        previous = self.known(url)
        download = await self._arun(client, self._get_steps(url, previous, conditional=conditional))
        self._remember(download)
        return download

    async def astream(
        self,
        urls: Iterable[str],
        *,
        conditional: bool = True,
        concurrency: int | None = None,
    ) -> AsyncIterator[tuple[str, Download | SamepixError]]:
        """Fetch many URLs concurrently, yielding ``(url, download or error)`` as each ends.

        At most ``concurrency`` requests are in flight and at most that many URLs are taken
        from ``urls`` ahead of time, so a list of millions streams through in constant memory.
        Errors samepix explains (:class:`~samepix.errors.SamepixError`) are yielded, not raised.
        """
        limit = concurrency or self.concurrency
        async with self._async_client() as client:

            async def one(url: str) -> tuple[str, Download | SamepixError]:
                try:
                    return url, await self._aget(client, url, conditional)
                except SamepixError as exc:
                    return url, exc

            pending: set[asyncio.Task[tuple[str, Download | SamepixError]]] = set()
            source = iter(urls)
            exhausted = False
            try:
                while True:
                    while not exhausted and len(pending) < limit:
                        url = next(source, None)
                        if url is None:
                            exhausted = True
                        else:
                            pending.add(asyncio.ensure_future(one(url)))
                    if not pending:
                        return
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    for task in done:
                        yield task.result()
            finally:
                for task in pending:
                    task.cancel()

    async def aget_many(
        self,
        urls: Iterable[str],
        *,
        conditional: bool = True,
        concurrency: int | None = None,
    ) -> list[Download | SamepixError]:
        """Fetch many URLs concurrently; results in the order of ``urls`` (see :meth:`astream`)."""
        order = list(urls)
        found: dict[str, Download | SamepixError] = {}
        async for url, result in self.astream(
            dict.fromkeys(order), conditional=conditional, concurrency=concurrency
        ):
            found[url] = result
        return [found[url] for url in order]

    def get_many(
        self,
        urls: Iterable[str],
        *,
        conditional: bool = True,
        concurrency: int | None = None,
    ) -> list[Download | SamepixError]:
        """:meth:`aget_many` from synchronous code (runs its own event loop)."""
        return asyncio.run(self.aget_many(urls, conditional=conditional, concurrency=concurrency))

    def probe(self, url: str) -> Probe:
        """Format, size and pixel dimensions of a remote image from its first bytes.

        Asks for ``probe_bytes`` with a Range request, and for more (up to
        ``max_header_bytes``) while the header is incomplete — a JPEG's size may follow a big
        EXIF block. A server that ignores Range gets a streamed GET that stops as soon as the
        header is read.
        """
        return self._run(self._probe_steps(url))

    async def aprobe(self, url: str) -> Probe:
        """:meth:`probe`, asynchronously."""
        async with self._async_client() as client:
            return await self._arun(client, self._probe_steps(url))

    # -- state ------------------------------------------------------------------------------------

    def _remember(self, download: Download) -> None:
        if self.state is None:
            return
        now = time.time()
        if download.not_modified:
            self.state.confirm(
                download.url,
                etag=download.etag,
                last_modified=download.last_modified,
                checked_at=now,
            )
            return
        self.state.remember(
            UrlRecord(
                url=download.url,
                etag=download.etag,
                last_modified=download.last_modified,
                size=download.size,
                sha256=download.sha256,
                content_type=download.content_type,
                final_url=download.final_url,
                fetched_at=now,
                checked_at=now,
            )
        )

    # -- drivers --------------------------------------------------------------------------------

    def _run(self, steps: _Steps[_T]) -> _T:
        """Carry out ``steps`` with the sync client."""
        client = self._sync_client()
        response: httpx.Response | None = None
        chunks: Iterator[bytes] | None = None
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = steps.send(value) if error is None else steps.throw(error)
                except StopIteration as stop:
                    result: _T = stop.value
                    return result
                value, error = None, None
                token = _DEADLINE.set(None if isinstance(effect, _Sleep) else effect.deadline)
                try:
                    if isinstance(effect, _Send):
                        if response is not None:
                            response.close()
                            response = None
                        request = self._request(client, effect)
                        response = client.send(request, stream=True)
                        # Raw: Content-Encoding is decoded by _Inflater, in bounded pieces.
                        chunks = response.iter_raw()
                        value = response
                    elif isinstance(effect, _Sleep):
                        time.sleep(effect.seconds)
                    else:
                        assert chunks is not None
                        value = next(chunks, b"")
                except Exception as exc:  # handed to the request logic, which translates it
                    error = exc
                finally:
                    _DEADLINE.reset(token)
        finally:
            steps.close()
            if response is not None:
                response.close()

    async def _arun(self, client: httpx.AsyncClient, steps: _Steps[_T]) -> _T:
        """Carry out ``steps`` with an async client."""
        response: httpx.Response | None = None
        chunks: AsyncIterator[bytes] | None = None
        value: Any = None
        error: BaseException | None = None
        try:
            while True:
                try:
                    effect = steps.send(value) if error is None else steps.throw(error)
                except StopIteration as stop:
                    result: _T = stop.value
                    return result
                value, error = None, None
                token = _DEADLINE.set(None if isinstance(effect, _Sleep) else effect.deadline)
                try:
                    if isinstance(effect, _Send):
                        if response is not None:
                            await response.aclose()
                            response = None
                        request = self._request(client, effect)
                        response = await client.send(request, stream=True)
                        chunks = response.aiter_raw()
                        value = response
                    elif isinstance(effect, _Sleep):
                        await asyncio.sleep(effect.seconds)
                    else:
                        assert chunks is not None
                        value = await _anext_or_empty(chunks)
                except Exception as exc:
                    error = exc
                finally:
                    _DEADLINE.reset(token)
        finally:
            steps.close()
            if response is not None:
                await response.aclose()

    def _request(self, client: httpx.Client | httpx.AsyncClient, send: _Send) -> httpx.Request:
        """The GET of ``send``, its waits (the wait for a pooled connection too) cut to what is
        left before its deadline."""
        import httpx

        limits = self.limits
        left = max(send.deadline - time.monotonic(), 0.001)
        timeout = httpx.Timeout(
            connect=min(limits.connect_timeout, left),
            read=min(limits.read_timeout, left),
            write=min(limits.read_timeout, left),
            pool=min(limits.connect_timeout, left),
        )
        return client.build_request("GET", send.url, headers=send.headers, timeout=timeout)

    # -- request logic (driver-independent) ----------------------------------------------------

    def _retrying(self, url: str, attempt: Callable[[_Tally, float], _Steps[_T]]) -> _Steps[_T]:
        """Run ``attempt`` until it succeeds, fails for good, or the tries or time run out."""
        deadline = time.monotonic() + self.limits.total_timeout
        tally = _Tally()
        failures: list[_Transient] = []
        tries = self.retry.tries
        for number in range(1, tries + 1):
            tally.tries = number
            try:
                return (yield from attempt(tally, deadline))
            except _Transient as failure:
                failures.append(failure)
                if number == tries:
                    break
                wait = self.retry.delay(number, failure.retry_after, self._rng)
                if time.monotonic() + wait > deadline:
                    break  # no time left for another try within limits.total_timeout
                _log.info(
                    "%s: %s; retrying in %.2f s (try %d of %d)",
                    url,
                    failure.reason,
                    wait,
                    number + 1,
                    tries,
                )
                if wait > 0:
                    yield _Sleep(wait)
        last = failures[-1]
        count = len(failures)
        suffix = f" (tried {count} times)" if count > 1 else ""
        raise FetchError(
            f"{url}: {last.reason}{suffix}",
            url=url,
            status=last.status,
            attempts=tuple(f.reason for f in failures),
        )

    def _open(
        self, url: str, headers: dict[str, str], tally: _Tally, deadline: float
    ) -> _Steps[tuple[httpx.Response, str, tuple[str, ...]]]:
        """Send a GET and follow redirects (each hop checked); returns a 2xx or 304 response,
        the final URL and the redirect chain. HTTP errors raise."""
        import httpx

        problem = url_problem(url)
        if problem is not None:
            raise FetchError(f"{url}: not a URL samepix can fetch ({problem})", url=url)
        current = url
        chain: list[str] = []
        for _hop in range(self.limits.max_redirects + 1):
            try:
                response: httpx.Response = yield _Send(current, headers, deadline)
            except _Refused as exc:
                where = f"redirect to {current} refused" if chain else "refused"
                raise FetchError(
                    f"{url}: {where}: {exc} (private addresses are not allowed)", url=url
                ) from exc
            except (httpx.HTTPError, httpx.InvalidURL) as exc:
                if _bad_location(exc):
                    # httpx parses a redirect's Location as it receives the response: the URL
                    # asked for was valid (checked above), its redirect is not. Final, as the
                    # server will say the same next time.
                    raise FetchError(
                        f"{url}: redirected to a URL samepix cannot fetch ({_why(exc)})",
                        url=url,
                    ) from exc
                raise self._translate(url, exc, received=None, deadline=deadline) from exc
            tally.responses.append(response)
            status = response.status_code
            if status in _REDIRECTS and "location" in response.headers:
                location = response.headers["location"]
                try:
                    target = str(response.url.join(location))
                except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
                    raise FetchError(
                        f"{url}: redirected to {_shorten(location)}, which is not a valid URL "
                        f"({_why(exc)})",
                        url=url,
                        status=status,
                    ) from exc
                problem = url_problem(target)
                if problem is not None:
                    raise FetchError(
                        f"{url}: redirected to {_shorten(target)}, which samepix cannot fetch "
                        f"({problem})",
                        url=url,
                        status=status,
                    )
                if target == url or target in chain:
                    loop = " → ".join([url, *chain, target])
                    raise FetchError(f"{url}: redirect loop ({loop})", url=url, status=status)
                chain.append(target)
                current = target
                yield from self._drain(response, deadline)
                continue
            if status == 304 or 200 <= status < 300:
                return response, current, tuple(chain)
            yield from self._drain(response, deadline)
            self._status_failure(url, current, response)
        raise FetchError(
            f"{url}: more than {self.limits.max_redirects} redirects ({' → '.join([url, *chain])})",
            url=url,
        )

    def _drain(self, response: httpx.Response, deadline: float) -> _Steps[None]:
        """Read a small body nobody needs (a redirect's, a 304's, an error page), so the
        connection goes back to the pool for the next request instead of being closed."""
        import httpx

        left = _DRAIN_BYTES
        while left > 0:
            try:
                chunk: bytes = yield _Read(deadline)
            except httpx.HTTPError:
                return  # the connection is dropped; nothing else is lost
            if not chunk:
                return
            left -= len(chunk)

    def _status_failure(self, url: str, current: str, response: httpx.Response) -> NoReturn:
        status = response.status_code
        reason = f"HTTP {status} {response.reason_phrase or 'error'}".rstrip()
        if current != url:
            reason += f" from {current}"
        if status == 429 or status >= 500:
            retry_after = _retry_after(response.headers.get("retry-after"))
            if retry_after is not None:
                reason += f" (Retry-After {response.headers['retry-after']})"
            raise _Transient(reason, status, retry_after)
        raise FetchError(f"{url}: {reason}", url=url, status=status)

    def _translate(
        self,
        url: str,
        exc: Exception,
        *,
        received: int | None,
        deadline: float,
        announced: int | None = None,
    ) -> Exception:
        """An httpx failure as a retryable ``_Transient`` or a final ``FetchError``."""
        import httpx

        limits = self.limits
        after = "" if received is None else f" after {received:,} bytes"
        if isinstance(exc, httpx.TimeoutException) and time.monotonic() >= deadline - 0.05:
            return self._too_long(url, received)
        if isinstance(exc, httpx.ConnectTimeout):
            return _Transient(
                f"timed out connecting (connect timeout {limits.connect_timeout:g} s)"
            )
        if isinstance(exc, httpx.TimeoutException):
            return _Transient(
                f"timed out waiting for data{after} (read timeout {limits.read_timeout:g} s)"
            )
        if isinstance(exc, httpx.ConnectError):
            text = _why(exc)
            if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
                return FetchError(f"{url}: TLS failure ({text})", url=url)
            if any(marker in text for marker in _NO_SUCH_HOST):
                return FetchError(f"{url}: cannot connect: no such host ({text})", url=url)
            return _Transient(f"cannot connect ({text})")
        if isinstance(exc, httpx.RemoteProtocolError):
            if received is not None and announced is not None:
                return _Transient(
                    f"connection closed after {received:,} of {announced:,} bytes "
                    "(body shorter than its Content-Length)"
                )
            return _Transient(f"connection closed{after} ({_why(exc)})")
        if isinstance(exc, (httpx.ReadError, httpx.WriteError)):
            return _Transient(f"connection reset{after} ({_why(exc)})")
        if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
            return FetchError(f"{url}: not a URL samepix can fetch ({_why(exc)})", url=url)
        if isinstance(exc, httpx.DecodingError):
            return FetchError(f"{url}: cannot decode the response body ({_why(exc)})", url=url)
        return FetchError(f"{url}: {type(exc).__name__}: {exc}", url=url)

    def _too_long(self, url: str, received: int | None) -> LimitExceeded:
        got = "" if not received else f" ({received:,} bytes received)"
        return LimitExceeded(
            f"{url}: timed out: the download took longer than {self.limits.total_timeout:g} s"
            f"{got}, the total time allowed (--timeout)"
        )

    def _next_chunk(
        self, url: str, response: httpx.Response, received: int, deadline: float
    ) -> _Steps[bytes]:
        import httpx

        if time.monotonic() > deadline:
            raise self._too_long(url, received)
        try:
            chunk: bytes = yield _Read(deadline)
        except httpx.HTTPError as exc:
            raise self._translate(
                url, exc, received=received, deadline=deadline, announced=_content_length(response)
            ) from exc
        return chunk

    def _get_steps(
        self, url: str, previous: UrlRecord | None, *, conditional: bool
    ) -> _Steps[Download]:
        headers: dict[str, str] = {}
        if conditional and previous is not None and previous.has_validators:
            headers = previous.conditional_headers()

        def attempt(tally: _Tally, deadline: float) -> _Steps[Download]:
            response, final, chain = yield from self._open(url, headers, tally, deadline)
            etag = response.headers.get("etag")
            last_modified = response.headers.get("last-modified")
            if response.status_code == 304:
                if not headers or previous is None:
                    raise FetchError(f"{url}: HTTP 304 to a request that was not conditional")
                yield from self._drain(response, deadline)
                return Download.not_modified_since(
                    previous,
                    url,
                    final_url=final,
                    etag=etag,
                    last_modified=last_modified,
                    transferred=tally.transferred,
                    redirects=chain,
                    tries=tally.tries,
                )
            data = yield from self._read_body(url, response, deadline)
            return Download(
                url=url,
                final_url=final,
                status=response.status_code,
                data=data,
                content_type=response.headers.get("content-type"),
                etag=etag,
                last_modified=last_modified,
                transferred=tally.transferred,
                sha256=hashlib.sha256(data).hexdigest(),
                size=len(data),
                previous=previous,
                redirects=chain,
                tries=tally.tries,
                content_disposition=response.headers.get("content-disposition"),
            )

        return (yield from self._retrying(url, attempt))

    def _read_body(self, url: str, response: httpx.Response, deadline: float) -> _Steps[bytes]:
        """The whole body, checked as it streams: size, magic bytes, then the pixel limit.

        A compressed body (``Content-Encoding``) is decoded here in pieces of at most
        :data:`_PIECE` bytes, each checked before the next is made: a compression bomb is
        refused as soon as its decoded size passes ``max_bytes`` — or, when several arrive
        at once, as soon as what decompression added to all of them together does — with
        at most one piece decoded too many.
        """
        limit = self.limits.max_bytes
        announced = _content_length(response)
        if announced is not None and announced > limit:
            raise LimitExceeded(
                f"{url}: Content-Length {announced:,} bytes exceeds the limit of {limit:,} bytes"
            )
        inflater = _Inflater(url, response.headers.get("content-encoding"))
        body = bytearray()
        raw = 0  # bytes received, as sent (compressed)
        held = 0  # what this body holds beyond its raw bytes, counted in self._inflated
        sniffed = False
        header_known = False
        next_try = _FIRST_HEADER_TRY
        try:
            while True:
                chunk = yield from self._next_chunk(url, response, raw, deadline)
                raw += len(chunk)
                pieces = inflater.feed(chunk) if chunk else inflater.finish()
                for count, piece in enumerate(pieces, 1):
                    if count % 16 == 0:
                        # 4 MB decoded from one chunk: let the other downloads run meanwhile.
                        yield _Sleep(0.0)
                    body += piece
                    if len(body) > limit:
                        raise LimitExceeded(self._too_big(url, len(body), raw, inflater))
                    if inflater.active and len(body) - raw > held:
                        held = self._inflate(url, held, len(body) - raw, raw, inflater)
                    if not sniffed and len(body) >= SNIFF_BYTES:
                        self._sniff(url, body, response)
                        sniffed = True
                    # Each try parses a prefix only (512 B, 2 KB, ... up to max_header_bytes),
                    # never the growing body: at most 4/3 × max_header_bytes parsed in all.
                    while not header_known and len(body) >= next_try:
                        header_known = self._check_header(url, body[:next_try])
                        next_try *= 4
                        header_known = header_known or next_try > self.max_header_bytes
                if not chunk:
                    break
        except BaseException:
            # The error's traceback keeps this frame alive (a sync keeps every error until
            # its summary): it must not keep up to max_bytes of refused body with it.
            body.clear()
            raise
        finally:
            if held:
                with self._inflated_lock:
                    self._inflated -= held
        if not sniffed:
            self._sniff(url, body, response)
        if not header_known:
            self._check_header(url, body)
        return bytes(body)

    def _inflate(self, url: str, held: int, wanted: int, raw: int, inflater: _Inflater) -> int:
        """Count ``wanted - held`` more decompressed bytes against the shared budget."""
        budget = self.limits.max_bytes
        with self._inflated_lock:
            if self._inflated + wanted - held > budget:
                raise LimitExceeded(
                    f"{url}: {inflater.name}-compressed body of {raw:,} bytes expands to over "
                    f"{raw + wanted:,}, past the {budget:,} bytes that decompression may add "
                    "to the downloads in progress together (a compression bomb?); raise it "
                    "with --max-bytes"
                )
            self._inflated += wanted - held
        return wanted

    def _too_big(self, url: str, size: int, raw: int, inflater: _Inflater) -> str:
        limit = self.limits.max_bytes
        if inflater.active and size > 4 * raw:
            return (
                f"{url}: {inflater.name}-compressed body of {raw:,} bytes expands to over "
                f"{limit:,} bytes, the limit (a compression bomb?)"
            )
        return f"{url}: body exceeds the limit of {limit:,} bytes"

    def _sniff(self, url: str, head: bytes | bytearray, response: httpx.Response) -> None:
        """An error naming what the body is, when its first bytes are no image format."""
        head = bytes(head[:SNIFF_BYTES])
        if sniff_format(head) is not None:
            return
        content_type = response.headers.get("content-type")
        told = f"Content-Type {content_type}" if content_type else "no Content-Type"
        raise FetchError(
            f"{url}: HTTP {response.status_code} sent {describe_non_image(head)} ({told})",
            url=url,
            status=response.status_code,
        )

    def _check_header(self, url: str, head: bytes | bytearray) -> bool:
        """Apply the pixel limit from the header, if these bytes hold it; True when done."""
        info = read_header(bytes(head))
        if info is None:
            return False
        self.limits.check_pixels(url, info.width, info.height)
        return True

    def _probe_steps(self, url: str) -> _Steps[Probe]:
        def attempt(tally: _Tally, deadline: float) -> _Steps[Probe]:
            want = self.probe_bytes
            # identity: a Range applies to the encoded body, and we want the image's bytes.
            headers = {"Range": f"bytes=0-{want - 1}", "Accept-Encoding": "identity"}
            response, final, _chain = yield from self._open(url, headers, tally, deadline)
            first = response
            ranged = response.status_code == 206
            size = _range_total(response) if ranged else _content_length(response)
            # A server may compress though asked not to: decoded in bounded pieces.
            inflater = _Inflater(url, response.headers.get("content-encoding"))
            head = bytearray()
            while True:
                ended = False
                while len(head) < want:
                    chunk = yield from self._next_chunk(url, response, len(head), deadline)
                    if not chunk:
                        ended = True
                        break
                    for piece in inflater.feed(chunk):
                        head += piece
                        if len(head) >= self.max_header_bytes:
                            break
                    if len(head) >= SNIFF_BYTES:
                        self._sniff(url, head, response)
                    if not ranged:
                        break  # a whole-file stream: look at each chunk, stop as soon as we can
                info = read_header(bytes(head))
                if ranged:  # a 206 carries what was asked; less means the file ended
                    whole = (size is not None and len(head) >= size) or len(head) < want
                else:
                    whole = ended
                if info is not None or whole or len(head) >= self.max_header_bytes:
                    break
                if len(head) >= want:
                    want = min(want * 4, self.max_header_bytes)
                if not ranged:
                    continue  # a plain GET: read further down the same stream
                more = {"Range": f"bytes={len(head)}-{want - 1}", "Accept-Encoding": "identity"}
                etag = first.headers.get("etag")
                if etag and not etag.startswith("W/"):
                    more["If-Range"] = etag  # the rest of *this* version, or all of the new one
                response, final, _chain = yield from self._open(final, more, tally, deadline)
                inflater = _Inflater(url, response.headers.get("content-encoding"))
                if response.status_code != 206:  # the image changed, or Range was dropped
                    head.clear()
                    ranged = False
                    size = _content_length(response)
            if len(head) < SNIFF_BYTES:
                self._sniff(url, head, response)
            fmt = sniff_format(bytes(head[:SNIFF_BYTES])) or "unknown"
            width = height = None
            orientation = 1
            if info is not None:
                fmt = info.format
                width, height = info.oriented_size
                orientation = info.orientation
            return Probe(
                url=url,
                final_url=final,
                format=fmt,
                width=width,
                height=height,
                size=size,
                transferred=tally.transferred,
                ranged=ranged,
                orientation=orientation,
                content_type=first.headers.get("content-type"),
                etag=first.headers.get("etag"),
                last_modified=first.headers.get("last-modified"),
            )

        return (yield from self._retrying(url, attempt))


#: Most bytes one decompression step may produce: a compressed body is decoded a piece at a
#: time, each checked against the limits before the next is made (zlib's max_length).
_PIECE = 256 * 1024


class _Inflater:
    """Decodes a ``Content-Encoding`` (gzip, deflate; br when a Brotli module is installed)
    in pieces of at most :data:`_PIECE` bytes, so nothing decodes ahead of the checks.

    httpx's own decoders inflate each network chunk whole: 64 KB of a gzip bomb becomes 64 MB
    at once, before any limit can look at it.
    """

    def __init__(self, url: str, header: str | None) -> None:
        names = [n.strip().lower() for n in (header or "").split(",") if n.strip()]
        names = [n for n in names if n != "identity"]
        self.name = "+".join(names) or "identity"
        self.active = bool(names)
        # Applied in the reverse order of the header ("gzip, br": br was applied last).
        self._stages = [_stage(url, n) for n in reversed(names)]

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Decoded pieces of ``data`` (lazily: stop iterating and nothing more is decoded)."""
        if not self._stages:
            if data:
                yield data
            return
        yield from self._through(0, data, final=False)

    def finish(self) -> Iterator[bytes]:
        """What is left at the end of the body."""
        if self._stages:
            yield from self._through(0, b"", final=True)

    def _through(self, index: int, data: bytes, *, final: bool) -> Iterator[bytes]:
        stage = self._stages[index]
        for piece in stage(data, final):
            if index + 1 == len(self._stages):
                yield piece
            else:
                yield from self._through(index + 1, piece, final=False)
        if final and index + 1 < len(self._stages):
            yield from self._through(index + 1, b"", final=True)


def _stage(url: str, name: str) -> Callable[[bytes, bool], Iterator[bytes]]:
    """One decoding step: ``(data, final) -> pieces``."""
    if name in ("gzip", "x-gzip", "deflate"):
        return _ZlibStage(url, name)
    if name == "br":
        return _brotli_stage(url)
    raise FetchError(f"{url}: unsupported Content-Encoding {name!r} (not asked for)", url=url)


class _ZlibStage:
    """gzip (members one after another) or deflate: the zlib format, or raw deflate as some
    servers send it (tried when the first bytes are not zlib's)."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name
        self.wbits = zlib.MAX_WBITS if name == "deflate" else zlib.MAX_WBITS | 16
        self.decoder = zlib.decompressobj(self.wbits)
        self.started = False

    def __call__(self, data: bytes, final: bool) -> Iterator[bytes]:
        try:
            yield from self._run(data, final)
        except zlib.error as exc:
            raise FetchError(
                f"{self.url}: cannot decode the {self.name}-compressed body ({exc})", url=self.url
            ) from exc

    def _run(self, data: bytes, final: bool) -> Iterator[bytes]:
        while True:
            try:
                out = self.decoder.decompress(data, _PIECE)
            except zlib.error:
                if self.name != "deflate" or self.started:
                    raise
                self.decoder = zlib.decompressobj(-zlib.MAX_WBITS)
                self.started = True
                continue
            self.started = True
            if out:
                yield out
            data = self.decoder.unconsumed_tail
            if self.decoder.eof and self.decoder.unused_data and self.name != "deflate":
                data = self.decoder.unused_data  # another gzip member
                self.decoder = zlib.decompressobj(self.wbits)
                continue
            if not data and len(out) < _PIECE:
                break
        if final:
            rest = self.decoder.flush()
            if rest:
                yield rest


def _brotli_stage(url: str) -> Callable[[bytes, bool], Iterator[bytes]]:
    try:
        import brotli  # type: ignore[import-not-found]
    except ImportError:
        raise FetchError(
            f"{url}: Content-Encoding br was sent though not asked for, and no Brotli "
            "decoder is installed",
            url=url,
        ) from None
    decoder = brotli.Decompressor()

    def run(data: bytes, _final: bool) -> Iterator[bytes]:
        # Brotli's Python binding has no output limit in every version: feed it small slices
        # (at most ~1,100× expansion each), so each piece stays bounded.
        for start in range(0, len(data), 256):
            try:
                out = decoder.process(data[start : start + 256])
            except brotli.error as exc:
                raise FetchError(f"{url}: cannot decode the br body ({exc})", url=url) from exc
            if out:
                yield out

    return run


def url_problem(url: str) -> str | None:
    """Why ``url`` is not an http(s) URL samepix can request, or None when it is one.

    Parsed as the HTTP client parses it, so a URL that passes here cannot fail later as
    "invalid": hosts such as ``0177.0.0.1`` or ``127.000.000.001`` (ambiguous octal or padded
    IPv4), full-width letters, a URL longer than the client accepts. The scheme is
    case-insensitive (``HTTP://`` is accepted).
    """
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError, UnicodeError) as exc:
        return _why(exc)
    if parsed.scheme not in ("http", "https"):
        return f"not an http(s) URL ({parsed.scheme or 'no scheme'})"
    if not parsed.host:
        return "no host"
    return None


def _bad_location(exc: BaseException) -> bool:
    """True for httpx's complaint about a redirect's ``Location`` header."""
    import httpx

    if isinstance(exc, (httpx.InvalidURL, httpx.UnsupportedProtocol)):
        return True
    return isinstance(exc, httpx.RemoteProtocolError) and "location header" in str(exc)


def _why(exc: BaseException) -> str:
    """An exception's text, or its class name when the text is empty (never "()")."""
    return str(exc).strip() or type(exc).__name__


def _shorten(text: str, limit: int = 200) -> str:
    """A URL quoted in a message, cut to ``limit`` characters (a 100 KB URL stays one line)."""
    return text if len(text) <= limit else f"{text[: limit - 1]}… ({len(text):,} characters)"


async def _anext_or_empty(chunks: AsyncIterator[bytes]) -> bytes:
    """The next chunk, or b"" at the end (the async twin of ``next(it, b"")``)."""
    try:
        return await chunks.__anext__()
    except StopAsyncIteration:
        return b""


def _content_length(response: httpx.Response) -> int | None:
    text = response.headers.get("content-length")
    return int(text) if text is not None and text.strip().isdigit() else None


def _range_total(response: httpx.Response) -> int | None:
    # Content-Range: bytes 0-32767/1234567 (the total may be "*": unknown)
    text = response.headers.get("content-range", "")
    total = text.rpartition("/")[2].strip()
    return int(total) if total.isdigit() else None


def _retry_after(text: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), or None."""
    if text is None:
        return None
    text = text.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time())


def probe(
    url: str,
    *,
    limits: Limits = DEFAULT_LIMITS,
    retry: Retry = DEFAULT_RETRY,
    allow_private: bool = True,
) -> Probe:
    """Format, size and pixel dimensions of the image at ``url``, from its first bytes only.

    See :meth:`Fetcher.probe`.
    """
    with Fetcher(limits=limits, retry=retry, allow_private=allow_private) as fetcher:
        return fetcher.probe(url)
