"""``sync`` of 1,000 URLs from a local server into a folder that already holds half of them.

    python benchmarks/bench_sync.py                  # 1,000 URLs, 256×192 pictures
    python benchmarks/bench_sync.py --urls 200 --side 512

The script makes N distinct photo-like pictures (``samepix.demo.make_picture``), serves each as
a JPEG (quality 90) from a threaded HTTP/1.1 server on 127.0.0.1 that sends an ETag and answers
``If-None-Match`` with ``304``, and fills the folder with half of them: a quarter of the URLs as
the very same bytes, a quarter re-encoded (JPEG quality 75). The folder is indexed first
(timed apart). Then:

1. ``Library.sync`` of the N URLs (first run): every URL downloaded; half skipped (same bytes or
   same picture, each confirmed), half saved, fsynced and indexed;
2. the same sync again: every URL unchanged, answered ``304``, no body sent;
3. the loop a user would write instead, for scale: ``httpx.Client().get`` each URL and write
   every body to a file (no skipping at all: it leaves a duplicate of each picture the folder
   already had).

Prints a markdown table of what it measured.
"""

from __future__ import annotations

import argparse
import hashlib
import http.server
import io
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

LAST_MODIFIED = "Mon, 02 Nov 2026 10:00:00 GMT"  # every body's (wget -N compares it)


def encode_jpeg(pixels: object, quality: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)  # type: ignore[arg-type]
    return out.getvalue()


@contextmanager
def serve(bodies: dict[str, bytes], latency: float = 0.0) -> Iterator[tuple[str, dict[str, Any]]]:
    """Serve ``bodies`` (path -> bytes) with ETags from a child process (so the server does not
    compete with the client for this process's GIL); yields the base URL and shared counters.
    ``latency`` seconds are waited before each answer, as a network round trip would."""
    import multiprocessing

    etags = {path: f'"{hashlib.sha256(body).hexdigest()[:16]}"' for path, body in bodies.items()}
    ctx = multiprocessing.get_context("fork")
    counts = {
        "requests": ctx.Value("q", 0),
        "not_modified": ctx.Value("q", 0),
        "body_bytes": ctx.Value("q", 0),
    }

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out as two writes: with Nagle's algorithm the body waits for the
        # client's delayed ACK (40 ms), and the server, not the client, would be measured.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if latency:
                time.sleep(latency)
            body = bodies.get(self.path)
            if body is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            etag = etags[self.path]
            # ETag for samepix; Last-Modified for wget -N (If-Modified-Since).
            fresh = self.headers.get("If-None-Match") == etag or (
                "If-None-Match" not in self.headers
                and self.headers.get("If-Modified-Since") == LAST_MODIFIED
            )
            for key, add in (("requests", 1), ("not_modified", int(fresh))):
                with counts[key].get_lock():
                    counts[key].value += add
            if not fresh:
                with counts["body_bytes"].get_lock():
                    counts["body_bytes"].value += len(body)
            self.send_response(304 if fresh else 200)
            self.send_header("ETag", etag)
            self.send_header("Last-Modified", LAST_MODIFIED)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", "0" if fresh else str(len(body)))
            self.end_headers()
            if not fresh:
                self.wfile.write(body)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128

        def handle_error(self, request: Any, client_address: Any) -> None:
            pass  # a client closing its kept-alive connections at the end is no error

    server = Server(("127.0.0.1", 0), Handler)
    child = ctx.Process(target=server.serve_forever, args=(0.05,), daemon=True)
    child.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", counts
    finally:
        child.terminate()
        child.join()
        server.server_close()


