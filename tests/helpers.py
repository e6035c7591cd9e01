"""Test helpers: encode arrays in real formats, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import http.server
import io
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image


def encode(pixels: np.ndarray | Image.Image, fmt: str, **options: object) -> bytes:
    """Encode an array or PIL image with Pillow (fmt: PNG, JPEG, WEBP, GIF, BMP, TIFF)."""
    im = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    out = io.BytesIO()
    im.save(out, format=fmt, **options)  # type: ignore[arg-type]
    return out.getvalue()


def load_rgb(path: object) -> np.ndarray:
    with Image.open(path) as im:  # type: ignore[arg-type]
        return np.asarray(im.convert("RGB"))


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[http.server.BaseHTTPRequestHandler], "Response | None"]


def redirect(location: str, status: int = 302) -> Response:
    return Response(status, b"", {"Location": location})


@dataclass
class Resource:
    """A file served as a real web server serves it: validators (304), Range (206), gzip."""

    body: bytes
    content_type: str = "application/octet-stream"
    etag: str | None = None
    last_modified: str | None = None
    ranges: bool = True
    gzip: bool = False

    def __call__(self, handler: http.server.BaseHTTPRequestHandler) -> Response:
        request = handler.headers
        validators = {}
        if self.etag:
            validators["ETag"] = self.etag
        if self.last_modified:
            validators["Last-Modified"] = self.last_modified
        if_none_match = request.get("If-None-Match")
        if_modified_since = request.get("If-Modified-Since")
        # RFC 9110 13.2.2: If-None-Match wins over If-Modified-Since.
        if if_none_match is not None and self.etag:
            if self.etag in [tag.strip() for tag in if_none_match.split(",")]:
                return Response(304, b"", validators)
        elif (
            if_modified_since is not None
            and self.last_modified
            and parsedate_to_datetime(if_modified_since)
            >= parsedate_to_datetime(self.last_modified)
        ):
            return Response(304, b"", validators)
        headers = {"Content-Type": self.content_type, **validators}
        wanted = request.get("Range")
        if_range = request.get("If-Range")
        if self.ranges and wanted and wanted.startswith("bytes=") and if_range in (None, self.etag):
            first_text, _, last_text = wanted[6:].partition("-")
            first = int(first_text)
            last = min(int(last_text) if last_text else len(self.body) - 1, len(self.body) - 1)
            if first >= len(self.body):
                return Response(416, b"", {"Content-Range": f"bytes */{len(self.body)}"})
            headers["Content-Range"] = f"bytes {first}-{last}/{len(self.body)}"
            return Response(206, self.body[first : last + 1], headers)
        body = self.body
        if self.gzip and "gzip" in request.get("Accept-Encoding", ""):
            body = gzip.compress(body)
            headers["Content-Encoding"] = "gzip"
        return Response(200, body, headers)


class Sequence:
    """A route answering with each response in turn (the last one repeats): 500 then 200."""

    def __init__(self, *responses: Response | Route) -> None:
        self.responses = responses
        self.calls = 0

    def __call__(self, handler: http.server.BaseHTTPRequestHandler) -> Response | None:
        item = self.responses[min(self.calls, len(self.responses) - 1)]
        self.calls += 1
        return item(handler) if callable(item) else item


@dataclass
class Server:
    """A live server: ``url(path)``; ``routes`` maps a path to a Response or a callable.

    ``body_bytes_sent`` counts every body byte written (by any route), headers excluded;
    ``requests`` holds (path, request headers) for each request, in order.
    """

    base: str
    routes: dict[str, Response | Route]
    hits: dict[str, int] = field(default_factory=dict)
    body_bytes_sent: int = 0
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"{self.base}{path}"

    def headers_of(self, path: str) -> list[dict[str, str]]:
        """The request headers of each request for ``path`` (names lower-cased)."""
        return [headers for seen, headers in self.requests if seen == path]


class _CountingWriter:
    def __init__(self, raw: Any, count: Callable[[int], None]) -> None:
        self.raw = raw
        self.count = count

    def write(self, data: bytes) -> int:
        # Counted before the write: once the client has the bytes, the count already has them
        # (counting after would race with a client that reads the count straight away).
        self.count(len(data))
        written: int = self.raw.write(data)
        return written

    def flush(self) -> None:
        self.raw.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.raw, name)


@contextmanager
def http_server(
    routes: dict[str, Response | Route] | None = None, *, host: str = "127.0.0.1"
) -> Iterator[Server]:
    """Serve ``routes`` on ``host`` (a free port) in a thread for the duration of the block.

    A callable route gets the handler and may write the response itself (return None) —
    used for stalls, resets and endless bodies.
    """
    state = Server(base="", routes=dict(routes or {}))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without TCP_NODELAY the body waits
        # for the client's delayed ACK (40 ms a request on Linux).
        disable_nagle_algorithm = True
        in_body = False

        def log_message(self, format: str, *args: object) -> None:
            pass

        def setup(self) -> None:
            super().setup()

            def count(n: int) -> None:
                if self.in_body:
                    with lock:
                        state.body_bytes_sent += n

            self.wfile = _CountingWriter(self.wfile, count)  # type: ignore[assignment]

        def end_headers(self) -> None:
            super().end_headers()
            self.in_body = True

        def do_GET(self) -> None:
            self.in_body = False
            path = self.path.split("?", 1)[0]
            with lock:
                state.hits[path] = state.hits.get(path, 0) + 1
                state.requests.append((path, {k.lower(): v for k, v in self.headers.items()}))
            route = state.routes.get(path)
            if route is None:
                response: Response | None = Response(
                    404, b"not found", {"Content-Type": "text/plain"}
                )
            elif callable(route):
                response = route(self)
            else:
                response = route
            if response is None:
                return
            self.send_response(response.status)
            headers = {"Content-Length": str(len(response.body)), **response.headers}
            for key, value in headers.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(response.body)

    class QuietServer(http.server.ThreadingHTTPServer):
        daemon_threads = True

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # resets and early closes are what some tests are about

    server = QuietServer((host, 0), Handler)
    state.base = f"http://{host}:{server.server_address[1]}"
    # A short poll interval: shutdown() waits for it, once per test.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def rgb_icc_profile(description: str = "Adobe RGB (1998) test", gamma: float = 2.2) -> bytes:
    """A minimal ICC v2 RGB display profile (matrix/TRC), Adobe RGB (1998) primaries, D50 PCS.

    Built by hand so tests have a real non-sRGB profile without shipping a file.
    """
    import struct

    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = description.encode("ascii") + b"\0"
    desc = (
        b"desc"
        + b"\0" * 4
        + struct.pack(">I", len(text))
        + text
        + b"\0" * 8
        + b"\0" * 3
        + b"\0" * 67
    )
    curv = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, round(gamma * 256)) + b"\0\0"
    tags = [
        (b"desc", desc),
        (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
        (b"rXYZ", xyz(0.60974, 0.31111, 0.01947)),
        (b"gXYZ", xyz(0.20528, 0.62567, 0.06087)),
        (b"bXYZ", xyz(0.14919, 0.06322, 0.74457)),
        (b"rTRC", curv),
        (b"gTRC", curv),
        (b"bTRC", curv),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size)
        + b"\0" * 4
        + struct.pack(">I", 0x02100000)
        + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0)
        + b"acsp"
        + b"\0" * 24
        + struct.pack(">I", 0)
        + s15(0.9642)
        + s15(1.0)
        + s15(0.8249)
        + b"\0" * 48
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str,
    stdin: bytes | str | None = None,
    text: bool = False,
    env: dict[str, str] | None = None,
    timeout: float = 120,
    **kwargs: Any,
) -> subprocess.CompletedProcess[Any]:
    """Run the real ``samepix`` command (``python -m samepix``) from this checkout's src/."""
    full_env = {
        **os.environ,
        "PYTHONPATH": str(ROOT / "src"),
        "PYTHONDONTWRITEBYTECODE": "1",
        **(env or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "samepix", *args],
        input=stdin,
        capture_output=True,
        text=text,
        timeout=timeout,
        env=full_env,
        check=False,
        **kwargs,
    )


def one_line_error(proc: subprocess.CompletedProcess[Any], *needles: str) -> str:
    """Assert the house rule for bad input: exit 2, one ``error: ...`` line, no traceback."""
    err = proc.stderr if isinstance(proc.stderr, str) else proc.stderr.decode()
    assert proc.returncode == 2, (proc.returncode, proc.stdout, err)
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def dies_mid_body(body: bytes) -> Callable[[Any], None]:
    """A handler that promises ``body`` (Content-Length) and sends half of it, then hangs up."""

    def dies(handler: Any) -> None:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body)))
        handler.send_header("Content-Type", "image/jpeg")
        handler.end_headers()
        handler.wfile.write(body[: len(body) // 2])
        handler.wfile.flush()
        handler.close_connection = True

    return dies
