"""What the coordinator holds per URL of a sync list and per file of an index, at 1M of each.

    python benchmarks/bench_scale_memory.py              # 1,000,000 URLs and index rows
    python benchmarks/bench_scale_memory.py --n 200000
    python benchmarks/bench_scale_memory.py --sync 10000,40000   # also whole sync runs
    python benchmarks/bench_scale_memory.py --sync 10000,40000 --only-sync --report=--json
    python benchmarks/bench_scale_memory.py ... --src /tmp/old/src   # another checkout's code
    python benchmarks/bench_scale_memory.py --update 100000,300000 --only-sync  # index updates
    python benchmarks/bench_scale_memory.py --touched 100000,300000 --only-sync  # all touched
    python benchmarks/bench_scale_memory.py --rewritten 10000,30000 --only-sync  # all rewritten

Each measurement runs in a fresh Python process and reports the growth of its peak RSS
(``VmHWM``) over the same process with only the imports done:

1. ``sync``'s URL list, as ``run_sync`` reads it: a synthetic list of N distinct ``https://``
   URLs (62 bytes a line) read by :func:`samepix.sync.read_url_file` and parsed a window at a
   time (:func:`samepix.url_stream.url_windows`, :func:`samepix.sync.parse_window`, repeats
   recognised through :class:`samepix.url_stream.SeenUrls`), each window dropped once parsed.
   No request is made. (What a run keeps besides: one ``SyncItem`` per decided URL, for its
   summary.)
2. The same list parsed whole by :func:`samepix.sync.parse_url_list` (how ``run_sync`` read it
   before it streamed), for comparison.
With ``--sync N1,N2,...``, also whole ``samepix sync`` runs (the CLI, text report) of N distinct
URLs on a local server that answers every one with the same small PNG (the first is
downloaded, the others are ``skipped-bytes``: every URL still costs a request, a decision and
a record): the peak RSS of the ``samepix`` process, per N. Flat across N means the run holds
nothing per URL. ``--report=--json`` (or ``--csv``, ``--verbose``, ``--html``) adds that report
to each run (written to /dev/null, or a file in the work folder for ``--html``).

With ``--update N1,N2,...``: whole ``update_index`` runs over a real folder of N tiny files
whose index rows match them (nothing to hash or decode): the peak RSS growth of the walk and
the comparison with the index. With ``--touched N1,...``: the same, but every file's mtime is
newer than its row's (same bytes): each file is hashed and recognised as itself, as after a
restore from a backup. With ``--rewritten N1,...``: every file has new bytes (distinct tiny
PNGs): each is hashed, then described by the shards.

3. The index's own tables during an update: the ``known`` map of (path → size, mtime, inode)
   that :func:`samepix.index.update_index` loads from an index of N rows (synthetic rows in a
   real SQLite file).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import ROOT, machine, table

# The peak RSS so far, in KiB (each script below is run with this defined first).
_HWM = """
def hwm():
    for line in open('/proc/self/status'):
        if line.startswith('VmHWM:'):
            return int(line.split()[1])
"""

_URLS = """
import resource, sys
from samepix.sync import parse_url_list, read_url_file
base = hwm()
lines = read_url_file(sys.argv[1])
parsed = parse_url_list(lines)
del lines
assert len(parsed.urls) == int(sys.argv[2]), len(parsed.urls)
print((hwm() - base) * 1024)
"""

_WINDOWS = """
import sys
from samepix.sync import parse_window, read_url_file
from samepix.url_stream import SeenUrls, url_windows
base = hwm()
seen = SeenUrls()
count = 0
for chunk in url_windows(read_url_file(sys.argv[1])):
    count += len(parse_window(chunk, seen).urls)
