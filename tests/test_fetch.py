"""fetch: every download path against a real HTTP server on 127.0.0.1 (no mocks).

Validators and 304s, redirects, stalls, resets, short bodies, retries, sniffing, limits, gzip,
the early pixel check, probe, the private-address switch, async fetching, and the CLI flags.
"""

from __future__ import annotations

import asyncio
import http.server
import json
import random
import socket
import struct
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from samepix import __version__
from samepix.errors import FetchError, LimitExceeded, SourceError
from samepix.fetch import USER_AGENT, Download, Fetcher, Retry, _retry_after, probe
from samepix.limits import Limits
from samepix.sources import read_source

from .helpers import (
    Resource,
    Response,
    Sequence,
    encode,
    http_server,
    one_line_error,
    redirect,
    run_cli,
)
from .test_decode import _png_header_only

ROOT = Path(__file__).resolve().parents[1]
FAST = Retry(tries=3, backoff=0.0)  # retries without waiting: tests stay quick
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


def picture(width: int = 64, height: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


PNG = encode(picture(), "PNG")


def jpeg_with_exif(
    width: int, height: int, *, exif_bytes: int = 60_000, orientation: int = 1
) -> bytes:
    """A JPEG whose size (SOF) comes after an EXIF block of about ``exif_bytes``."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010E] = "x" * exif_bytes  # ImageDescription: padding before the SOF
    return encode(picture(width, height), "JPEG", quality=90, exif=exif.tobytes())


def with_jpeg_size(data: bytes, width: int, height: int) -> bytes:
    """``data`` with the SOF0 segment announcing ``width`` × ``height``."""
    sof = data.index(b"\xff\xc0")
    return data[: sof + 5] + struct.pack(">HH", height, width) + data[sof + 9 :]


def endless(prefix: bytes, content_type: str = "image/png") -> object:
    """A route sending ``prefix`` then zeros until the client goes away (no Content-Length)."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.close_connection = True
        try:
            handler.wfile.write(prefix)
            while True:
                handler.wfile.write(b"\0" * 65536)
        except OSError:
            return

    return route


def cut_short(body: bytes, announced: int, *, reset: bool) -> object:
    """A route announcing ``announced`` bytes, sending ``body`` then closing (or resetting)."""

    def route(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "image/png")
        handler.send_header("Content-Length", str(announced))
        handler.end_headers()
        handler.wfile.write(body)
        handler.wfile.flush()
        handler.close_connection = True
        if reset:  # SO_LINGER 0: close() sends RST instead of FIN
            handler.connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
        handler.connection.close()

    return route


def stall(seconds: float) -> object:
    def route(handler: object) -> None:
        time.sleep(seconds)

    return route


# --- plain downloads --------------------------------------------------------------------------


def test_download_reports_everything_and_names_samepix() -> None:
    with http_server({"/a.png": Resource(PNG, "image/png", etag='"v1"')}) as server:
        with Fetcher() as fetcher:
            got = fetcher.get(server.url("/a.png"))
        sent = server.headers_of("/a.png")[0]
    assert got.data == PNG and got.size == len(PNG) and got.status == 200
    assert got.etag == '"v1"' and got.content_type == "image/png"
    assert got.transferred == len(PNG) == server.body_bytes_sent
    assert got.tries == 1 and not got.not_modified and got.redirects == ()
    assert sent["user-agent"] == USER_AGENT and f"samepix/{__version__}" in USER_AGENT


def test_gzip_encoded_response_is_decoded_and_counted_on_the_wire() -> None:
    bmp = encode(np.zeros((200, 300, 3), np.uint8), "BMP")  # compresses to almost nothing
    with http_server({"/a.bmp": Resource(bmp, "image/bmp", gzip=True)}) as server:
        with Fetcher() as fetcher:
            got = fetcher.get(server.url("/a.bmp"))
        sent = server.body_bytes_sent
    assert got.data == bmp
    assert got.transferred == sent < len(bmp) // 10


# --- validators: ETag and Last-Modified round trips ------------------------------------------


@pytest.mark.parametrize(
    ("etag", "last_modified", "header"),
    [('"v1"', None, "if-none-match"), (None, LAST_MODIFIED, "if-modified-since")],
    ids=["etag", "last-modified"],
)
def test_validator_round_trip_downloads_nothing_the_second_time(
    tmp_path: Path, etag: str | None, last_modified: str | None, header: str
) -> None:
    resource = Resource(PNG, "image/png", etag=etag, last_modified=last_modified)
    with http_server({"/a.png": resource}) as server:
        url = server.url("/a.png")
        with Fetcher(state=tmp_path / "state.sqlite3") as fetcher:
            first = fetcher.get(url)
            after_first = server.body_bytes_sent
            second = fetcher.get(url, conditional=True)
        requests = server.headers_of("/a.png")
    assert first.status == 200 and after_first == len(PNG)
    assert server.body_bytes_sent == after_first  # the server's own count: 0 body bytes
    assert second.not_modified and second.status == 304 and second.data == b""
    assert second.transferred == 0 and second.unchanged
    assert second.sha256 == first.sha256 and second.size == len(PNG)
    assert second.content_type == "image/png"
    assert header not in requests[0] and header in requests[1]


def test_changed_resource_is_downloaded_and_remembered(tmp_path: Path) -> None:
    resource = Resource(PNG, "image/png", etag='"v1"')
    other = encode(picture(seed=1), "PNG")
    with http_server({"/a.png": resource}) as server, Fetcher(state=tmp_path / "s") as fetcher:
        url = server.url("/a.png")
        first = fetcher.get(url)
        resource.body, resource.etag = other, '"v2"'
        second = fetcher.get(url, conditional=True)
        third = fetcher.get(url, conditional=True)
        known = fetcher.known(url)
    assert second.status == 200 and second.data == other and not second.unchanged
    assert second.previous is not None and second.previous.sha256 == first.sha256
    assert third.not_modified and third.sha256 == second.sha256
    assert known is not None and known.etag == '"v2"' and known.sha256 == second.sha256


def test_conditional_needs_a_state_file() -> None:
    with http_server({"/a.png": Resource(PNG, etag='"v1"')}) as server, Fetcher() as fetcher:
        fetcher.get(server.url("/a.png"))
        again = fetcher.get(server.url("/a.png"), conditional=True)
    assert again.status == 200 and again.data == PNG  # nothing remembered: a plain GET


def test_library_default_writes_no_state(tmp_path: Path, private_cache_dir: Path) -> None:
    before = set(private_cache_dir.rglob("*"))
    with http_server({"/a.png": Resource(PNG, etag='"v1"')}) as server:
        read_source(server.url("/a.png"))
        with Fetcher() as fetcher:
            fetcher.get(server.url("/a.png"))
    assert set(private_cache_dir.rglob("*")) == before


# --- redirects --------------------------------------------------------------------------------


def test_redirect_chain_is_followed() -> None:
    routes = {
        "/one": redirect("/two", 301),
        "/two": redirect("three", 307),  # relative to /two
        "/three": redirect("/img.png", 308),
        "/img.png": Response(200, PNG, {"Content-Type": "image/png"}),
    }
    with http_server(routes) as server, Fetcher() as fetcher:
        got = fetcher.get(server.url("/one"))
    assert got.data == PNG and got.final_url == server.url("/img.png")
    assert got.redirects == (server.url("/two"), server.url("/three"), server.url("/img.png"))


def test_too_many_redirects() -> None:
    routes: dict[str, object] = {f"/r{i}": redirect(f"/r{i + 1}") for i in range(10)}
    with http_server(routes) as server, Fetcher(limits=Limits(max_redirects=3)) as fetcher:
        with pytest.raises(FetchError, match="more than 3 redirects") as info:
            fetcher.get(server.url("/r0"))
        assert server.hits["/r3"] == 1 and "/r4" not in server.hits
    assert server.url("/r0") in str(info.value)


def test_redirect_loop_is_named() -> None:
    routes = {"/a": redirect("/b"), "/b": redirect("/a")}
    with (
        http_server(routes) as server,
        Fetcher() as fetcher,
        pytest.raises(FetchError, match="redirect loop") as info,
    ):
        fetcher.get(server.url("/a"))
    assert f"{server.url('/a')} → {server.url('/b')} → {server.url('/a')}" in str(info.value)


def test_redirect_to_a_file_url_is_refused() -> None:
    with (
        http_server({"/a": redirect("file:///etc/passwd")}) as server,
        Fetcher() as fetcher,
        pytest.raises(FetchError, match="not an http"),
    ):
        fetcher.get(server.url("/a"))


# --- timeouts, resets, short bodies -----------------------------------------------------------


def test_stalled_server_times_out_on_every_try() -> None:
    fetcher = Fetcher(limits=Limits(read_timeout=0.3), retry=Retry(tries=2, backoff=0.0))
    with http_server({"/slow.png": stall(2)}) as server, fetcher:
        started = time.monotonic()
        with pytest.raises(FetchError, match=r"timed out .*\(tried 2 times\)") as info:
            fetcher.get(server.url("/slow.png"))
        elapsed = time.monotonic() - started
        assert server.hits["/slow.png"] == 2
    assert 0.5 < elapsed < 1.5
    assert len(info.value.attempts) == 2


def test_total_timeout_cuts_a_trickle() -> None:
    def trickle(handler: http.server.BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        try:
            handler.wfile.write(PNG[:40])
            for _ in range(100):
                handler.wfile.write(b"\0" * 10)
                handler.wfile.flush()
                time.sleep(0.05)
        except OSError:
            return

    limits = Limits(read_timeout=1, total_timeout=0.5)
    with http_server({"/t.png": trickle}) as server, Fetcher(limits=limits) as fetcher:
        started = time.monotonic()
        with pytest.raises(LimitExceeded, match=r"longer than 0\.5 s"):
            fetcher.get(server.url("/t.png"))
        assert time.monotonic() - started < 1.5


def test_connection_reset_mid_body_is_retried_then_reported() -> None:
    broken = cut_short(PNG[:100], len(PNG), reset=True)
    with http_server({"/r.png": broken}) as server, Fetcher(retry=FAST) as fetcher:
        with pytest.raises(FetchError, match="tried 3 times") as info:
            fetcher.get(server.url("/r.png"))
        assert server.hits["/r.png"] == 3
    assert "reset" in str(info.value) or "closed" in str(info.value)


def test_connection_reset_once_then_success() -> None:
    routes = {"/r.png": Sequence(cut_short(PNG[:100], len(PNG), reset=True), Response(200, PNG))}
    with http_server(routes) as server, Fetcher(retry=FAST) as fetcher:
        got = fetcher.get(server.url("/r.png"))
    assert got.data == PNG and got.tries == 2


def test_body_shorter_than_content_length() -> None:
    short = cut_short(PNG[:100], 5000, reset=False)
    with (
        http_server({"/s.png": short}) as server,
        Fetcher(retry=Retry(tries=1)) as fetcher,
        pytest.raises(FetchError, match="closed after 100 of 5,000 bytes") as info,
    ):
        fetcher.get(server.url("/s.png"))
    assert server.url("/s.png") in str(info.value)


def test_connection_refused_names_the_url() -> None:
    with http_server({}) as server:
        url = server.url("/gone.png")
    with Fetcher(retry=FAST) as fetcher, pytest.raises(FetchError, match="cannot connect") as info:
        fetcher.get(url)
    assert str(info.value).startswith(url)


# --- retries ----------------------------------------------------------------------------------


def test_500_then_200_is_retried() -> None:
    routes = {"/a.png": Sequence(Response(500, b"oops"), Response(200, PNG))}
    with http_server(routes) as server, Fetcher(retry=FAST) as fetcher:
        got = fetcher.get(server.url("/a.png"))
        assert server.hits["/a.png"] == 2
    assert got.data == PNG and got.tries == 2


def test_persistent_503_reports_each_try() -> None:
    with (
        http_server({"/a.png": Response(503, b"busy")}) as server,
        Fetcher(retry=FAST) as f,
        pytest.raises(FetchError) as info,
    ):
        f.get(server.url("/a.png"))
    error = info.value
    assert str(error) == f"{server.url('/a.png')}: HTTP 503 Service Unavailable (tried 3 times)"
    assert error.status == 503 and error.attempts == ("HTTP 503 Service Unavailable",) * 3


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_4xx_is_not_retried(status: int) -> None:
    with http_server({"/a.png": Response(status, b"no")}) as server, Fetcher(retry=FAST) as f:
        with pytest.raises(FetchError, match=f"HTTP {status}") as info:
            f.get(server.url("/a.png"))
        assert server.hits["/a.png"] == 1
    assert info.value.status == status


def test_429_honours_retry_after_capped() -> None:
    routes = {"/a.png": Sequence(Response(429, b"", {"Retry-After": "1"}), Response(200, PNG))}
    retry = Retry(tries=2, backoff=0.0, max_retry_after=0.3)
    with http_server(routes) as server, Fetcher(retry=retry) as fetcher:
        started = time.monotonic()
        got = fetcher.get(server.url("/a.png"))
        elapsed = time.monotonic() - started
    assert got.data == PNG and got.tries == 2
    assert 0.28 <= elapsed < 0.9  # waited Retry-After, capped at 0.3 s (not 1 s, not 0 s)


def test_retry_after_forms() -> None:
    assert _retry_after("7") == 7.0
    assert _retry_after(None) is None and _retry_after("soon") is None
    future = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 60))
    delay = _retry_after(future)
    assert delay is not None and 55 <= delay <= 61
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_backoff_is_exponential_with_jitter() -> None:
    retry = Retry(backoff=0.5, max_backoff=3.0, jitter=0.5)
    rng = random.Random(1)
    for failed, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 3.0), (9, 3.0)]:
        delays = [retry.delay(failed, None, rng) for _ in range(200)]
        assert base * 0.5 <= min(delays) and max(delays) <= base
        assert max(delays) - min(delays) > base * 0.3  # jitter spreads them
    assert retry.delay(1, 100.0, rng) == retry.max_retry_after


