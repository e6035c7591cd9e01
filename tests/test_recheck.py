"""``samepix.recheck``: conditional re-checks on kept-alive stdlib connections. A clean 304 is
answered here exactly as the fetcher answers it; anything else is left to the fetcher. Real
local HTTP servers (the test helpers' and raw-socket hostile ones), real SQLite state files."""

from __future__ import annotations

import dataclasses
import http.server
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from samepix import Library
from samepix.fetch import Download, Fetcher
from samepix.limits import DEFAULT_LIMITS, Limits
from samepix.recheck import Rechecker, _where
from samepix.state import FetchState

from .faults import drip_server
from .helpers import Resource, Response, Route, Sequence, encode, http_server, redirect

ETAG = '"v1"'


def jpeg(seed: int) -> bytes:
    from samepix.demo import make_picture

    return encode(make_picture(seed, (64, 48)), "JPEG", quality=90)


@pytest.fixture
def state(tmp_path: Path) -> Iterator[FetchState]:
    with FetchState(tmp_path / "state.sqlite3") as st:
        yield st


class Ports:
    """Wraps routes to note each request's client port: distinct ports = connections."""

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self._lock = threading.Lock()

    def __call__(self, route: Response | Route) -> Route:
        def counted(handler: http.server.BaseHTTPRequestHandler) -> Response | None:
            with self._lock:
                self.seen.add(handler.client_address[1])
            return route(handler) if callable(route) else route

        return counted

    def count(self) -> int:
        with self._lock:
            return len(self.seen)


def rechecked(fetcher: Fetcher, urls: list[str]) -> list[Download | None]:
    """Each URL asked of a one-thread Rechecker made for ``fetcher``, closed after."""
    rechecker = Rechecker.for_fetcher(fetcher, threads=1)
    assert rechecker is not None
    try:
        return [rechecker.check(u) for u in urls]
    finally:
        rechecker.close()


def downloaded(fetcher: Fetcher, url: str) -> None:
    """A first, full download: the state file now holds the URL's validators."""
    assert not fetcher.get(url).not_modified


def test_a_304_is_the_download_and_record_the_fetcher_makes(state: FetchState) -> None:
    routes = {"/a.jpg": Resource(jpeg(1), "image/jpeg", etag=ETAG, last_modified=None)}
    with http_server(routes) as server, Fetcher(state=state) as fetcher:
        url = server.url("/a.jpg")
        downloaded(fetcher, url)
        by_fetcher = fetcher.get(url, conditional=True)
        after_fetcher = state.get(url)
        [fast] = rechecked(fetcher, [url])
        after_fast = state.get(url)
        headers = server.headers_of("/a.jpg")
    assert fast is not None and fast.not_modified
    # The same Download in every field but what the state file knew before the request (its
    # "checked at" moved on with the fetcher's own 304).
    assert dataclasses.replace(fast, previous=None) == dataclasses.replace(
        by_fetcher, previous=None
    )
    assert after_fetcher is not None and after_fast is not None
    assert after_fast.checked_at >= after_fetcher.checked_at
    assert dataclasses.replace(after_fast, checked_at=0) == dataclasses.replace(
        after_fetcher, checked_at=0
    )
    # The same request as the fetcher's (httpx's headers, the validator); Host aside.
    sent_by_fetcher, sent_here = headers[1], headers[2]
    assert sent_here["if-none-match"] == ETAG
    assert {k: v for k, v in sent_here.items() if k != "host"} == {
        k: v for k, v in sent_by_fetcher.items() if k != "host"
    }


def test_a_new_validator_sent_with_the_304_is_remembered(state: FetchState) -> None:
    first = Resource(jpeg(2), "image/jpeg", etag=ETAG)
    routes = {"/b.jpg": Sequence(first, Response(304, b"", {"ETag": '"v2"'}))}
    with http_server(routes) as server, Fetcher(state=state) as fetcher:
        url = server.url("/b.jpg")
        downloaded(fetcher, url)
        [fast] = rechecked(fetcher, [url])
    assert fast is not None and fast.etag == '"v2"'
    record = state.get(url)
    assert record is not None and record.etag == '"v2"'


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(Resource(jpeg(4), "image/jpeg", etag='"new"'), id="changed-200"),
        pytest.param(redirect("/elsewhere.jpg", 301), id="redirect"),
        pytest.param(Response(404, b"gone", {}), id="not-found"),
        pytest.param(Response(503, b"busy", {"Retry-After": "1"}), id="unavailable"),
    ],
)
def test_anything_but_a_304_is_left_to_the_fetcher(state: FetchState, answer: Response) -> None:
    routes = {"/c.jpg": Sequence(Resource(jpeg(3), "image/jpeg", etag=ETAG), answer)}
    with http_server(routes) as server, Fetcher(state=state) as fetcher:
        url = server.url("/c.jpg")
        downloaded(fetcher, url)
        before = state.get(url)
        assert rechecked(fetcher, [url]) == [None]
        assert state.get(url) == before  # nothing recorded: the fetcher will do that