assert count == int(sys.argv[2]), count
print((hwm() - base) * 1024)
"""

_ROWS = """
import sqlite3, sys
from samepix.index import Index
index = Index(sys.argv[1])
base = hwm()
rows = index._query("SELECT path, size, mtime_ns, inode FROM files")
known = {p: (s, m, i) for p, s, m, i in rows}
del rows
assert len(known) == int(sys.argv[2])
print((hwm() - base) * 1024)
"""


SRC = ROOT / "src"  # the samepix measured (--src)


_UPDATE = """
import sys
from samepix.index import Index, update_index
index = Index(sys.argv[1])
base = hwm()
summary = update_index(index, workers=1)
assert summary.unchanged == summary.total == int(sys.argv[2]), summary
assert summary.decoded == 0
print((hwm() - base) * 1024)
"""


# Every file rewritten with bytes the index does not know: each one is hashed, then described.
_REWRITTEN = """
import sys
from samepix.index import Index, update_index
index = Index(sys.argv[1])
base = hwm()
summary = update_index(index, workers=1)
assert summary.updated == summary.decoded == summary.total == int(sys.argv[2]), summary
print((hwm() - base) * 1024)
"""


def run(script: str, *args: str) -> int:
    env_path = str(SRC)
    proc = subprocess.run(
        [sys.executable, "-c", _HWM + script, *args],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": env_path, "PATH": "/usr/bin:/bin"},
        check=True,
    )
    return int(proc.stdout.strip())


_SYNC = """
import resource, subprocess, sys
subprocess.run(sys.argv[1:], check=True, stdout=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024)
"""


def sync_peaks(counts: list[int], work: Path, report: str = "") -> list[list[str]]:
    import functools
    import http.server
    import io
    import threading

    import numpy as np
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (32, 32, 3), np.uint8)).save(
        buffer, "PNG"
    )
    body = buffer.getvalue()

    class Same(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Same))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows = []
    try:
        for n in counts:
            urls = work / f"sync-{n}.txt"
            urls.write_text("".join(f"{base}/set/{i // 1000:05}/p-{i:09}.png\n" for i in range(n)))
            folder = work / f"sync-{n}"
            folder.mkdir()
            command = [sys.executable, "-m", "samepix", "sync", str(urls), str(folder)]
            if report == "--html":
                command += ["--html", str(work / f"sync-{n}.html")]
            elif report:
                command.append(report)
            peak = run(_SYNC, *command)
            what = f"{report} report" if report else "text report"
            rows.append([f"samepix sync, {n:,} URLs ({what})", f"{peak / 2**20:,.0f}"])
    finally:
        server.shutdown()
    return rows


def fake_index(root: Path, n: int) -> None:
    from samepix.index import Index

    with Index(root) as index:
        conn = index.conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO files (path, size, mtime_ns, inode, sha256, format, width, height, "
            "mode, lossless, jpeg_quality, ahash, dhash, phash, whash, thumb) "
            "VALUES (?, 1000, 1, ?, randomblob(32), 'JPEG', 640, 480, 'RGB', 0, 90, "
            "0, 0, 0, 0, zeroblob(256))",
            ((f"photos/{i // 1000:04}/IMG_{i:08}.jpg", i) for i in range(n)),
        )
        conn.execute("COMMIT")


def real_folder(root: Path, n: int, *, touched: bool = False, rewritten: bool = False) -> None:
    """N tiny files (1,000 a folder) and an index whose rows match them: an update that finds
    nothing changed still walks every file and compares it with its row. ``touched``: every
    row's mtime is older than its file's and its SHA-256 is the file's (each file is hashed and
    recognised as itself). ``rewritten``: every file is a distinct tiny PNG and its row is stale
    (an older mtime, other bytes): each file is hashed, then described."""
    import hashlib
    import os

    from samepix.index import Index

    rows = []
    digest = hashlib.sha256(b"x").digest()
    for i in range(n):
        rel = f"photos/{i // 1000:04}/IMG_{i:08}.jpg"
        path = root / rel
        if i % 1000 == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(_tiny_png(i) if rewritten else b"x")
        st = os.stat(path)
        mtime = st.st_mtime_ns - 1_000_000_000 if touched or rewritten else st.st_mtime_ns
        sha = digest if touched else os.urandom(32)
        rows.append((rel, st.st_size, mtime, st.st_ino, sha))
    with Index(root) as index:
        conn = index.conn
        conn.execute("BEGIN")
        conn.executemany(
            "INSERT INTO files (path, size, mtime_ns, inode, sha256, format, width, height, "
            "mode, lossless, jpeg_quality, ahash, dhash, phash, whash, thumb) "
            "VALUES (?, ?, ?, ?, ?, 'JPEG', 640, 480, 'RGB', 0, 90, "
            "0, 0, 0, 0, zeroblob(256))",
            rows,
        )
        conn.execute("COMMIT")


def _tiny_png(i: int) -> bytes:
    """An 8×8 grey PNG whose pixels spell ``i`` (so every file's bytes differ)."""
    import io

    from PIL import Image

    pixels = bytes((i >> (8 * (k % 4))) & 0xFF for k in range(64))
    out = io.BytesIO()
    Image.frombytes("L", (8, 8), pixels).save(out, "PNG")
    return out.getvalue()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sync", default="", help="URL counts of whole sync runs: 10000,40000")
    parser.add_argument("--only-sync", action="store_true", help="skip the 1M measurements")
    parser.add_argument(
        "--report", default="", choices=["", "--json", "--csv", "--verbose", "--html"],
        help="the report of the --sync runs (default: the text report)",
    )  # fmt: skip
    parser.add_argument("--src", type=Path, help="measure the samepix in this src/ folder")
    parser.add_argument(
        "--update", default="",
        help="file counts of index updates of a real folder (nothing changed): 100000,300000",
    )  # fmt: skip
    parser.add_argument(
        "--touched", default="",
        help="file counts of index updates where every file was touched: 100000,300000",
    )  # fmt: skip
    parser.add_argument(
        "--rewritten", default="",
        help="file counts of index updates where every file has new bytes: 10000,30000",
    )  # fmt: skip
    args = parser.parse_args()
    global SRC
    SRC = (args.src or SRC).resolve()
    sys.path.insert(0, str(SRC))
    work = Path(tempfile.mkdtemp(prefix="samepix-scale-"))
    if args.sync:
        rows = sync_peaks([int(n) for n in args.sync.split(",")], work, args.report)
        print(machine())
        print()
        print(table(["run", "peak RSS MiB"], rows))
        if args.only_sync and not args.update:
            return 0
    if args.update or args.touched or args.rewritten:
        rows = []
        runs = [(int(n), "same") for n in args.update.split(",") if n]
        runs += [(int(n), "touched") for n in args.touched.split(",") if n]
        runs += [(int(n), "rewritten") for n in args.rewritten.split(",") if n]
        for n, kind in runs:
            folder = work / f"update-{n}-{kind}"
            folder.mkdir()
            real_folder(folder, n, touched=kind == "touched", rewritten=kind == "rewritten")
            # touched: each hashed, none decoded; rewritten: each hashed and described
            grown = run(_REWRITTEN if kind == "rewritten" else _UPDATE, str(folder), str(n))
            what = {
                "same": "nothing changed",
                "touched": "every file touched (hashed)",
                "rewritten": "every file rewritten (hashed, described)",
            }[kind]
            rows.append(
                [f"index update, {n:,} files, {what}", f"{n:,}",
                 f"{grown / 2**20:,.0f}", f"{grown / n:,.0f}"]
            )  # fmt: skip
        print(machine())
        print()
        head = ["held by the coordinator", "N", "peak RSS growth MiB", "bytes per file"]
        print(table(head, rows))
        if args.only_sync:
            return 0
    urls = work / "urls.txt"
    with urls.open("w") as out:
        for i in range(args.n):
            out.write(f"https://images.example.com/set/{i // 1000:05}/photo-{i:09}.jpg\n")
    window_bytes = run(_WINDOWS, str(urls), str(args.n))
    url_bytes = run(_URLS, str(urls), str(args.n))
    (work / "lib").mkdir()
    fake_index(work / "lib", args.n)
    row_bytes = run(_ROWS, str(work / "lib"), str(args.n))
    print(machine())
    print()
    print(
        table(
            ["held by the coordinator", "N", "peak RSS growth MiB", "bytes per item"],
            [
                [
                    "sync: URL list read and parsed a window at a time",
                    f"{args.n:,}",
                    f"{window_bytes / 2**20:,.0f}",
                    f"{window_bytes / args.n:,.1f}",
                ],
                [
                    "sync: URL list read and parsed whole (before)",
                    f"{args.n:,}",
                    f"{url_bytes / 2**20:,.0f}",
                    f"{url_bytes / args.n:,.0f}",
                ],
                [
                    "index update: a map of every row's stat (as before)",
                    f"{args.n:,}",
                    f"{row_bytes / 2**20:,.0f}",
                    f"{row_bytes / args.n:,.0f}",
                ],
            ],
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