# --- what the body is -------------------------------------------------------------------------


def test_html_page_served_as_jpeg_is_an_error_that_says_so() -> None:
    page = b"<!DOCTYPE html><html><head><title>Not found</title></head>" + b" " * 100_000
    routes = {"/photo.jpg": Response(200, page, {"Content-Type": "image/jpeg"})}
    with http_server(routes) as server, Fetcher(retry=FAST) as fetcher:
        with pytest.raises(FetchError) as info:
            fetcher.get(server.url("/photo.jpg"))
        assert server.hits["/photo.jpg"] == 1  # not retried
    message = str(info.value)
    assert message.startswith(server.url("/photo.jpg"))
    assert "HTML page" in message and "Content-Type image/jpeg" in message
    assert info.value.status == 200


def test_empty_body_is_an_error() -> None:
    with (
        http_server({"/e.png": Response(200, b"")}) as server,
        Fetcher() as fetcher,
        pytest.raises(FetchError, match="empty"),
    ):
        fetcher.get(server.url("/e.png"))


def test_endless_body_is_cut_at_the_size_limit() -> None:
    route = endless(PNG[:64])
    with (
        http_server({"/x.png": route}) as server,
        Fetcher(limits=Limits(max_bytes=200_000)) as f,
        pytest.raises(LimitExceeded, match="exceeds the limit of 200,000 bytes"),
    ):
        f.get(server.url("/x.png"))


