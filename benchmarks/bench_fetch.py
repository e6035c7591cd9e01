"""Fetch-and-decide for many small images from a local server, and the validator path.

    python benchmarks/bench_fetch.py              # 1,000 images
    python benchmarks/bench_fetch.py --count 300 --concurrency 16 --size 640x480

A server in a separate process (so its work does not share this process's GIL) serves N small
JPEG photograph-like pictures on 127.0.0.1 with ETag and Last-Modified, answering conditional
requests with 304. Beside them is a local folder holding each picture re-encoded at another
JPEG quality (the "is it already on my disk?" question for a copy that was re-saved, so deciding
takes the whole ladder: decode, hashes, size alignment, SSIM).

Each run fetches every URL with ``Fetcher.astream`` (async, ``--concurrency`` in flight) and
decides each pair with ``compare(download, local_copy, fetcher=...)`` as downloads arrive: a
downloaded body in a thread pool, an unchanged one (304) right away, since its stored result is
a lookup. The default concurrency is modest because on a small machine the client, the server
and the deciding threads share few cores; more in flight only adds scheduling.

1. first run: an empty state file; everything is downloaded, decided and remembered;
2. unchanged: the same run again; every URL answers 304 and the stored result is reused;
3. download again: no state file (``--no-cache``); everything is downloaded and decided again.

The validator path (2) against downloading again (3) is the ratio the issue asks for (>= 5x).
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import hashlib
import multiprocessing
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.utils import formatdate
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from samepix.compare import compare  # noqa: E402 - after the path set-up above
from samepix.errors import SamepixError  # noqa: E402
from samepix.fetch import Fetcher  # noqa: E402
from samepix.state import FetchState  # noqa: E402

# --------------------------------------------------------------------------------------------
# The server (its own process)


def _serve(folder: str, port_out: Any, ready: Any) -> None:
    """A small asyncio HTTP/1.1 server (keep-alive, ETag, 304): answers in tens of
    microseconds, like a real web server, so the client's work is what gets measured —
    ``http.server`` spends more per request than the client does."""
    files: dict[bytes, tuple[bytes, bytes]] = {}
    modified = formatdate(time.time() - 86400, usegmt=True).encode()
    for path in Path(folder).iterdir():
        data = path.read_bytes()
        etag = f'"{hashlib.sha256(data).hexdigest()[:16]}"'.encode()
        head = (
            b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nContent-Length: "
            + str(len(data)).encode()
            + b"\r\nETag: "
            + etag
            + b"\r\nLast-Modified: "
            + modified
            + b"\r\n\r\n"
        )
        files[b"/" + path.name.encode()] = (head + data, etag)
    missing = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.split(b"\r\n")
                target = lines[0].split(b" ")[1]
                found = files.get(target)
                if found is None:
                    writer.write(missing)
                else:
                    response, etag = found
                    if_none_match = next(
                        (
                            line[14:].strip()
                            for line in lines
                            if line[:14].lower() == b"if-none-match:"
                        ),
                        None,
                    )
                    if if_none_match == etag:
                        writer.write(b"HTTP/1.1 304 Not Modified\r\nETag: " + etag + b"\r\n\r\n")
                    else:
                        writer.write(response)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=512)
        port_out.value = server.sockets[0].getsockname()[1]
        ready.set()
        async with server:
            await server.serve_forever()

    asyncio.run(main())


# --------------------------------------------------------------------------------------------
# The pictures


def _make_pictures(count: int, web: Path, library: Path, size: tuple[int, int]) -> None:
    import cv2
    import numpy as np
    from PIL import Image

    from samepix.demo import make_picture

    base = [make_picture(seed, (size[0] * 2, size[1] * 2)) for seed in range(16)]
    for i in range(count):
        # Distinct pictures cheaply: a different crop of one of 16 large renders, brightened.
        big = base[i % 16]
        x, y = (i * 37) % size[0], (i * 53) % size[1]
        pixels = np.ascontiguousarray(big[y : y + size[1], x : x + size[0]])
        picture = Image.fromarray(cv2.add(pixels, np.full_like(pixels, (i * 7) % 40)))
        picture.save(web / f"{i:05d}.jpg", format="JPEG", quality=90)
        # The copy on disk: the same picture saved at another JPEG quality (a re-encode).
        picture.save(library / f"{i:05d}.jpg", format="JPEG", quality=75)


# --------------------------------------------------------------------------------------------
# One run


@dataclass
class Run:
    name: str
    seconds: float
    images: int
    matches: int
    errors: int
    reused: int
    not_modified: int
    transferred: int

    @property
    def per_second(self) -> float:
        return self.images / self.seconds


async def _fetch_and_decide(
    fetcher: Fetcher,
    pairs: dict[str, Path],
    pool: concurrent.futures.Executor,
    concurrency: int,
) -> tuple[list[Any], int, int]:
    loop = asyncio.get_running_loop()
    decisions: list[asyncio.Future[Any]] = []
    not_modified = transferred = 0
    async with fetcher:
        async for url, got in fetcher.astream(pairs, conditional=True, concurrency=concurrency):
            done = loop.create_future()
            if isinstance(got, SamepixError):
                done.set_result(got)
            elif got.not_modified:
                # Unchanged: compare() looks the stored result up (no decoding), so it runs
                # right here; a thread hop would cost more than the lookup.
                not_modified += 1
                try:
                    done.set_result(compare(got, pairs[url], fetcher=fetcher))
                except SamepixError as exc:
                    done.set_result(exc)
            else:  # a body to decode and measure: a worker thread, while downloads go on
                transferred += got.transferred
                decide: Callable[[], Any] = lambda got=got, url=url: compare(  # noqa: E731
                    got, pairs[url], fetcher=fetcher
                )
                done = loop.run_in_executor(pool, decide)
            decisions.append(done)
        results = await asyncio.gather(*decisions, return_exceptions=True)
    return list(results), not_modified, transferred


def _run(
    name: str,
    pairs: dict[str, Path],
    state: Path | None,
    concurrency: int,
    workers: int,
) -> Run:
    fetcher = Fetcher(state=FetchState(state) if state else None, concurrency=concurrency)
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        started = time.perf_counter()
        results, not_modified, transferred = asyncio.run(
            _fetch_and_decide(fetcher, pairs, pool, concurrency)
        )
        seconds = time.perf_counter() - started
    if fetcher.state is not None:
        fetcher.state.close()
    good = [r for r in results if not isinstance(r, BaseException)]
    return Run(
        name=name,
        seconds=seconds,
        images=len(pairs),
        matches=sum(r.is_match for r in good),
        errors=len(results) - len(good),
        reused=sum(r.reused for r in good),
        not_modified=not_modified,
        transferred=transferred,
    )


# --------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="images (default 1000)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight (default 4)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 2, help="threads deciding pairs"
    )
    parser.add_argument("--size", default="320x240", help="picture size, WxH (default 320x240)")
    args = parser.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))

    with tempfile.TemporaryDirectory(prefix="samepix-bench-fetch-") as tmp:
        web, library = Path(tmp, "web"), Path(tmp, "library")
        web.mkdir()
        library.mkdir()
        t0 = time.perf_counter()
        _make_pictures(args.count, web, library, (width, height))
        web_bytes = sum(p.stat().st_size for p in web.iterdir())
        made = time.perf_counter() - t0
        each = web_bytes / args.count / 1000
        print(f"made {args.count} pictures, {each:.1f} kB each, in {made:.1f} s", file=sys.stderr)

        port = multiprocessing.Value("i", 0)
        ready = multiprocessing.Event()
        server = multiprocessing.Process(target=_serve, args=(str(web), port, ready), daemon=True)
        server.start()
        try:
            if not ready.wait(30):
                raise SystemExit("the benchmark server did not start")
            base = f"http://127.0.0.1:{port.value}"
            pairs = {f"{base}/{i:05d}.jpg": library / f"{i:05d}.jpg" for i in range(args.count)}
            state = Path(tmp, "state.sqlite3")
            runs = [
                _run("first run: download + decide", pairs, state, args.concurrency, args.workers),
                _run(
                    "unchanged: 304 + stored result", pairs, state, args.concurrency, args.workers
                ),
                _run("download again (--no-cache)", pairs, None, args.concurrency, args.workers),
            ]
        finally:
            server.terminate()
            server.join(5)

    print(
        f"\nFetch-and-decide, {args.count} images {width}×{height} from 127.0.0.1 "
        f"(concurrency {args.concurrency}, {args.workers} deciding threads; "
        f"{platform.python_implementation()} {platform.python_version()}, "
        f"{os.cpu_count()} CPUs)\n"
    )
    print("| run | seconds | images/s | 304s | results reused | body bytes | matches | errors |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in runs:
        print(
            f"| {r.name} | {r.seconds:.2f} | {r.per_second:,.0f} | {r.not_modified} | "
            f"{r.reused} | {r.transferred:,} | {r.matches} | {r.errors} |"
        )
    _first, unchanged, again = runs
    ratio = again.seconds / unchanged.seconds
    verdict = "meets" if ratio >= 5 else "BELOW"
    print(f"\nvalidator path vs downloading again: {ratio:.1f}× faster ({verdict} the 5× goal)")
    ok = all(r.errors == 0 and r.matches == r.images for r in runs) and unchanged.transferred == 0
    return 0 if ok and ratio >= 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