def sent(counts: dict[str, Any]) -> dict[str, int]:
    return {key: int(value.value) for key, value in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--urls", type=int, default=1000)
    parser.add_argument("--side", type=int, default=256, help="picture width (height = 3/4)")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument(
        "--latency", type=float, default=0.0, metavar="MS", help="server delay per request"
    )
    parser.add_argument("--reps", type=int, default=5, help="unchanged re-checks (median)")
    parser.add_argument("--profile", action="store_true", help="cProfile one re-check (stderr)")
    args = parser.parse_args()

    import httpx
    import numpy as np
    import PIL

    from samepix import Library
    from samepix.demo import make_picture

    n = args.urls
    size = (args.side, args.side * 3 // 4)
    t0 = time.perf_counter()
    served: dict[str, bytes] = {}
    present: dict[str, bytes] = {}
    for i in range(n):
        pixels = make_picture(10_000 + i, size)
        body = encode_jpeg(pixels, 90)
        served[f"/img/{i:05d}.jpg"] = body
        if i % 4 == 0:
            present[f"have-{i:05d}.jpg"] = body  # the very same bytes
        elif i % 4 == 1:
            present[f"have-{i:05d}-q75.jpg"] = encode_jpeg(pixels, 75)  # re-encoded
    made_s = time.perf_counter() - t0
    mb = sum(len(b) for b in served.values()) / 1e6

    rows: list[tuple[str, ...]] = []
    with tempfile.TemporaryDirectory() as tmp, serve(served, args.latency / 1000) as (base, counts):
        folder = Path(tmp) / "lib"
        folder.mkdir()
        for name, body in present.items():
            (folder / name).write_bytes(body)
        urls = [f"{base}{path}" for path in served]

        with Library(folder) as lib:
            t = time.perf_counter()
            indexed = lib.update()
            index_s = time.perf_counter() - t

        cpu_s: list[float] = []  # CPU seconds of each sync (wall time moves with the load)

        def one_sync(label: str, profile: bool = False) -> tuple[str, ...]:
            before = sent(counts)
            with Library(folder) as lib:
                prof = None
                if profile:
                    import cProfile

                    prof = cProfile.Profile()
                    prof.enable()
                t, cpu = time.perf_counter(), time.process_time()
                summary = lib.sync(urls, concurrency=args.concurrency, per_host=args.concurrency)
                elapsed = time.perf_counter() - t
                cpu_s.append(time.process_time() - cpu)  # every thread of this process
                if prof is not None:
                    import pstats

                    prof.disable()
                    pstats.Stats(prof, stream=sys.stderr).sort_stats("cumulative").print_stats(35)
            after = sent(counts)
            body_bytes = after["body_bytes"] - before["body_bytes"]
            not_modified = after["not_modified"] - before["not_modified"]
            assert summary.failed == 0, summary.failures[:3]
            what = (
                f"downloaded {summary.downloaded}, same bytes {summary.skipped_bytes}, "
                f"same picture {summary.skipped_same_picture}, unchanged "
                f"{summary.skipped_unchanged}"
            )
            return (
                label,
                f"{n:,}",
                f"{elapsed:.2f}",
                f"{n / elapsed:,.0f}",
                f"{body_bytes / 1e6:.1f} MB",
                f"{not_modified:,}",
                what,
            )

        rows.append(one_sync("samepix sync, run 1"))
        # The unchanged re-check, interleaved with wget -N's when wget is installed.
        wget = shutil.which("wget")
        mirror = Path(tmp) / "wget"
        mirror.mkdir()
        url_file = Path(tmp) / "urls.txt"
        url_file.write_text("".join(u + "\n" for u in urls))
        wget_cmd = [wget or "wget", "-N", "-q", "-i", str(url_file), "-P", str(mirror)]
        if wget:
            subprocess.run(wget_cmd, check=True)  # its first run: download everything
        again: list[tuple[str, ...]] = []
        wget_s: list[float] = []
        wget_cpu: list[float] = []
        wget_304 = 0
        del cpu_s[:]  # the first sync's
        for rep in range(args.reps):
            again.append(one_sync("samepix sync, run 2 (all unchanged)", args.profile and rep == 0))
            if wget:
                before = sent(counts)
                usage = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = time.perf_counter()
                subprocess.run(wget_cmd, check=True)
                wget_s.append(time.perf_counter() - t)
                used = resource.getrusage(resource.RUSAGE_CHILDREN)
                wget_cpu.append(used.ru_utime - usage.ru_utime + used.ru_stime - usage.ru_stime)
                wget_304 = sent(counts)["not_modified"] - before["not_modified"]
        recheck_cpu = statistics.median(cpu_s)
        again.sort(key=lambda row: float(row[2]))
        second = again[len(again) // 2]
        rows.append((*second[:2], f"{second[2]} (median of {len(again)})", *second[3:]))
        if wget:
            mid = sorted(wget_s)[len(wget_s) // 2]
            rows.append(
                (
                    "wget -N -i urls.txt, run 2 (all unchanged)",
                    f"{n:,}",
                    f"{mid:.2f} (median of {len(wget_s)})",
                    f"{n / mid:,.0f}",
                    "0.0 MB",
                    f"{wget_304:,}",
                    "If-Modified-Since on each, one connection, nothing saved",
                )
            )
        else:
            rows.append(("wget -N", "skipped: wget is not installed", "", "", "", "", ""))
        first_rate = n / float(rows[0][2])

        naive = Path(tmp) / "naive"
        naive.mkdir()
        before = sent(counts)
        t = time.perf_counter()
        with httpx.Client() as client:
            for url in urls:
                response = client.get(url)
                response.raise_for_status()
                target = naive / url.rsplit("/", 1)[-1]
                with open(target, "wb") as handle:  # what such a loop does: no fsync, no temp
                    handle.write(response.content)
        elapsed = time.perf_counter() - t
        rows.append(
            (
                "httpx.get + write every body (sequential loop)",
                f"{n:,}",
                f"{elapsed:.2f}",
                f"{n / elapsed:,.0f}",
                f"{(sent(counts)['body_bytes'] - before['body_bytes']) / 1e6:.1f} MB",
                "0",
                f"saved {n}, {len(present)} of them duplicates of the folder",
            )
        )

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, "
        f"httpx {httpx.__version__}, {os.cpu_count()} CPUs, {platform.machine()}"
    )
    print(
        f"\n{n:,} URLs, {size[0]}×{size[1]} JPEG q90 ({mb:.1f} MB served, made in {made_s:.1f} s); "
        f"folder of {len(present)} (¼ same bytes, ¼ JPEG q75 re-encodes), indexed in "
        f"{index_s:.2f} s ({indexed.total} images); concurrency {args.concurrency}; server latency "
        f"{args.latency:g} ms per request, server in its own process\n"
    )
    print("| run | URLs | seconds | URLs/s | body bytes sent | 304s | decisions |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    naive_s = float(rows[-1][2])
    second_s = float(rows[1][2].split()[0])
    print(
        f"\nfirst sync {first_rate:,.0f} URLs/s vs {n / naive_s:,.0f} for the download-everything "
        f"loop ({first_rate * naive_s / n:.2f}×); second sync {n / second_s:,.0f} URLs/s "
        f"({naive_s / second_s:.1f}× the loop), nothing downloaded"
        + (
            f"; wget -N {n / float(rows[2][2].split()[0]):,.0f} URLs/s "
            f"(samepix/wget time {second_s / float(rows[2][2].split()[0]):.2f})"
            if rows[2][1] == f"{n:,}"
            else ""
        )
        + f"; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"CPU time of the second sync (user + system, every thread; median): {recheck_cpu:.2f} s, "
        f"{n / recheck_cpu:,.0f} URLs per CPU second"
        + (f"; wget -N's process {statistics.median(wget_cpu):.2f} s" if wget_cpu else "")
    )


if __name__ == "__main__":
    main()