def test_announced_length_over_the_limit_is_refused_before_reading() -> None:
    big = Response(200, PNG * 40, {"Content-Type": "image/png"})
    with (
        http_server({"/b.png": big}) as server,
        Fetcher(limits=Limits(max_bytes=1000)) as f,
        pytest.raises(LimitExceeded, match="Content-Length"),
    ):
        f.get(server.url("/b.png"))


@pytest.mark.parametrize("kind", ["png", "jpeg-after-big-exif"])
def test_pixel_bomb_refused_from_the_header_before_the_rest(kind: str) -> None:
    if kind == "png":
        head, size = _png_header_only(100_000, 100_000)[:-12], "100000×100000"  # no IEND
    else:
        jpeg = jpeg_with_exif(32, 32, exif_bytes=60_000)
        head, size = with_jpeg_size(jpeg, 60_000, 60_000), "60000×60000"
    # The body never ends: finishing at all shows the rest was not downloaded.
    with http_server({"/bomb": endless(head)}) as server, Fetcher(retry=FAST) as fetcher:
        started = time.monotonic()
        with pytest.raises(LimitExceeded, match=f"{size} = .* pixels exceeds") as info:
            fetcher.get(server.url("/bomb"))
        assert time.monotonic() - started < 2
        assert server.hits["/bomb"] == 1
    assert server.url("/bomb") in str(info.value)


