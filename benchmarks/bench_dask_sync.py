"""``sync`` and ``dupes`` with their per-item work on an executor, against the plain run.

    python benchmarks/bench_dask_sync.py                # needs samepix[dask]
    python benchmarks/bench_dask_sync.py --rounds 3
    python benchmarks/bench_dask_sync.py --only sync --folder benchmarks/out/dupes-2000 \\
        --match 'p*' --urls 400                         # a sync the workers' work dominates

Data: by default the 48 photographs of ``shared/data`` (kodak, photos) as JPEG quality 90 —
distinct pictures; with ``--folder DIR`` the pictures of DIR (``--match GLOB``, the first
``--urls N`` in name order; ``bench_dupes.py`` makes ``benchmarks/out/dupes-2000``, whose
``p*`` files are 1,100 distinct 0.7 MP pictures, 80 % JPEG, 20 % PNG). They are served over
HTTP on 127.0.0.1 by a **server process of its own** (so it takes no CPU from this process,
where the Dask schedulers run, and its CPU time is measured apart). For ``dupes``, the 24 Kodak
photographs at 4 JPEG qualities (24 groups of 4 copies). Every run is a fresh process (what a
user runs):

- sync into an empty folder: plain (downloads on this process's loop, decoding here); on a
  local executor of 2 processes (``Library(executor=LocalExecutor(2))``); on a running Dask
  cluster of 2 and of 1 worker (``--dask tcp://``; each started before its run, untimed, and
  closed after it, so that no idle cluster takes CPU from another run); with
  ``--local-cluster`` also ``--dask local:2`` (a cluster started by the run);
- dupes of an indexed folder (only the pair confirmation runs): plain; local executor of 2
  processes; Dask 2 and 1 workers.

Rounds are interleaved (every configuration once per round) and the median is kept; the load
average is printed with the numbers, as this machine is shared. For each sync the CPU seconds
are split by process, per URL: the coordinator (the ``samepix`` process, with the local
executor's workers, which are its children), the Dask workers, this process (the schedulers
and nannies of the running clusters) and the HTTP server — what bounds the scaling on one
machine.
"""

from __future__ import annotations

import argparse
import io
import os
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

from _common import local_cluster, machine, shared_data, table

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "src")}

_API = """
import sys
from samepix import Library
from samepix.executor import LocalExecutor
verb, source, folder = sys.argv[1:4]
with Library(folder, executor=LocalExecutor(2)) as lib:
    if verb == "sync":
        summary = lib.sync(open(source).read().split())
        assert summary.ok, summary.failures
    else:
        lib.duplicates()
"""

# The HTTP server, in a process of its own: prints its base URL, serves until stdin closes.
_SERVER = """
import sys
from pathlib import Path
from samepix.demo import serve_folder
with serve_folder(Path(sys.argv[1])) as base:
    print(base, flush=True)
    sys.stdin.read()
"""

_PICTURES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".tif", ".tiff", ".bmp")


def jpegs(sources: list[Path], qualities: tuple[int, ...]) -> list[tuple[str, bytes]]:
    from PIL import Image

    out = []
    for src in sources:
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        for q in qualities:
            buffer = io.BytesIO()
            rgb.save(buffer, "JPEG", quality=q)
            out.append((f"{src.parent.name}-{src.stem}-q{q}.jpg", buffer.getvalue()))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds of these processes so far (gone ones count 0)."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            times = psutil.Process(pid).cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextmanager
