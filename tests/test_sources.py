"""sources and fetch: paths, file:// and data: URLs, bytes, and HTTP against a real local server."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from samepix.errors import FetchError, LimitExceeded, SourceError
from samepix.limits import Limits
from samepix.sources import is_url, read_source

from .helpers import Response, http_server

PNG_BYTES = b"\x89PNG\r\n\x1a\n" + b"x" * 40


def test_path_and_file_url(tmp_path: Path) -> None:
    target = tmp_path / "a b.png"
    target.write_bytes(PNG_BYTES)
    assert read_source(target).data == PNG_BYTES
    assert read_source(str(target)).path == target
    url = "file://" + quote(str(target))
    got = read_source(url)
    assert got.data == PNG_BYTES and got.name == url


def test_bytes_source() -> None:
    got = read_source(PNG_BYTES)
    assert got.data == PNG_BYTES and got.name == f"<{len(PNG_BYTES)} bytes>"


@pytest.mark.parametrize(
    "url",
    [
        "data:image/png;base64," + base64.b64encode(PNG_BYTES).decode(),
        "data:image/png," + quote(PNG_BYTES),
    ],
    ids=["base64", "percent-encoded"],
)
def test_data_urls(url: str) -> None:
    got = read_source(url)
    assert got.data == PNG_BYTES
    assert got.content_type == "image/png"


def test_malformed_data_url() -> None:
    with pytest.raises(SourceError, match="malformed data URL"):
        read_source("data:image/png;base64")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="no such file") as info:
        read_source(tmp_path / "nope.jpg")
    assert "nope.jpg" in str(info.value)
    with pytest.raises(SourceError, match="is a directory"):
        read_source(tmp_path)


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root reads any file")
def test_permission_denied(tmp_path: Path) -> None:
    target = tmp_path / "secret.png"
    target.write_bytes(PNG_BYTES)
    target.chmod(0)
    with pytest.raises(SourceError, match="permission denied"):
        read_source(target)


def test_unsupported_scheme() -> None:
    with pytest.raises(SourceError, match="unsupported URL scheme"):
        read_source("ftp://example.com/a.png")
    assert is_url("https://x/y") and is_url("data:,x") and not is_url("/tmp/x")


def test_size_limit_on_files(tmp_path: Path) -> None:
    target = tmp_path / "big.png"
    target.write_bytes(PNG_BYTES)
    with pytest.raises(LimitExceeded, match="exceeds the limit"):
        read_source(target, limits=Limits(max_bytes=10))


# --- HTTP against a real server on 127.0.0.1 --------------------------------------------------


def test_http_download_and_validators() -> None:
    routes = {"/a.png": Response(200, PNG_BYTES, {"ETag": '"v1"', "Content-Type": "image/png"})}
    with http_server(routes) as server:
        got = read_source(server.url("/a.png"))
    assert got.data == PNG_BYTES
    assert got.etag == '"v1"' and got.content_type == "image/png"
    assert got.transferred == len(PNG_BYTES)


@pytest.mark.parametrize("status", [404, 500, 403])
def test_http_errors_name_url_and_status(status: int) -> None:
    with http_server({"/x.jpg": Response(status, b"nope")}) as server:
        url = server.url("/x.jpg")
        with pytest.raises(FetchError, match=f"HTTP {status}") as info:
            read_source(url)
    assert url in str(info.value)
    assert info.value.status == status


def test_http_stall_times_out() -> None:
    def stall(handler: object) -> None:
        time.sleep(3)
        return None

    with http_server({"/slow.jpg": stall}) as server:
        started = time.monotonic()
        with pytest.raises(FetchError, match="timed out"):
            read_source(server.url("/slow.jpg"), limits=Limits(read_timeout=0.5))
        assert time.monotonic() - started < 2.5


def test_http_body_over_limit_is_cut() -> None:
    with (
        http_server({"/big.png": Response(200, PNG_BYTES * 100)}) as server,
        pytest.raises(LimitExceeded, match="exceeds the limit"),
    ):
        read_source(server.url("/big.png"), limits=Limits(max_bytes=1000))


def test_connection_refused() -> None:
    with http_server({}) as server:
        url = server.url("/gone.png")
    # The server is closed now: nothing listens on that port.
    with pytest.raises(FetchError, match=r"127\.0\.0\.1"):
        read_source(url, limits=Limits(connect_timeout=2))
