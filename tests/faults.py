"""Hostile servers for the fault tests: raw sockets on 127.0.0.1 that misbehave on purpose."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator


@contextlib.contextmanager
def drip_server(payload: bytes, *, interval: float = 1.0) -> Iterator[str]:
    """A server that answers every connection with ``payload`` one byte per ``interval`` s —
    status line and headers included — and yields its base URL."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    listener.settimeout(0.1)
    stop = threading.Event()

    def drip(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(5)
            conn.recv(65536)  # the request
            for byte in payload:
                if stop.is_set():
                    return
                conn.sendall(bytes([byte]))
                time.sleep(interval)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            threading.Thread(target=drip, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


SLOW_HEADERS = (
    b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nX-Padding: "
    + b"x" * 4000
    + b"\r\nContent-Length: 10\r\n\r\n0123456789"
)