def server_process(folder: Path) -> Iterator[tuple[str, int]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(folder)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        base = proc.stdout.readline().strip()
        yield base, proc.pid
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(10)


def new_children(before: set[int]) -> list[int]:
    """Processes below this one started since ``before`` was taken (a cluster's workers)."""
    import psutil

    return [p.pid for p in psutil.Process().children(recursive=True) if p.pid not in before]


def child_pids() -> set[int]:
    import psutil

    return {p.pid for p in psutil.Process().children(recursive=True)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--folder", type=Path, help="serve the pictures of this folder")
    parser.add_argument("--match", default="*", help="with --folder: the files to serve (glob)")
    parser.add_argument("--urls", type=int, help="with --folder: the first N files by name")
    parser.add_argument("--only", choices=("sync", "dupes"), help="run one of the two")
    parser.add_argument(
        "--local-cluster", action="store_true", help="also sync with --dask local:2"
    )
    args = parser.parse_args()
    if args.data is None or not (args.data / "kodak").is_dir():
        print("skipped: shared/data/kodak not found (use --data)")
        return 0
    try:
        import distributed  # noqa: F401
        import psutil  # noqa: F401  (a dependency of distributed)
    except ImportError:
        print("skipped: distributed is not installed (pip install -e '.[dask]')")
        return 0
    import logging

    logging.getLogger("distributed").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="samepix-bench-dask-sync-"))
    site = work / "site"
    site.mkdir()
    if args.folder is not None:
        chosen = sorted(
            p for p in args.folder.glob(args.match) if p.is_file() and p.suffix.lower() in _PICTURES
        )[: args.urls]
        if not chosen:
            raise SystemExit(f"{args.folder}: no pictures match {args.match!r}")
        for p in chosen:
            (site / p.name).symlink_to(p.resolve())
        what = f"{len(chosen)} pictures of {args.folder} ({args.match})"
    else:
        photos = sorted((args.data / "kodak").glob("*.png")) + sorted(
            (args.data / "photos").glob("*.png")
        )
        for name, data in jpegs(photos, (90,)):
            (site / name).write_bytes(data)
        what = f"{len(photos)} distinct JPEGs"
    dupes = work / "dupes"
    samepix = [sys.executable, "-m", "samepix"]
    if args.only != "sync":
        dupes.mkdir()
        for name, data in jpegs(sorted((args.data / "kodak").glob("*.png")), (90, 75, 60, 95)):
            (dupes / name).write_bytes(data)
        subprocess.run([*samepix, "index", str(dupes)], check=True, env=ENV, capture_output=True)

    times: dict[str, list[float]] = {}
    cpu: dict[str, list[tuple[float, float, float, float]]] = {}
    loads = [os.getloadavg()[0]]
    count = len(list(site.iterdir()))
    with server_process(site) as (base, server_pid):
        urls = work / "urls.txt"
        urls.write_text("".join(f"{base}/{p.name}\n" for p in sorted(site.iterdir())))

        def run(label: str, command: list[str], workers: list[int]) -> None:
            start_children, start_own = children_cpu(), own_cpu()
            start_workers, start_server = cpu_seconds(workers), cpu_seconds([server_pid])
            start = time.perf_counter()
            proc = subprocess.run(command, capture_output=True, text=True, env=ENV)
            elapsed = time.perf_counter() - start
            if proc.returncode != 0:
                raise SystemExit(f"{' '.join(command)}: {proc.stderr.strip()}")
            times.setdefault(label, []).append(elapsed)
            cpu.setdefault(label, []).append(
                (
                    children_cpu() - start_children,
                    cpu_seconds(workers) - start_workers,
                    own_cpu() - start_own,
                    cpu_seconds([server_pid]) - start_server,
                )
            )

        def sync(label: str, *options: str, api: bool = False, dask: int = 0) -> None:
            target = work / "into"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            if api:
                command = [sys.executable, "-c", _API, "sync", str(urls), str(target)]
            else:
                command = [*samepix, "sync", str(urls), str(target), *options]
            on_cluster(f"sync: {label}", command, dask)

        def dupe(label: str, *options: str, api: bool = False, dask: int = 0) -> None:
            if api:
                command = [sys.executable, "-c", _API, "dupes", "", str(dupes)]
            else:
                command = [*samepix, "dupes", str(dupes), "--json", *options]
            on_cluster(f"dupes: {label}", command, dask)

        def on_cluster(label: str, command: list[str], workers: int) -> None:
            """Run ``command``; with ``workers``, on a running cluster of that many workers
            started for this run alone (its start is not timed): no idle cluster takes CPU
            from a run, and the schedulers' column is this run's scheduler and nannies."""
            if not workers:
                run(label, command, [])
                return
            before = child_pids()
            cluster = local_cluster(workers)
            try:
                pids = new_children(before)
                command = [cluster.scheduler_address if c == "CLUSTER" else c for c in command]
                run(label, command, pids)
            finally:
                cluster.close()

        if args.only != "dupes":
            sync("warm-up", "--dask", "CLUSTER", dask=2)
        times.clear()
        cpu.clear()
        for _ in range(args.rounds):
            if args.only != "dupes":
                sync("plain (decoding in the coordinator)")
                sync("local executor, 2 processes", api=True)
                sync("--dask tcp:// 2 workers", "--dask", "CLUSTER", dask=2)
                sync("--dask tcp:// 1 worker", "--dask", "CLUSTER", dask=1)
                if args.local_cluster:
                    sync("--dask local:2 (started by the run)", "--dask", "local:2")
            if args.only != "sync":
                dupe("plain")
                dupe("local executor, 2 processes", api=True)
                dupe("--dask tcp:// 2 workers", "--dask", "CLUSTER", dask=2)
                dupe("--dask tcp:// 1 worker", "--dask", "CLUSTER", dask=1)
            loads.append(os.getloadavg()[0])

    print(machine())
    parts = []
    if args.only != "dupes":
        parts.append(f"sync: {what} over HTTP on 127.0.0.1 (a server process) into an empty folder")
    if args.only != "sync":
        parts.append("dupes: 96 JPEGs (24 Kodak × 4 qualities), index built")
    print("; ".join(parts) + f"; {args.rounds} rounds, interleaved")
    rows = []
    for label, values in times.items():
        row = [label, f"{statistics.median(values):.2f}", f"{min(values):.2f}"]
        if label.startswith("sync"):
            # CPU ms a URL, median over the rounds, per process.
            shares = [statistics.median(c[i] for c in cpu[label]) * 1e3 / count for i in range(4)]
            row += [f"{s:.1f}" for s in shares]
        else:
            row += [""] * 4
        rows.append(row)
    print()
    header = ["run (fresh process each)", "median s", "best s"]
    header += ["coordinator ms/URL", "Dask workers ms/URL", "schedulers ms/URL", "server ms/URL"]
    print(table(header, rows))
    print(
        "(CPU ms a URL, median: the coordinator counts the local executor's workers, its "
        "children; `local:2` counts its scheduler, not its workers, forked by a fork server; "
        "schedulers: the running cluster's scheduler and nannies, in the benchmark's process, "
        "started for that run alone)"
    )

    def ratio(a: str, b: str) -> float:
        return statistics.median(times[a]) / statistics.median(times[b])

    for verb in ("sync", "dupes"):
        if args.only not in (None, verb):
            continue
        overhead = ratio(f"{verb}: --dask tcp:// 2 workers", f"{verb}: local executor, 2 processes")
        scaling = ratio(f"{verb}: --dask tcp:// 1 worker", f"{verb}: --dask tcp:// 2 workers")
        print(
            f"{verb}: Dask 2 workers vs local executor 2 processes: {overhead:.2f}× the time; "
            f"1 → 2 Dask workers: {scaling:.2f}× faster"
        )
        if verb == "sync" and args.local_cluster:
            started = ratio(
                "sync: --dask local:2 (started by the run)", "sync: local executor, 2 processes"
            )
            print(f"sync: --dask local:2 vs local executor 2 processes: {started:.2f}× the time")
    print(f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
