"""Index builds on a Dask cluster and over S3, against the local executor, side by side.

    python benchmarks/bench_dask.py                  # needs samepix[dask,s3] and moto[server]
    python benchmarks/bench_dask.py --copies 4 --rounds 3
    python benchmarks/bench_dask.py --sync-only       # only section 5 (a minute or two)

Data: the 24 Kodak photographs of ``shared/data`` saved as JPEG (quality 90, 75, 60 and 95:
``--copies`` of them per photograph, distinct bytes), in a temporary folder and in a bucket of
moto's S3 server on 127.0.0.1. Every build starts from an empty index (all files decoded).

1. Overhead: the local executor with 2 processes vs ``--dask local:2`` (a ``LocalCluster`` of 2
   single-threaded worker processes). The cluster is started before the clock for the "warm"
   column; the "with start-up" column is the CLI's whole cost (a cluster started for the run).
2. Scaling: the same build on 1 and on 2 Dask workers (each cluster started before the clock).
3. S3: the build over ``s3://bucket/kodak`` (s3fs → moto over HTTP) vs the local folder, both
   on the local executor with 2 processes.
4. Per-shard costs for the model in docs/scale.md: describing one file (in this process), a
   Dask task's round trip (an empty task), the coordinator's SQLite writes (rows per second),
   the walk of a local folder (entries per second) and an S3 listing (objects per second).
5. S3 sync: ``samepix sync`` of the 24 Kodak photographs (JPEG q90, not upscaled, served by a
   local HTTP server with Last-Modified) into an empty local folder vs into an empty prefix of
   moto's bucket (each object a conditional PUT, then a HEAD for the stat the index keeps; the
   lock taken and released), each a fresh process with a fresh index; then the same sync again
   (every URL ``304``). Plus the cost of one ``put_new`` + stat and of the lock, in this process.

Rounds are interleaved (every configuration once per round) and the median is kept; the load
average is printed with the numbers, as this machine is shared.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _common import local_cluster, machine, shared_data, table, timed_run

QUALITIES = (90, 75, 60, 95)


def make_folder(kodak: Path, target: Path, copies: int, scale: int) -> list[tuple[str, bytes]]:
    from PIL import Image

    files = []
    for src in sorted(kodak.glob("*.png")):
        with Image.open(src) as im:
            rgb = im.convert("RGB")
            if scale > 1:
                rgb = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.LANCZOS)
            for q in QUALITIES[:copies]:
                out = io.BytesIO()
                rgb.save(out, "JPEG", quality=q)
                files.append((f"{src.stem}-q{q}.jpg", out.getvalue()))
    target.mkdir(parents=True, exist_ok=True)
    for name, data in files:
        (target / name).write_bytes(data)
    return files


def cli_build(location: str, db: Path, *options: str, src: Path | None = None) -> float:
    """Seconds for ``samepix index --rebuild`` in a fresh process (what a user runs); ``src``:
    another samepix source tree to run (an earlier version, side by side)."""
    command = [sys.executable, "-m", "samepix", "index", location, "--rebuild", "--db", str(db)]
    env = ENV if src is None else {**ENV, "PYTHONPATH": str(src)}
    return timed_run([*command, *options], env)


ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}


def median(values: list[float]) -> float:
    return statistics.median(values)


def per_shard_costs(folder: Path, url: str, db: Path, dask_address: str) -> list[list[str]]:
    from samepix.executor import DaskExecutor
    from samepix.index import DescribeShard, describe_shard
    from samepix.limits import DEFAULT_LIMITS

    rels = sorted(p.name for p in folder.iterdir() if p.suffix == ".jpg")
    rows = []
    start = time.perf_counter()
    describe_shard(DescribeShard(str(folder), tuple(rels), DEFAULT_LIMITS))
    per_file = (time.perf_counter() - start) / len(rels)
    rows.append(["describe one file (local disk, 1 process)", f"{per_file * 1000:.1f} ms"])
    start = time.perf_counter()
    describe_shard(DescribeShard(url, tuple(rels[:24]), DEFAULT_LIMITS))
    per_s3 = (time.perf_counter() - start) / 24
    rows.append(["describe one file (S3 via moto, 1 process)", f"{per_s3 * 1000:.1f} ms"])

    executor = DaskExecutor(dask_address)
    try:
        n = 400
        list(executor.map_unordered(len, [(i,) for i in range(50)]))  # warm
        start = time.perf_counter()
        list(executor.map_unordered(len, [(i,) for i in range(n)]))
        task = (time.perf_counter() - start) / n
    finally:
        executor.close()
    rows.append(
        ["Dask task round trip (empty task, 2 workers, pipelined)", f"{task * 1000:.2f} ms"]
    )

    rows.append(
        ["SQLite rows written by the coordinator", f"{sqlite_rate(folder, db):,.0f} rows/s"]
    )
    rows.append(["walk of a local folder (10,000 files)", f"{walk_rate():,.0f} files/s"])
    return rows


def sqlite_rate(folder: Path, db: Path) -> float:
    """Rows per second the coordinator writes (500-row transactions, as update_index)."""
    import dataclasses

    from samepix.index import Index

    with Index(folder, db, create=False) as built:
        template = built.entries()[0]
    root = Path(tempfile.mkdtemp(prefix="samepix-sqlite-"))
    n = 50_000
    with Index(root) as index:
        start = time.perf_counter()
        for first in range(0, n, 500):
            with index.transaction() as conn:
                for i in range(first, first + 500):
                    index.put(conn, dataclasses.replace(template, path=f"f{i:07}.jpg"))
        return n / (time.perf_counter() - start)


def walk_rate() -> float:
    from samepix.index import _FolderWalk

    root = Path(tempfile.mkdtemp(prefix="samepix-walk-"))
    for d in range(100):
        sub = root / f"d{d:03}"
        sub.mkdir()
        for i in range(100):
            (sub / f"{i:03}.jpg").write_bytes(b"")
    start = time.perf_counter()
    walk = _FolderWalk(root, set())
    found = sum(1 for _ in walk.files())  # streamed: each file as it is walked
    walk.close()
    elapsed = time.perf_counter() - start
    assert found == 10_000
    return 10_000 / elapsed


def serve(folder: Path) -> tuple[object, str]:
    """A local HTTP server for ``folder`` (Last-Modified and 304s: what a web server does)."""
    import functools
    import http.server
    import threading

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def cli_sync(urls: Path, location: str, db: Path) -> float:
    command = [sys.executable, "-m", "samepix", "sync", str(urls), location, "--db", str(db)]
    return timed_run(command, ENV)


def s3_sync(kodak: Path, work: Path, rounds: int) -> None:
    """Section 5: sync into a local folder vs into a bucket on moto (the server must run)."""
    from samepix.bucket_lock import BucketLock
    from samepix.storage import ObjectPath, put_new

    served = work / "served"
    files = make_folder(kodak, served, 1, 1)
    megabytes = sum(len(d) for _, d in files) / 1e6
    server, base = serve(served)
    urls = work / "urls.txt"
    urls.write_text("".join(f"{base}/{name}\n" for name, _ in files))
    times: dict[str, list[float]] = {}
    loads = [os.getloadavg()[0]]
    try:
        cli_sync(urls, str(work / "warm"), work / "warm.db")  # imports, page cache
        for r in range(rounds):
            runs = [
                ("local folder", str(work / f"sync-{r}")),
                ("s3:// via moto", f"s3://bench/sync-{r}"),
            ]
            for label, location in runs:
                db = work / f"sync-{r}-{label[:5]}.db"
                times.setdefault(f"{label}: first sync (all downloaded)", []).append(
                    cli_sync(urls, location, db)
                )
                times.setdefault(f"{label}: again (all 304)", []).append(
                    cli_sync(urls, location, db)
                )
            loads.append(os.getloadavg()[0])
        n = 40
        start = time.perf_counter()
        for i in range(n):
            target = ObjectPath(f"s3://bench/puts/{i}.jpg")
            assert put_new(target, files[i % len(files)][1])
            target.stat()
        put_ms = (time.perf_counter() - start) / n * 1000
        start = time.perf_counter()
        for _ in range(10):
            with BucketLock(ObjectPath("s3://bench/lock"), ObjectPath("s3://bench/lock/l")):
                pass
        lock_ms = (time.perf_counter() - start) / 10 * 1000
    finally:
        server.shutdown()  # type: ignore[attr-defined]
    print()
    print(
        f"sync: {len(files)} JPEGs ({megabytes:.1f} MB, Kodak q90) from a local HTTP server, "
        f"{rounds} rounds interleaved, each a fresh `samepix sync` with a fresh index"
    )
    rows = []
    for label, values in times.items():
        m = median(values)
        kind = label.split(": ", 1)[1]
        local = median(times[f"local folder: {kind}"])
        rows.append([label, f"{m:.2f}", f"{len(files) / m:.1f}", f"{m / local:.2f}×"])
    print(table(["sync", "median s", "URLs/s", "time vs local folder"], rows))
    print(f"one object written (conditional PUT + HEAD for its stat), moto: {put_ms:.1f} ms")
    print(f"the bucket lock taken and released (PUT, renewal thread, PUT), moto: {lock_ms:.1f} ms")
    print(f"load average during the sync runs: {', '.join(f'{x:.1f}' for x in loads)}")


def folder_scaling(folder: Path, rounds: int, before: Path | None = None) -> int:
    """The index build of an existing folder: local 2 processes vs Dask (a cluster the run
    starts, and a running one of 2 and of 1 workers)."""
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("skipped: distributed is not installed (pip install -e '.[dask]')")
        return 0
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    files = sum(1 for p in folder.iterdir() if p.is_file())
    db = Path(tempfile.mkdtemp(prefix="samepix-bench-dask-")) / "index.db"
    times: dict[str, list[float]] = {}
    one, two = local_cluster(1), local_cluster(2)
    loads = [os.getloadavg()[0]]
    try:
        runs = [
            ("local 2 processes", ("--workers", "2")),
            ("--dask local:2 (cluster started by the run)", ("--dask", "local:2")),
            ("--dask tcp:// 2 workers (running cluster)", ("--dask", two.scheduler_address)),
            ("--dask tcp:// 1 worker (running cluster)", ("--dask", one.scheduler_address)),
        ]
        if before is not None:
            runs.append((f"--dask local:2, the samepix of {before}", ("--dask", "local:2")))
        cli_build(str(folder), db, "--workers", "2")  # page cache, imports
        for _ in range(rounds):
            for label, options in runs:
                src = before if label.endswith(f"of {before}") else None
                times.setdefault(label, []).append(cli_build(str(folder), db, *options, src=src))
            loads.append(os.getloadavg()[0])
    finally:
        one.close()
        two.close()
    print(machine())
    print(f"index build of {folder} ({files} files), {rounds} rounds, interleaved, each a fresh "
          "`samepix index --rebuild`")  # fmt: skip
    local = median(times["local 2 processes"])
    rows = [
        [label, f"{median(v):.2f}", f"{files / median(v):.1f}", f"{median(v) / local:.2f}×"]
        for label, v in times.items()
    ]
    print(table(["index build", "median s", "files/s", "time vs local 2 processes"], rows))
    one_worker = median(times["--dask tcp:// 1 worker (running cluster)"])
    two_workers = median(times["--dask tcp:// 2 workers (running cluster)"])
    print(f"Dask 1 → 2 workers speed-up: {one_worker / two_workers:.2f}×")
    print(f"load average during the runs: {', '.join(f'{x:.1f}' for x in loads)}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--copies", type=int, default=4, help="JPEG qualities per photograph")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scale", type=int, default=3, help="upscale the photographs N×")
    parser.add_argument("--sync-only", action="store_true", help="only the S3 sync section (5)")
    parser.add_argument(
        "--folder",
        type=Path,
        help="only the index-build section, on this folder (large enough for the shards' work "
        "to dominate, e.g. benchmarks/out/dupes-2000 made by bench_dupes.py)",
    )
    parser.add_argument(
        "--before",
        type=Path,
        help="with --folder: also `--dask local:2` run with the samepix of this source folder "
        "(e.g. `git archive <commit> src | tar -x -C /tmp/before`, then /tmp/before/src)",
    )
    args = parser.parse_args()
    if args.folder is not None:
        return folder_scaling(args.folder, args.rounds, args.before)
    if args.data is None or not (args.data / "kodak").is_dir():
        print("skipped: shared/data/kodak not found (use --data)")
        return 0
    try:
        import distributed  # noqa: F401
        import s3fs
        from moto.server import ThreadedMotoServer
    except ImportError as exc:
        print(f"skipped: {exc.name} is not installed (pip install -e '.[test,dask,s3]')")
        return 0

    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    work = Path(tempfile.mkdtemp(prefix="samepix-bench-dask-"))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": f"http://{host}:{port}",
        }
    )
    fs = s3fs.S3FileSystem()
    fs.mkdir("bench")
    ENV.update({k: os.environ[k] for k in os.environ if k.startswith("AWS_")})
    if args.sync_only:
        print(machine())
        try:
            s3_sync(args.data / "kodak", work, args.rounds)
        finally:
            server.stop()
        return 0
    folder = work / "kodak"
    files = make_folder(args.data / "kodak", folder, args.copies, args.scale)
    megabytes = sum(len(d) for _, d in files) / 1e6
    for name, data in files:
        fs.pipe(f"bench/kodak/{name}", data)
    url = "s3://bench/kodak"
    print(machine())
    print(
        f"data: {len(files)} JPEGs ({megabytes:.1f} MB, Kodak ×{args.scale}), "
        f"{args.rounds} rounds, interleaved; each build a fresh `samepix index --rebuild`"
    )
    times: dict[str, list[float]] = {}
    local_db, s3_db = work / "local.db", work / "s3.db"

    def timed(label: str, run: Callable[[], float]) -> None:
        times.setdefault(label, []).append(run())

    one, two = local_cluster(1), local_cluster(2)
    loads = [os.getloadavg()[0]]
    try:
        a1, a2 = one.scheduler_address, two.scheduler_address
        cli_build(str(folder), local_db, "--workers", "2")  # page cache, imports
        cli_build(str(folder), local_db, "--dask", a2)
        for _ in range(args.rounds):
            timed("local 2 processes", lambda: cli_build(str(folder), local_db, "--workers", "2"))
            timed("--dask local:2 (cluster started by the run)",
                  lambda: cli_build(str(folder), local_db, "--dask", "local:2"))  # fmt: skip
            timed("--dask tcp:// 2 workers (running cluster)",
                  lambda: cli_build(str(folder), local_db, "--dask", a2))  # fmt: skip
            timed("--dask tcp:// 1 worker (running cluster)",
                  lambda: cli_build(str(folder), local_db, "--dask", a1))  # fmt: skip
            timed("s3:// via moto, local 2 processes",
                  lambda: cli_build(url, s3_db, "--workers", "2"))  # fmt: skip
            loads.append(os.getloadavg()[0])
        shard_rows = per_shard_costs(folder, url, local_db, a2)
    finally:
        one.close()
        two.close()

    local = median(times["local 2 processes"])
    rows = []
    for label, values in times.items():
        m = median(values)
        rows.append([label, f"{m:.2f}", f"{len(files) / m:.1f}", f"{m / local:.2f}×"])
    print()
    print(table(["index build", "median s", "files/s", "time vs local 2 processes"], rows))
    scaling = median(times["--dask tcp:// 1 worker (running cluster)"]) / median(
        times["--dask tcp:// 2 workers (running cluster)"]
    )
    print(f"\nDask 1 → 2 workers speed-up: {scaling:.2f}×")
    print(f"load average during the runs: {', '.join(f'{x:.1f}' for x in loads)}")
    print()
    print(table(["per-shard cost (model inputs)", "measured"], shard_rows))
    try:
        s3_sync(args.data / "kodak", work, args.rounds)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