# --- other sources --------------------------------------------------------------------------


def test_data_and_file_urls_still_work(tmp_path: Path) -> None:
    import base64

    target = tmp_path / "a.png"
    target.write_bytes(PNG)
    assert read_source("file://" + str(target)).data == PNG
    data_url = "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert read_source(data_url).data == PNG
    with Fetcher(allow_private=False) as guarded:
        assert read_source(data_url, fetcher=guarded).data == PNG  # no network involved
        assert read_source(target, fetcher=guarded).data == PNG  # a path the caller named
        with pytest.raises(SourceError, match="file:// URLs are refused"):
            read_source("file://" + str(target), fetcher=guarded)


# --- proxies --------------------------------------------------------------------------------


def test_proxy_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    url = "http://images.example.invalid/a.png"  # .invalid never resolves: only a proxy helps
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    with http_server({url: Response(200, PNG, {"Content-Type": "image/png"})}) as proxy:
        monkeypatch.setenv("HTTP_PROXY", proxy.base)
        with Fetcher() as fetcher:
            assert fetcher.get(url).data == PNG
        assert proxy.hits[url] == 1  # the proxy got the absolute URL, as proxies do
        # --no-private connects directly, to checked addresses only: no proxy, and a name
        # that does not resolve fails at once (not retried).
        with (
            Fetcher(allow_private=False, retry=FAST) as guarded,
            pytest.raises(FetchError, match="no such host"),
        ):
            guarded.get(url)
        assert proxy.hits[url] == 1