def test_a_list_that_mostly_changed_goes_straight_to_the_fetcher(state: FetchState) -> None:
    # Each changed URL asked here costs a request more than the fetcher's alone: once changes
    # outnumber 304s (and at least 16 were seen), the rest is not asked here at all.
    changed = {
        f"/{i}.jpg": Sequence(
            Resource(jpeg(i), "image/jpeg", etag=ETAG),
            Resource(jpeg(100 + i), "image/jpeg", etag='"new"'),
        )
        for i in range(20)
    }
    with http_server(changed) as server, Fetcher(state=state) as fetcher:
        urls = [server.url(f"/{i}.jpg") for i in range(20)]
        for url in urls:
            downloaded(fetcher, url)
        assert rechecked(fetcher, urls) == [None] * 20
        asked = [len(server.headers_of(f"/{i}.jpg")) - 1 for i in range(20)]
    assert asked == [1] * 16 + [0] * 4


def test_kept_alive_connection_is_reused_and_a_closed_one_replaced(state: FetchState) -> None:
    ports = Ports()
    routes = {f"/{i}.jpg": ports(Resource(jpeg(i), "image/jpeg", etag=ETAG)) for i in range(6)}
    # One URL's 304 says Connection: close; the next check must open a new connection.
    closing = Resource(jpeg(9), "image/jpeg", etag=ETAG)
    routes["/closing.jpg"] = ports(Sequence(closing, Response(304, b"", {"Connection": "close"})))
    with http_server(routes) as server, Fetcher(state=state) as fetcher:
        urls = [server.url(f"/{i}.jpg") for i in range(6)]
        for url in [*urls, server.url("/closing.jpg")]:
            downloaded(fetcher, url)
        connections = ports.count()
        rechecker = Rechecker.for_fetcher(fetcher, threads=1)
        assert rechecker is not None
        try:
            answers = [rechecker.check(u) for u in urls[:3]]
            answers.append(rechecker.check(server.url("/closing.jpg")))
            answers += [rechecker.check(u) for u in urls[3:]]
        finally:
            rechecker.close()
        opened = ports.count() - connections
    assert all(a is not None and a.not_modified for a in answers)
    assert opened == 2  # one for the first four checks, one after the server closed it


def test_a_server_dripping_its_headers_is_cut_off_at_the_deadline(state: FetchState) -> None:
    head = b"HTTP/1.1 304 Not Modified\r\nETag: " + ETAG.encode() + b"\r\nX-Pad: " + b"x" * 50
    limits = Limits(**{**DEFAULT_LIMITS.__dict__, "total_timeout": 1.0, "read_timeout": 0.5})
    with (
        drip_server(head + b"\r\n\r\n", interval=0.1) as base,
        Fetcher(state=state, limits=limits) as fetcher,
    ):
        url = f"{base}/slow.jpg"
        _remember(state, url)
        rechecker = Rechecker.for_fetcher(fetcher, threads=1)
        assert rechecker is not None
        start = time.monotonic()
        try:
            assert rechecker.check(url) is None  # cut off; the fetcher takes the URL over
            took = time.monotonic() - start
            # The host failed once: the rest of the run leaves it to the fetcher, at once.
            assert rechecker.check(url) is None
            assert time.monotonic() - start - took < 0.5
        finally:
            rechecker.close()
    assert 0.9 < took < 2.5, took  # every byte came within read_timeout: only the deadline


