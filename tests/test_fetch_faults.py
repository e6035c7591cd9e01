"""Issue 10 items 2, 3 and 6: hostile servers and bad URLs, as found (real servers on
127.0.0.1, the real ``samepix`` command)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from samepix.errors import FetchError, LimitExceeded
from samepix.fetch import Fetcher, Retry, url_problem
from samepix.limits import Limits

from .faults import SLOW_HEADERS, drip_server
from .helpers import encode, http_server, one_line_error, redirect, run_cli


@pytest.fixture(scope="module")
def png(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(10)
    path = tmp_path_factory.mktemp("pic") / "one.png"
    path.write_bytes(encode(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG"))
    return path


# --- 10.2: the whole exchange fits in the total deadline ---------------------------------------


def test_headers_dripped_at_one_byte_a_second_end_at_the_timeout(png: Path) -> None:
    # As found: `--timeout 5 --retries 0` was still running after 200 s.
    with drip_server(SLOW_HEADERS) as base:
        started = time.monotonic()
        proc = run_cli(
            "compare", "--no-cache", "--retries", "0", "--timeout", "2", f"{base}/a.png",
            str(png), text=True, timeout=60,
        )  # fmt: skip
        took = time.monotonic() - started
    line = one_line_error(proc, "took longer than 2 s", "--timeout")
    assert took < 10, (took, line)  # interpreter start-up + 2 s, never the 4,000 s of headers


def test_retries_and_redirects_share_one_deadline() -> None:
    # Each hop and each try drips; together they still end at total_timeout.
    with (
        drip_server(SLOW_HEADERS) as drip,
        http_server({"/hop": redirect(f"{drip}/x.png")}) as server,
    ):
        fetcher = Fetcher(
            limits=Limits(total_timeout=1.5, read_timeout=5),
            retry=Retry(tries=4, backoff=0.0, jitter=0.0),
        )
        started = time.monotonic()
        with fetcher, pytest.raises(LimitExceeded, match=r"longer than 1\.5 s"):
            fetcher.get(server.url("/hop"))
        assert time.monotonic() - started < 3.5


def test_sync_with_a_dripping_server_ends_and_keeps_the_others(tmp_path: Path, png: Path) -> None:
    data = png.read_bytes()
    with (
        drip_server(SLOW_HEADERS) as drip,
        http_server({"/good.png": lambda h: _ok(data)}) as server,
    ):
        urls = tmp_path / "urls.txt"
        urls.write_text(f"{drip}/slow.png\n{server.url('/good.png')}\n")
        folder = tmp_path / "dir"
        folder.mkdir()
        started = time.monotonic()
        proc = run_cli(
            "sync", str(urls), str(folder), "--timeout", "2", "--retries", "0", "--workers", "1",
            text=True, timeout=90,
        )  # fmt: skip
        took = time.monotonic() - started
    assert proc.returncode == 2, proc.stderr
    assert "took longer than 2 s" in proc.stdout
    assert (folder / "good.png").read_bytes() == data
    assert took < 20, took


def _ok(body: bytes) -> object:
    from .helpers import Response

    return Response(200, body, {"Content-Type": "image/png"})


# --- 10.3: one bad URL is one failed line --------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://0177.0.0.1/a.png",
        "http://127.000.000.001/a.png",
        "http://ｅｘａｍｐｌｅ.com/a.png",
        "http://example.com/" + "a" * 100_000,
    ],
    ids=["octal-host", "padded-host", "full-width-host", "100-KB-url"],
)
def test_urls_the_http_client_refuses_are_named_before_any_request(url: str) -> None:
    problem = url_problem(url)
    assert problem
    with Fetcher(retry=Retry(tries=1)) as fetcher, pytest.raises(FetchError) as caught:
        fetcher.get(url)
    assert "not a URL samepix can fetch" in str(caught.value)


@pytest.mark.parametrize(
    "location",
    ["data:image/png;base64,iVBORw0KGgo=", "javascript:alert(1)", "http://0177.0.0.1/x.png"],
    ids=["data", "javascript", "octal-host"],
)
def test_a_redirect_to_a_url_that_cannot_be_fetched_fails_that_url(location: str) -> None:
    with (
        http_server({"/r": redirect(location)}) as server,
        Fetcher(retry=Retry(tries=1)) as fetcher,
        pytest.raises(FetchError) as caught,
    ):
        fetcher.get(server.url("/r"))
    assert "redirected to" in str(caught.value)


def test_upper_case_scheme_is_accepted_by_compare_and_probe(png: Path) -> None:
    data = png.read_bytes()
    with http_server({"/a.png": lambda h: _ok(data)}) as server:
        upper = server.url("/a.png").replace("http://", "HTTP://")
        compared = run_cli("compare", "--no-cache", upper, str(png), text=True)
        probed = run_cli("probe", upper, text=True)
    assert compared.returncode == 0, compared.stderr
    assert compared.stdout.startswith("identical"), compared.stdout
    assert probed.returncode == 0, probed.stderr


def test_no_empty_reason_in_a_reset() -> None:
    # As found: "connection reset after 11,974 bytes ()".
    import socket
    import struct
    from http.server import BaseHTTPRequestHandler

    def reset(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Content-Type", "image/png")
        h.send_header("Content-Length", "100000")
        h.end_headers()
        h.wfile.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 5000)
        h.wfile.flush()
        # SO_LINGER 0: close() sends a TCP reset, not a FIN.
        h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        h.connection.close()

    with (
        http_server({"/r.png": reset}) as server,
        Fetcher(retry=Retry(tries=1)) as fetcher,
        pytest.raises(FetchError) as caught,
    ):
        fetcher.get(server.url("/r.png"))
    message = str(caught.value)
    assert "()" not in message, message
    assert "after" in message, message


# --- 10.6: compression bombs ---------------------------------------------------------------------


def _jpeg_bomb(decoded_mb: int) -> bytes:
    """One gzip stream that starts as a JPEG (SOI, APP0: no size yet, so the header search goes
    on) and decodes to ``decoded_mb`` MB of zeros — the kind of bomb found (4 MB → 4 GB)."""
    import zlib

    head = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    packer = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip format
    block = b"\0" * (1 << 20)
    parts = [packer.compress(head)] + [packer.compress(block) for _ in range(decoded_mb)]
    return b"".join([*parts, packer.flush()])


def _bomb_route(body: bytes) -> object:
    from .helpers import Response

    return Response(200, body, {"Content-Type": "image/png", "Content-Encoding": "gzip"})


def test_a_gzip_bomb_is_refused_at_the_limit_in_bounded_memory() -> None:
    # As found: a 4 MB gzip body expanding to 4 GB took 30 s of CPU and 553 MB.
    import tracemalloc

    limit = 16 << 20
    with http_server({"/bomb.png": _bomb_route(_jpeg_bomb(256))}) as server:  # type: ignore[dict-item]
        fetcher = Fetcher(limits=Limits(max_bytes=limit), retry=Retry(tries=1))
        tracemalloc.start()
        started = time.process_time()
        try:
            with fetcher, pytest.raises(LimitExceeded, match="compression bomb"):
                fetcher.get(server.url("/bomb.png"))
            cpu = time.process_time() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert peak < 2 * limit + (8 << 20), peak  # the body up to the limit, one piece more
    assert cpu < 10, cpu  # refused at 16 MB decoded, not after 256 MB (the old code: 21 s / 4 GB)


def test_many_bombs_cost_one_limit_and_do_not_starve_the_others() -> None:
    # As found: 12 bombs in one list took 221 s and 3.1 GB, and the other downloads timed out.
    import tracemalloc

    limit = 16 << 20
    bomb = _jpeg_bomb(64)
    good = encode(np.random.default_rng(5).integers(0, 255, (64, 64, 3), dtype=np.uint8), "PNG")
    routes: dict[str, object] = {f"/b{i}.png": _bomb_route(bomb) for i in range(12)}
    routes.update({f"/g{i}.png": _ok(good) for i in range(4)})
    with http_server(routes) as server:  # type: ignore[arg-type]
        fetcher = Fetcher(
            limits=Limits(max_bytes=limit, total_timeout=60), retry=Retry(tries=1), concurrency=16
        )
        urls = [server.url(p) for p in routes]
        tracemalloc.start()
        try:
            results = fetcher.get_many(urls, conditional=False)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    bombs, goods = results[:12], results[12:]
    assert all(isinstance(r, LimitExceeded) for r in bombs), bombs
    assert all(not isinstance(r, Exception) and r.data == good for r in goods), goods
    # Decompression adds at most one limit in all, whatever the list holds (12 × 16 MB before).
    assert peak < 3 * limit + (16 << 20), peak


def test_gzip_image_still_downloads() -> None:
    import gzip

    from .helpers import Response

    good = encode(np.random.default_rng(6).integers(0, 255, (64, 64, 3), dtype=np.uint8), "BMP")
    routes = {
        "/g.bmp": Response(
            200, gzip.compress(good), {"Content-Type": "image/bmp", "Content-Encoding": "gzip"}
        ),
        "/d.bmp": Response(
            200,
            __import__("zlib").compress(good),
            {"Content-Type": "image/bmp", "Content-Encoding": "deflate"},
        ),
    }
    with http_server(routes) as server, Fetcher(retry=Retry(tries=1)) as fetcher:  # type: ignore[arg-type]
        assert fetcher.get(server.url("/g.bmp")).data == good
        assert fetcher.get(server.url("/d.bmp")).data == good
