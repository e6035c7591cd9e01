"""Which HTTP client to re-check an unchanged URL list with: N conditional GETs, each answered
``304 Not Modified``, from a local server in its own process (``bench_sync.serve``).

    python benchmarks/bench_recheck.py                 # 500 URLs, 3 interleaved rounds
    python benchmarks/bench_recheck.py --urls 2000 --reps 5

Measured, interleaved, medians: httpx's ``AsyncClient`` (16 and 4 connections, what sync used),
httpx's ``Client`` (1 and 4 threads), urllib3's ``PoolManager`` and aiohttp (when installed),
Python's ``http.client`` on kept-alive connections (1 and 4 threads), and samepix's two paths
as sync drives them: ``Fetcher.astream`` (httpx, every check of the full fetch path) and
``samepix.recheck.Rechecker`` (http.client, the path sync takes for a re-check now). Every
answer is checked to be a 304. Why recheck.py exists: docs/benchmarks.md, "Sync".
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_sync import serve  # noqa: E402


def in_threads(count: int, work: Callable[[list[Any]], None], items: list[Any]) -> None:
    threads = [threading.Thread(target=work, args=(items[i::count],)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=500)
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args()
    bodies = {f"/img/{i:05d}.jpg": os.urandom(20_000) for i in range(args.urls)}
    etags = {p: f'"{hashlib.sha256(b).hexdigest()[:16]}"' for p, b in bodies.items()}

    with serve(bodies) as (base, _counts), tempfile.TemporaryDirectory() as tmp:
        pairs = [(base + path, etags[path]) for path in bodies]
        host, port = base.removeprefix("http://").split(":")

        def httpx_async(connections: int) -> None:
            import httpx

            async def run() -> None:
                limits = httpx.Limits(
                    max_connections=connections, max_keepalive_connections=connections
                )
                async with httpx.AsyncClient(limits=limits) as client:
                    gate = asyncio.Semaphore(connections)

                    async def one(url: str, etag: str) -> None:
                        async with gate:
                            r = await client.get(url, headers={"If-None-Match": etag})
                            assert r.status_code == 304

                    await asyncio.gather(*(one(u, e) for u, e in pairs))

            asyncio.run(run())

        def httpx_sync(threads: int) -> None:
            import httpx

            limits = httpx.Limits(max_connections=threads, max_keepalive_connections=threads)
            with httpx.Client(limits=limits) as client:

                def work(items: list[tuple[str, str]]) -> None:
                    for url, etag in items:
                        assert client.get(url, headers={"If-None-Match": etag}).status_code == 304

                in_threads(threads, work, pairs)

        def urllib3_pool(threads: int) -> None:
            import urllib3

            pool = urllib3.PoolManager(maxsize=threads)

            def work(items: list[tuple[str, str]]) -> None:
                for url, etag in items:
                    r = pool.request(
                        "GET", url, headers={"If-None-Match": etag}, preload_content=False
                    )
                    assert r.status == 304
                    r.release_conn()

            in_threads(threads, work, pairs)
            pool.clear()

        def aiohttp_session(connections: int) -> None:
            import aiohttp

            async def run() -> None:
                connector = aiohttp.TCPConnector(limit=connections)
                async with aiohttp.ClientSession(connector=connector) as session:

                    async def one(url: str, etag: str) -> None:
                        async with session.get(url, headers={"If-None-Match": etag}) as r:
                            assert r.status == 304
                            await r.read()

                    await asyncio.gather(*(one(u, e) for u, e in pairs))

            asyncio.run(run())

        def http_client(threads: int) -> None:
            import http.client

            def work(items: list[tuple[str, str]]) -> None:
                conn = http.client.HTTPConnection(host, int(port))
                for url, etag in items:
                    conn.request("GET", url[len(base) :], headers={"If-None-Match": etag})
                    r = conn.getresponse()
                    r.read()
                    assert r.status == 304
                conn.close()

            in_threads(threads, work, pairs)

        # samepix's two paths, with a state file that knows every URL's ETag.
        from samepix.fetch import Fetcher
        from samepix.recheck import Rechecker
        from samepix.state import FetchState, UrlRecord

        state = FetchState(Path(tmp) / "state.sqlite3")
        now = time.time()
        state.remember_many(
            UrlRecord(u, e, None, 20_000, "0" * 64, "image/jpeg", u, now, now) for u, e in pairs
        )
        urls = [u for u, _ in pairs]

        def samepix_fetcher(concurrency: int) -> None:
            state.preload(urls)

            async def run() -> None:
                async with Fetcher(state=state, concurrency=concurrency) as fetcher:
                    async for _url, got in fetcher.astream(urls, concurrency=concurrency):
                        assert not isinstance(got, Exception) and got.not_modified, got

            asyncio.run(run())

        def samepix_recheck(threads: int) -> None:
            state.preload(urls)

            async def run() -> None:
                async with Fetcher(state=state, concurrency=threads) as fetcher:
                    rechecker = Rechecker.for_fetcher(fetcher, threads=threads)
                    assert rechecker is not None
                    gate = asyncio.Semaphore(threads)

                    async def one(url: str) -> None:
                        async with gate:
                            got = await rechecker.acheck(url)
                            assert got is not None and got.not_modified

                    try:
                        await asyncio.gather(*(one(u) for u in urls))
                    finally:
                        rechecker.close()

            asyncio.run(run())

        rows: list[tuple[str, Callable[[], None]]] = [
            ("httpx AsyncClient, 16 connections", lambda: httpx_async(16)),
            ("httpx AsyncClient, 4 connections", lambda: httpx_async(4)),
            ("httpx Client, 1 thread", lambda: httpx_sync(1)),
            ("httpx Client, 4 threads", lambda: httpx_sync(4)),
            ("http.client, 1 thread (kept alive)", lambda: http_client(1)),
            ("http.client, 4 threads (kept alive)", lambda: http_client(4)),
            ("samepix Fetcher.astream, 16 (httpx; sync before)", lambda: samepix_fetcher(16)),
            ("samepix Rechecker, 16 threads (http.client; sync now)", lambda: samepix_recheck(16)),
        ]
        for name, module, row in (
            ("urllib3 PoolManager, 4 threads", "urllib3", lambda: urllib3_pool(4)),
            ("aiohttp ClientSession, 16 connections", "aiohttp", lambda: aiohttp_session(16)),
        ):
            try:
                __import__(module)
            except ImportError:
                print(f"{name}: skipped, {module} is not installed")
                continue
            rows.insert(4, (name, row))
        times: dict[str, list[float]] = {name: [] for name, _ in rows}
        for _ in range(args.reps):  # interleaved: a burst of load hits every client alike
            for name, run in rows:
                start = time.perf_counter()
                run()
                times[name].append(time.perf_counter() - start)
        state.close()

    n = args.urls
    print(f"\n{n:,} conditional GETs, each answered 304, median of {args.reps} interleaved runs")
    print(f"load average {os.getloadavg()[0]:.1f} at the end\n")
    print("| client | ms | requests/s | ms per request |")
    print("| --- | ---: | ---: | ---: |")
    for name, _ in rows:
        mid = statistics.median(times[name])
        print(f"| {name} | {mid * 1000:.0f} | {n / mid:,.0f} | {mid * 1000 / n:.2f} |")


if __name__ == "__main__":
    main()