def test_no_rechecker_where_only_the_fetcher_may_connect(
    state: FetchState, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Rechecker.for_fetcher(Fetcher(), threads=1) is None  # no state: no validators
    assert Rechecker.for_fetcher(Fetcher(state=state, allow_private=False), threads=1) is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.invalid:3128")
    assert Rechecker.for_fetcher(Fetcher(state=state), threads=1) is None


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("http://example.com/a.jpg", ("http", "example.com", 80, "/a.jpg")),
        ("https://Example.COM:8443/a/b.jpg?x=1&y=%20",
         ("https", "example.com", 8443, "/a/b.jpg?x=1&y=%20")),
        ("http://example.com", ("http", "example.com", 80, "/")),
        ("http://[::1]:8080/a.jpg", ("http", "::1", 8080, "/a.jpg")),
        ("http://example.com/a b.jpg", None),  # httpx would percent-encode the space
        ("http://example.com/é.jpg", None),
        ("http://example.com/a/../b.jpg", None),  # httpx removes dot segments
        ("http://example.com/a.jpg#top", None),
        ("http://example.com/a.jpg?", None),
        ("http://user:secret@example.com/a.jpg", None),
        ("ftp://example.com/a.jpg", None),
        ("http://example.com:99999/a.jpg", None),
    ],
    ids=[
        "plain", "port-query-escapes", "no-path", "ipv6", "space", "non-ascii", "dot-segments",
        "fragment", "empty-query", "userinfo", "ftp", "bad-port",
    ],
)  # fmt: skip
def test_only_urls_sent_as_written_are_rechecked_here(
    url: str, expected: tuple[str, str, int, str] | None
) -> None:
    assert _where(url) == expected


def test_sync_rechecks_an_unchanged_list_on_kept_alive_connections(tmp_path: Path) -> None:
    """End to end: the second sync is all 304s over a few kept-alive connections, and a URL
    changed meanwhile is still downloaded and saved, by the fetcher."""
    folder = tmp_path / "lib"
    folder.mkdir()
    ports = Ports()
    routes: dict[str, Response | Route] = {
        f"/{i}.jpg": ports(Resource(jpeg(10 + i), "image/jpeg", etag=ETAG)) for i in range(24)
    }
    with http_server(routes) as server:
        urls = [server.url(f"/{i}.jpg") for i in range(24)]
        with Library(folder, workers=1) as lib:
            first = lib.sync(urls, concurrency=4, per_host=4)
        assert first.downloaded == 24
        server.routes["/5.jpg"] = ports(Resource(jpeg(99), "image/jpeg", etag='"v2"'))
        connections = ports.count()
        with Library(folder, workers=1) as lib:
            second = lib.sync(urls, concurrency=4, per_host=4)
        opened = ports.count() - connections
        changed = server.headers_of("/5.jpg")
    assert second.skipped_unchanged == 23
    item = next(i for i in second.items if i.url.endswith("/5.jpg"))
    assert item.decision in ("downloaded", "replaced"), item
    assert item.path is not None and item.path.read_bytes() == jpeg(99)
    # Asked twice the second time: the re-check (200, left to the fetcher), then the fetcher.
    assert [h.get("if-none-match") for h in changed] == [None, ETAG, ETAG]
    assert opened <= 4 + 2, opened  # one per re-check thread, and the fetcher's


def _remember(state: FetchState, url: str) -> None:
    from samepix.state import UrlRecord

    now = time.time()
    state.remember(
        UrlRecord(
            url=url,
            etag=ETAG,
            last_modified=None,
            size=3,
            sha256="0" * 64,
            content_type="image/jpeg",
            final_url=url,
            fetched_at=now,
            checked_at=now,
        )
    )


@settings(max_examples=400, deadline=None)
@given(
    scheme=st.sampled_from(["http", "https", "HTTP"]),
    host=st.sampled_from(["example.com", "Example.COM", "127.0.0.1", "[::1]", "xn--bcher-kva.ch"]),
    port=st.sampled_from(["", ":80", ":443", ":8080", ":"]),
    rest=st.text(alphabet="abc/.?=&%;:@!$'()*+,[]~-_0123456789AF é#", max_size=24),
)
def test_what_is_rechecked_here_is_sent_as_httpx_sends_it(
    scheme: str, host: str, port: str, rest: str
) -> None:
    import httpx

    url = f"{scheme}://{host}{port}/{rest}"
    where = _where(url)
    if where is None:
        return  # left to the fetcher
    request = httpx.Request("GET", url)
    default = 443 if request.url.scheme == "https" else 80
    assert where == (
        request.url.scheme,
        request.url.raw_host.decode("ascii"),
        request.url.port or default,
        request.url.raw_path.decode("ascii"),
    )
