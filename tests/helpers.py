"""Test helpers: encode arrays in real formats, and a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import http.server
import io
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

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


Route = Callable[[http.server.BaseHTTPRequestHandler], Response | None]


@dataclass
class Server:
    """A live server: ``url(path)``; ``routes`` maps a path to a Response or a callable."""

    base: str
    routes: dict[str, Response | Route]
    hits: dict[str, int] = field(default_factory=dict)
    body_bytes_sent: int = 0

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


@contextmanager
def http_server(routes: dict[str, Response | Route] | None = None) -> Iterator[Server]:
    """Serve ``routes`` on 127.0.0.1 (a free port) in a thread for the duration of the block.

    A callable route gets the handler and may write the response itself (return None) —
    used for stalls, resets and endless bodies.
    """
    state = Server(base="", routes=dict(routes or {}))
    lock = threading.Lock()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            with lock:
                state.hits[path] = state.hits.get(path, 0) + 1
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
            with lock:
                state.body_bytes_sent += len(response.body)

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
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