# --- private addresses ------------------------------------------------------------------------


def test_loopback_allowed_by_default_refused_with_the_switch() -> None:
    with http_server({"/a.png": Response(200, PNG)}) as server:
        url = server.url("/a.png")
        with Fetcher() as fetcher:
            assert fetcher.get(url).data == PNG
        hits = server.hits["/a.png"]
        with Fetcher(allow_private=False, retry=FAST) as guarded:
            with pytest.raises(FetchError, match=r"127\.0\.0\.1 is a loopback address") as info:
                guarded.get(url)
            with pytest.raises(FetchError, match=r"localhost resolves to .*, a loopback address"):
                guarded.get(url.replace("127.0.0.1", "localhost"))
        assert server.hits["/a.png"] == hits  # refused before connecting
    assert str(info.value).startswith(url) and "not allowed" in str(info.value)


def test_redirect_into_loopback_is_refused() -> None:
    # The first server stands for a public one: 127.0.0.2, exempted; it redirects to 127.0.0.1.
    try:
        socket.create_server(("127.0.0.2", 0)).close()
    except OSError:
        pytest.skip("cannot bind 127.0.0.2 here")
    with http_server({"/secret.png": Response(200, PNG)}) as inside:
        target = inside.url("/secret.png")
        with http_server({"/a.png": redirect(target)}, host="127.0.0.2") as outside:
            with (
                Fetcher(allow_private=False, allowed_networks=["127.0.0.2/32"]) as guarded,
                pytest.raises(FetchError, match=r"redirect to .* refused") as info,
            ):
                guarded.get(outside.url("/a.png"))
            assert outside.hits["/a.png"] == 1
            with Fetcher() as fetcher:  # the default follows it
                assert fetcher.get(outside.url("/a.png")).data == PNG
        assert inside.hits["/secret.png"] == 1  # only the unguarded fetch got there
    assert target in str(info.value)


def test_the_check_lives_in_the_connection() -> None:
    # Even a request that bypasses samepix's request logic cannot reach a refused address:
    # the socket connects to the address that was checked, so DNS rebinding has no window.
    with http_server({"/a.png": Response(200, PNG)}) as server:
        with Fetcher(allow_private=False) as guarded, pytest.raises(Exception, match="loopback"):
            guarded._sync_client().get(server.url("/a.png"))
        assert "/a.png" not in server.hits


@pytest.mark.parametrize(
    ("address", "refused"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),  # cloud metadata endpoints
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fc00::1", "private"),
        ("::ffff:127.0.0.1", "loopback"),
        ("93.184.216.34", None),
        ("2606:2800:220:1:248:1893:25c8:1946", None),
    ],
)
def test_address_classification(address: str, refused: str | None) -> None:
    from samepix.fetch import _blocked_reason

    assert _blocked_reason(address) == refused


# --- async ------------------------------------------------------------------------------------


def test_async_many_with_validators(tmp_path: Path) -> None:
    bodies = {f"/{i}.png": encode(picture(16, 16, seed=i), "PNG") for i in range(30)}
    routes: dict[str, object] = {
        path: Resource(body, "image/png", etag=f'"{i}"')
        for i, (path, body) in enumerate(bodies.items())
    }
    with http_server(routes) as server:  # type: ignore[arg-type]
        urls = [server.url(path) for path in bodies] + [server.url("/missing.png")]
        with Fetcher(state=tmp_path / "s", concurrency=4) as fetcher:
            first = fetcher.get_many(urls)
            sent = server.body_bytes_sent
            second = fetcher.get_many(urls)
    assert [d.data for d in first[:-1] if isinstance(d, Download)] == list(bodies.values())
    assert isinstance(first[-1], FetchError) and first[-1].status == 404
    assert all(isinstance(d, Download) and d.not_modified for d in second[:-1])
    assert server.body_bytes_sent - sent == len(b"not found")  # only the 404 page again


