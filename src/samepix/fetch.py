"""HTTP(S) downloads: the only module that knows the HTTP client (httpx).

Every download is bounded: connect/read timeouts, a total deadline, a maximum body size enforced
while streaming (a server that sends forever or lies in Content-Length is cut off) and a
maximum number of redirects. httpx failures become :class:`~samepix.errors.FetchError` here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from . import __version__
from .errors import FetchError, LimitExceeded
from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    import httpx

__all__ = ["USER_AGENT", "Download", "fetch_url"]

USER_AGENT = f"samepix/{__version__} (+https://pypi.org/project/samepix/)"


@dataclass(frozen=True)
class Download:
    """A complete response body and what the server said about it."""

    url: str  # the URL asked for
    final_url: str  # after redirects
    status: int
    data: bytes
    content_type: str | None
    etag: str | None
    last_modified: str | None
    transferred: int  # body bytes received on the wire (before content decoding)


def _timeout(limits: Limits) -> httpx.Timeout:
    import httpx

    return httpx.Timeout(
        connect=limits.connect_timeout,
        read=limits.read_timeout,
        write=limits.read_timeout,
        pool=limits.connect_timeout,
    )


def fetch_url(url: str, *, limits: Limits = DEFAULT_LIMITS) -> Download:
    """Download ``url`` completely, within ``limits``.

    Raises
    ------
    FetchError
        Connection failure, timeout, HTTP status >= 400, too many redirects, a body shorter
        than announced.
    LimitExceeded
        The body is larger than ``limits.max_bytes`` or the download outlasts
        ``limits.total_timeout``.
    """
    import httpx

    deadline = time.monotonic() + limits.total_timeout
    try:
        with (
            httpx.Client(
                follow_redirects=True,
                max_redirects=limits.max_redirects,
                timeout=_timeout(limits),
                headers={"User-Agent": USER_AGENT},
            ) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code >= 400:
                reason = response.reason_phrase or "error"
                raise FetchError(
                    f"{url}: HTTP {response.status_code} {reason}",
                    url=url,
                    status=response.status_code,
                )
            announced = response.headers.get("Content-Length")
            if announced is not None and announced.isdigit() and int(announced) > limits.max_bytes:
                raise LimitExceeded(
                    f"{url}: Content-Length {int(announced):,} bytes exceeds the limit of "
                    f"{limits.max_bytes:,} bytes"
                )
            chunks: list[bytes] = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > limits.max_bytes:
                    raise LimitExceeded(
                        f"{url}: body exceeds the limit of {limits.max_bytes:,} bytes"
                    )
                if time.monotonic() > deadline:
                    raise LimitExceeded(
                        f"{url}: download took longer than {limits.total_timeout:g} s"
                    )
                chunks.append(chunk)
            return Download(
                url=url,
                final_url=str(response.url),
                status=response.status_code,
                data=b"".join(chunks),
                content_type=response.headers.get("Content-Type"),
                etag=response.headers.get("ETag"),
                last_modified=response.headers.get("Last-Modified"),
                transferred=response.num_bytes_downloaded,
            )
    except httpx.TooManyRedirects as exc:
        raise FetchError(f"{url}: more than {limits.max_redirects} redirects", url=url) from exc
    except httpx.TimeoutException as exc:
        raise FetchError(
            f"{url}: timed out ({type(exc).__name__}; connect {limits.connect_timeout:g} s, "
            f"read {limits.read_timeout:g} s)",
            url=url,
        ) from exc
    except httpx.RemoteProtocolError as exc:
        raise FetchError(f"{url}: connection broken mid-response ({exc})", url=url) from exc
    except httpx.HTTPError as exc:
        raise FetchError(f"{url}: {type(exc).__name__}: {exc}", url=url) from exc
