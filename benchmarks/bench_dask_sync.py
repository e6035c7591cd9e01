"""``sync`` and ``dupes`` with their per-item work on an executor, against the plain run.

    python benchmarks/bench_dask_sync.py                # needs samepix[dask]
    python benchmarks/bench_dask_sync.py --rounds 3

Data: the 48 photographs of ``shared/data`` (kodak, photos) as JPEG quality 90 — distinct
pictures — served by a local HTTP server on 127.0.0.1; for ``dupes``, the 24 Kodak photographs
at 4 JPEG qualities (24 groups of 4 copies). Every run is a fresh process (what a user runs):

- sync into an empty folder: plain (downloads on this process's loop, decoding here); on a
  local executor of 2 processes (``Library(executor=LocalExecutor(2))``); on a running Dask
  cluster of 2 and of 1 worker (``--dask tcp://``);
- dupes of an indexed folder (only the pair confirmation runs): plain; local executor of 2
  processes; Dask 2 and 1 workers.

Rounds are interleaved (every configuration once per round) and the median is kept; the load
average is printed with the numbers, as this machine is shared.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import local_cluster, machine, shared_data, table, timed_run

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

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


def timed(command: list[str]) -> float:
    return timed_run(command, ENV)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=shared_data())
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.data is None or not (args.data / "kodak").is_dir():
        print("skipped: shared/data/kodak not found (use --data)")
        return 0
    try:
        import distributed  # noqa: F401
    except ImportError:
        print("skipped: distributed is not installed (pip install -e '.[dask]')")
        return 0
    import logging

    from samepix.demo import serve_folder

    logging.getLogger("distributed").setLevel(logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="samepix-bench-dask-sync-"))
    site = work / "site"
    site.mkdir()
    photos = sorted((args.data / "kodak").glob("*.png")) + sorted(
        (args.data / "photos").glob("*.png")
    )
    for name, data in jpegs(photos, (90,)):
        (site / name).write_bytes(data)
    dupes = work / "dupes"
    dupes.mkdir()
    for name, data in jpegs(sorted((args.data / "kodak").glob("*.png")), (90, 75, 60, 95)):
        (dupes / name).write_bytes(data)
    samepix = [sys.executable, "-m", "samepix"]
    subprocess.run([*samepix, "index", str(dupes)], check=True, env=ENV, capture_output=True)

    times: dict[str, list[float]] = {}
    one, two = local_cluster(1), local_cluster(2)
    loads = [os.getloadavg()[0]]
    with serve_folder(site) as base:
        urls = work / "urls.txt"
        urls.write_text("".join(f"{base}/{p.name}\n" for p in sorted(site.iterdir())))
        count = len(list(site.iterdir()))

        def sync(label: str, *options: str, api: bool = False) -> None:
            target = work / "into"
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir()
            if api:
                command = [sys.executable, "-c", _API, "sync", str(urls), str(target)]
            else:
                command = [*samepix, "sync", str(urls), str(target), *options]
            times.setdefault(f"sync: {label}", []).append(timed(command))

        def dupe(label: str, *options: str, api: bool = False) -> None:
            if api:
                command = [sys.executable, "-c", _API, "dupes", "", str(dupes)]
            else:
                command = [*samepix, "dupes", str(dupes), "--json", *options]
            times.setdefault(f"dupes: {label}", []).append(timed(command))

        try:
            a1, a2 = one.scheduler_address, two.scheduler_address
            sync("warm-up", "--dask", a2)
            times.clear()
            for _ in range(args.rounds):
                sync("plain (decoding in the coordinator)")
                sync("local executor, 2 processes", api=True)
                sync("--dask tcp:// 2 workers", "--dask", a2)
                sync("--dask tcp:// 1 worker", "--dask", a1)
                dupe("plain")
                dupe("local executor, 2 processes", api=True)
                dupe("--dask tcp:// 2 workers", "--dask", a2)
                dupe("--dask tcp:// 1 worker", "--dask", a1)
                loads.append(os.getloadavg()[0])
        finally:
            one.close()
            two.close()

    print(machine())
    print(
        f"sync: {count} distinct JPEGs over HTTP on 127.0.0.1 into an empty folder; dupes: "
        f"96 JPEGs (24 Kodak × 4 qualities), index built; {args.rounds} rounds, interleaved"
    )
    rows = []
    for label, values in times.items():
        rows.append([label, f"{statistics.median(values):.2f}", f"{min(values):.2f}"])
    print()
    print(table(["run (fresh process each)", "median s", "best s"], rows))

    def ratio(a: str, b: str) -> float:
        return statistics.median(times[a]) / statistics.median(times[b])

    for verb in ("sync", "dupes"):
        overhead = ratio(f"{verb}: --dask tcp:// 2 workers", f"{verb}: local executor, 2 processes")
        scaling = ratio(f"{verb}: --dask tcp:// 1 worker", f"{verb}: --dask tcp:// 2 workers")
        print(
            f"{verb}: Dask 2 workers vs local executor 2 processes: {overhead:.2f}× the time; "
            f"1 → 2 Dask workers: {scaling:.2f}× faster"
        )
    print(f"load average (1 min) during the runs: {min(loads):.1f}–{max(loads):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