def test_async_get_and_probe_share_the_guard() -> None:
    async def go(url: str) -> None:
        async with Fetcher(allow_private=False) as guarded:
            with pytest.raises(FetchError, match="loopback"):
                await guarded.aget(url)
            with pytest.raises(FetchError, match="loopback"):
                await guarded.aprobe(url)
        async with Fetcher() as fetcher:
            assert (await fetcher.aget(url)).data == PNG
            assert (await fetcher.aprobe(url)).width == 64

    with http_server({"/a.png": Resource(PNG, "image/png")}) as server:
        asyncio.run(go(server.url("/a.png")))


# --- probe ------------------------------------------------------------------------------------


def test_probe_with_range_reads_only_the_head() -> None:
    big = encode(picture(1200, 900), "JPEG", quality=95)
    assert len(big) > 500_000
    with http_server({"/big.jpg": Resource(big, "image/jpeg", etag='"b"')}) as server:
        found = probe(server.url("/big.jpg"))
        sent = server.body_bytes_sent
        ranges = [h.get("range") for h in server.headers_of("/big.jpg")]
    assert (found.format, found.width, found.height, found.size) == ("JPEG", 1200, 900, len(big))
    assert found.ranged and ranges == ["bytes=0-32767"]
    assert found.transferred == sent <= 32 * 1024
    assert found.etag == '"b"' and found.content_type == "image/jpeg"


def test_probe_reads_past_a_big_exif_block() -> None:
    data = jpeg_with_exif(900, 600, exif_bytes=60_000, orientation=6)
    assert len(data) > 300_000
    with http_server({"/e.jpg": Resource(data, "image/jpeg", etag='"e"')}) as server:
        found = probe(server.url("/e.jpg"))
        requests = server.headers_of("/e.jpg")
    # Orientation 6: a viewer turns it, so the width and height swap (as ImageInfo reports).
    assert (found.width, found.height, found.orientation) == (600, 900, 6)
    assert [r["range"] for r in requests] == ["bytes=0-32767", "bytes=32768-131071"]
    assert requests[1]["if-range"] == '"e"'
    assert found.transferred < len(data)


def test_probe_without_range_support_stops_early() -> None:
    big = encode(picture(1200, 900), "PNG")
    with http_server({"/big.png": Resource(big, "image/png", ranges=False)}) as server:
        found = probe(server.url("/big.png"))
    assert (found.format, found.width, found.height) == ("PNG", 1200, 900)
    assert not found.ranged and found.size == len(big)
    assert found.transferred < len(big) // 4


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "TIFF"])
def test_probe_formats(fmt: str) -> None:
    data = encode(picture(40, 30), fmt)
    with http_server({"/x": Resource(data)}) as server:
        found = probe(server.url("/x"))
    assert (found.format, found.width, found.height, found.size) == (fmt, 40, 30, len(data))


def test_probe_of_a_page_is_an_error() -> None:
    page = Response(200, b"<html><body>login</body></html>", {"Content-Type": "image/png"})
    with http_server({"/p.png": page}) as server, pytest.raises(FetchError, match="HTML page"):
        probe(server.url("/p.png"))


# --- the CLI, end to end ----------------------------------------------------------------------

one_error_line = one_line_error


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    return run_cli(*args, env=env, timeout=60)


@pytest.fixture
def local_png(tmp_path: Path) -> Path:
    path = tmp_path / "local.png"
    path.write_bytes(PNG)
    return path


def test_cli_second_run_reuses_and_reports_zero_bytes(tmp_path: Path, local_png: Path) -> None:
    state = tmp_path / "state.sqlite3"
    with http_server({"/a.png": Resource(PNG, "image/png", etag='"v1"')}) as server:
        url = server.url("/a.png")
        first = run("compare", "--json", "--state", str(state), url, str(local_png))
        sent = server.body_bytes_sent
        second = run("compare", "--json", "--state", str(state), url, str(local_png))
        human = run("compare", "--state", str(state), url, str(local_png))
        assert server.body_bytes_sent == sent == len(PNG)
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert first.returncode == second.returncode == 0
    assert one["transferred"] == len(PNG) and not one["reused"]
    assert two["transferred"] == 0 and two["reused"] and two["verdict"] == "identical"
    assert two["a"]["source"] == url
    assert "stored result reused (downloaded 0 B)" in human.stdout.decode()


def test_cli_default_state_is_in_the_cache_dir_and_no_cache_skips_it(
    tmp_path: Path, local_png: Path
) -> None:
    cache = tmp_path / "cache"
    env = {"XDG_CACHE_HOME": str(cache)}
    with http_server({"/a.png": Resource(PNG, "image/png", etag='"v1"')}) as server:
        url = server.url("/a.png")
        assert run("compare", "--no-cache", url, str(local_png), env=env).returncode == 0
        assert not cache.exists()
        assert run("compare", url, str(local_png), env=env).returncode == 0
        assert (cache / "samepix" / "fetch-state.sqlite3").exists()
        again = run("compare", "--json", "--no-cache", url, str(local_png), env=env)
    assert json.loads(again.stdout)["transferred"] == len(PNG)


def test_cli_corrupted_state_names_the_file_and_the_way_out(
    tmp_path: Path, local_png: Path
) -> None:
    state = tmp_path / "state.sqlite3"
    state.write_bytes(b"this is not a database" * 200)
    with http_server({"/a.png": Resource(PNG, "image/png")}) as server:
        url = server.url("/a.png")
        proc = run("compare", "--state", str(state), url, str(local_png))
        line = one_error_line(proc, str(state), "corrupted", "--no-cache", "delete")
        assert run("compare", "--no-cache", url, str(local_png)).returncode == 0
    assert len(line) < 300


def test_cli_no_private(tmp_path: Path, local_png: Path) -> None:
    with http_server({"/a.png": Resource(PNG, "image/png")}) as server:
        url = server.url("/a.png")
        assert run("compare", "--no-cache", url, str(local_png)).returncode == 0
        refused = run("compare", "--no-cache", "--no-private", url, str(local_png))
        one_error_line(refused, url, "loopback", "not allowed")
        file_url = "file://" + str(local_png)
        one_error_line(run("compare", "--no-private", file_url, str(local_png)), "file://")
        one_error_line(run("probe", "--no-private", url), "loopback")


def test_cli_retries_flag(local_png: Path) -> None:
    with http_server({"/a.png": Response(500, b"")}) as server:
        proc = run("compare", "--no-cache", "--retries", "0", server.url("/a.png"), str(local_png))
        one_error_line(proc, "HTTP 500")
        assert server.hits["/a.png"] == 1


def test_cli_probe() -> None:
    data = encode(picture(640, 480), "JPEG")
    with http_server({"/p.jpg": Resource(data, "image/jpeg")}) as server:
        url = server.url("/p.jpg")
        human = run("probe", url)
        as_json = run("probe", "--json", url)
        missing = run("probe", server.url("/nope.jpg"))
    assert human.returncode == 0
    assert human.stdout.decode().startswith(f"JPEG 640×480, {len(data) / 1000:.1f} kB: {url}")
    found = json.loads(as_json.stdout)
    assert (found["width"], found["height"], found["size"], found["ranged"]) == (
        640,
        480,
        len(data),
        True,
    )
    one_error_line(missing, "/nope.jpg", "HTTP 404")
    one_error_line(run("probe", "/tmp/x.png"), "/tmp/x.png: no such file")  # files too (issue 11)


def test_cli_html_page_and_stall(local_png: Path) -> None:
    routes = {
        "/page.jpg": Response(
            200, b"<html><body>oops</body></html>", {"Content-Type": "image/jpeg"}
        ),
        "/slow.jpg": stall(3),
    }
    with http_server(routes) as server:
        html = run("compare", "--no-cache", server.url("/page.jpg"), str(local_png))
        one_error_line(html, "/page.jpg", "HTML page")
        slow = run(
            "compare", "--no-cache", "--retries", "0", "--timeout", "0.3",
            server.url("/slow.jpg"), str(local_png),
        )  # fmt: skip
        one_error_line(slow, "/slow.jpg", "timed out")


def test_help_mentions_the_fetch_flags() -> None:
    out = run("compare", "--help").stdout.decode()
    for flag in ("--state", "--no-cache", "--no-private", "--retries"):
        assert flag in out
    assert "probe" in run("--help").stdout.decode()
