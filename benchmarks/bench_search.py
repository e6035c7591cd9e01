"""``dupes``' candidate search and its whole run at 10,000 / 100,000 / 1,000,000 index entries.

    python benchmarks/bench_search.py                          # search 10k, 100k, 1M; dupes 1M
    python benchmarks/bench_search.py --sizes 10000,100000 --skip-dupes
    python benchmarks/bench_search.py --kinds random,clustered --dupes-size 1000000

1. **Search**: every pair of entries whose pHash or dHash is within 12 bits
   (``Policy.candidate_hash_distance``), side by side, each method in a fresh process (its own
   peak RSS, read from ``/proc/self/status`` VmHWM), on the same synthetic hashes:

   - ``exact``: samepix's blockwise numpy scan (``samepix.search``, method "exact"): what
     ``dupes`` did for every folder before; quadratic;
   - ``samepix``: ``samepix.search.close_pairs`` as ``dupes`` calls it (method "auto");
   - ``faiss-flat``: faiss ``IndexBinaryFlat.range_search`` on each hash (exact, quadratic);
   - ``faiss-mih``: faiss ``IndexBinaryMultiHash`` (4 bands of 16 bits, ``nflip`` 3: exact at
     radius 12 by pigeonhole);
   - ``usearch``: usearch's HNSW over 64-bit Hamming vectors, 32 nearest neighbours a query,
     kept when within the radius (approximate).

   A method is run only where its time projected from the smaller size stays under
   ``--budget`` seconds; otherwise the table says "not run" and gives the projection, labelled
   as arithmetic. Recall is against the exact pairs where ``exact`` ran; at sizes where it did
   not, against an exact scan of every pair that involves ``--probe`` randomly chosen entries
   (an unbiased sample of the pairs), and separately against the planted pairs (known, at every
   distance 0–12).

   Hash sets: ``random`` — uniform 64-bit hashes (the hardest case for the search: almost every
   pair within the radius is a chance pair right at 11–12 bits) plus planted near copies, 5 %
   of the entries, at a uniformly drawn distance 0–12 on pHash; ``clustered`` — clusters of
   1–11 near copies 0–16 bits from their centre (bursts, re-encodes, edits), a third of them
   with an identical dHash: many pairs at every distance, as hashes of real photographs are
   (they are not uniform: a folder's pictures share subjects and exposure).

2. **The whole ``dupes``** over a real SQLite index of ``--dupes-size`` synthetic rows (random
   hashes and thumbnails; 1 % planted copies with the same bytes, 1 % near copies with a
   similar thumbnail), run with ``Library.duplicates(update=False)`` in a fresh process: the
   time and resident memory at the end of each phase (loading the table, searching, screening,
   grouping) and the peak. The files do not exist: a candidate that passes the screen is tried
   and skipped (``SourceError``), so this measures the search side, not SSIM. Beside it,
   ``Index.entries()`` (what ``dupes`` read first before this change) in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import _common  # noqa: E402

RADIUS = 12
METHODS = ("exact", "samepix", "faiss-flat", "faiss-mih", "usearch")


# ---------------------------------------------------------------------------------------------
# Synthetic hashes


def _flip_masks(rng: np.random.Generator, counts: np.ndarray) -> np.ndarray:
    """One uint64 per count with that many distinct random bits set."""
    out = np.zeros(counts.shape[0], dtype=np.uint64)
    keys = rng.random((counts.shape[0], 64))
    order = np.argsort(keys, axis=1)  # a random permutation of the 64 bits per row
    for k in range(64):
        take = counts > k
        out[take] |= np.uint64(1) << order[take, k].astype(np.uint64)
    return out


def make_hashes(kind: str, n: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(pHash, dHash, planted pairs as an (m, 2) array of positions)."""
    rng = np.random.default_rng(seed)
    if kind == "random":
        ph = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
        dh = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
        m = n // 20
        pos = rng.permutation(n)[: 2 * m].reshape(m, 2)
        ph[pos[:, 1]] = ph[pos[:, 0]] ^ _flip_masks(rng, rng.integers(0, RADIUS + 1, size=m))
        return ph, dh, np.sort(pos, axis=1)
    if kind == "clustered":
        sizes = rng.integers(1, 12, size=n)
        sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n)) + 1]
        sizes[-1] -= int(sizes.sum()) - n
        centre = np.repeat(np.arange(sizes.shape[0]), sizes)
        cp = rng.integers(0, 2**64 - 1, size=sizes.shape[0], dtype=np.uint64, endpoint=True)
        cd = rng.integers(0, 2**64 - 1, size=sizes.shape[0], dtype=np.uint64, endpoint=True)
        ph = cp[centre] ^ _flip_masks(rng, rng.integers(0, 17, size=n))
        same_d = rng.random(n) < 1 / 3
        dh = cd[centre] ^ np.where(same_d, 0, _flip_masks(rng, rng.integers(0, 17, size=n)))
        dh = dh.astype(np.uint64)
        perm = rng.permutation(n)
        return ph[perm], dh[perm], np.zeros((0, 2), dtype=np.int64)
    raise SystemExit(f"unknown kind {kind!r}")


def pair_keys(first: np.ndarray, second: np.ndarray, n: int) -> np.ndarray:
    lo = np.minimum(first, second).astype(np.uint64)
    hi = np.maximum(first, second).astype(np.uint64)
    return np.unique(lo * np.uint64(n) + hi)


# ---------------------------------------------------------------------------------------------
# Methods (each runs in its own process: --worker)


def run_method(method: str, ph: np.ndarray, dh: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = ph.shape[0]
    if method in ("exact", "samepix"):
        from samepix.search import close_pairs

        got = close_pairs(ph, dh, RADIUS, method="exact" if method == "exact" else "auto")
        return got.first, got.second
    firsts: list[np.ndarray] = []
    seconds: list[np.ndarray] = []
    for column in (ph, dh):
        codes = np.ascontiguousarray(column.view(np.uint8).reshape(n, 8))
        if method in ("faiss-flat", "faiss-mih"):
            import faiss

            faiss.omp_set_num_threads(_common.usable_cpus())
            if method == "faiss-flat":
                index = faiss.IndexBinaryFlat(64)
            else:
                index = faiss.IndexBinaryMultiHash(64, 4, 16)
                index.nflip = 3  # pigeonhole: a pair within 12 agrees within 3 on a band
            index.add(codes)
            lims, dist, ids = index.range_search(codes, RADIUS + 1)  # strict: distance < r
            rows = np.repeat(np.arange(n), np.diff(lims.astype(np.int64)))
            keep = ids > rows
            firsts.append(rows[keep])
            seconds.append(ids[keep])
        elif method == "usearch":
            from usearch.index import Index

            index = Index(ndim=64, metric="hamming", dtype="b1")
            index.add(np.arange(n), codes, threads=_common.usable_cpus())
            found = index.search(codes, 32, threads=_common.usable_cpus())
            keys = np.asarray(found.keys).astype(np.int64)
            dist = np.asarray(found.distances)
            rows = np.repeat(np.arange(n), keys.shape[1]).reshape(keys.shape)
            keep = (dist <= RADIUS) & (keys > rows) & (keys >= 0)
            firsts.append(rows[keep])
            seconds.append(keys[keep])
        else:
            raise SystemExit(f"unknown method {method!r}")
    return np.concatenate(firsts), np.concatenate(seconds)


def probe_truth(ph: np.ndarray, dh: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Exact pairs (as keys) that involve ``rows``: each row against every entry."""
    n = ph.shape[0]
    found: list[np.ndarray] = []
    for start in range(0, rows.shape[0], 16):
        r = rows[start : start + 16]
        d = np.minimum(
            np.bitwise_count(ph[r][:, None] ^ ph[None, :]),
            np.bitwise_count(dh[r][:, None] ^ dh[None, :]),
        )
        a, b = np.nonzero(d <= RADIUS)
        a = r[a]
        keep = a != b
        found.append(pair_keys(a[keep], b[keep], n))
    return np.unique(np.concatenate(found))


def worker(args: argparse.Namespace) -> None:
    ph, dh, _ = make_hashes(args.kind, args.n)
    _common.reset_peak()
    base = _common.status_kib("VmRSS") or 0
    t0, c0 = time.perf_counter(), time.process_time()
    if args.worker == "probe":
        rows = np.random.default_rng(99).choice(args.n, args.probe, replace=False)
        keys = probe_truth(ph, dh, rows)
        np.save(args.out + ".rows.npy", rows)
    else:
        first, second = run_method(args.worker, ph, dh)
        keys = pair_keys(first, second, args.n)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    np.save(args.out, keys)
    peak = _common.status_kib("VmHWM") or 0
    print(
        json.dumps(
            {
                "wall_s": wall,
                "cpu_s": cpu,
                "peak_mib": peak / 1024,
                "above_inputs_mib": (peak - base) / 1024,
                "pairs": int(keys.shape[0]),
            }
        )
    )


def spawn(
    method: str, kind: str, n: int, out: Path, probe: int, timeout: float
) -> dict[str, float]:
    cmd = [
        sys.executable,
        __file__,
        "--worker",
        method,
        "--kind",
        kind,
        "--n",
        str(n),
        "--out",
        str(out),
        "--probe",
        str(probe),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    result: dict[str, float] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def available(method: str) -> str | None:
    """None when the method can run here, else why not."""
    module = {"faiss-flat": "faiss", "faiss-mih": "faiss", "usearch": "usearch"}.get(method)
    if module is None:
        return None
    try:
        __import__(module)
    except ImportError:
        return (
            f"{module} not installed (pip install {'faiss-cpu' if module == 'faiss' else module})"
        )
    return None


def bench_search(
    sizes: list[int], kinds: list[str], budget: float, probe: int, methods: list[str]
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-search-"))
    rows: list[list[object]] = []
    for kind in kinds:
        rate: dict[str, tuple[int, float, float]] = {}  # method -> (n, wall, exponent)
        for n in sizes:
            truth: np.ndarray | None = None
            truth_note = ""
            results: dict[str, tuple[dict[str, float], np.ndarray] | str] = {}
            for method in methods:
                why = available(method)
                if why:
                    results[method] = f"skipped: {why}"
                    continue
                if method in rate:
                    n0, w0, power = rate[method]
                    projected = w0 * (n / n0) ** power
                    if projected > budget:
                        results[method] = (
                            f"not run: {projected:,.0f} s projected (arithmetic: "
                            f"{w0:.1f} s at {n0:,} × ({n:,}/{n0:,})^{power:g})"
                        )
                        continue
                out = tmp / f"{kind}-{n}-{method}.npy"
                try:
                    stats = spawn(method, kind, n, out, probe, timeout=budget * 1.5)
                except (RuntimeError, subprocess.TimeoutExpired) as exc:
                    results[method] = f"failed: {exc}"
                    continue
                keys = np.load(out)
                results[method] = (stats, keys)
                # Pairs checked grow as n² for the scans and for multi-index hashing (a fixed
                # fraction of all pairs share a band) — about n^1.3 for the others.
                quadratic = method in ("exact", "faiss-flat", "faiss-mih")
                rate[method] = (n, stats["wall_s"], 2.0 if quadratic else 1.3)
                if method == "exact":
                    truth, truth_note = keys, "all pairs (exact scan)"
            probe_rows: np.ndarray | None = None
            if truth is None:
                out = tmp / f"{kind}-{n}-probe.npy"
                stats = spawn("probe", kind, n, out, probe, timeout=budget * 1.5)
                truth = np.load(out)
                probe_rows = np.load(str(out) + ".rows.npy")
                truth_note = f"pairs of {probe:,} random entries ({truth.shape[0]:,} pairs)"
            _, _, planted = make_hashes(kind, n)
            planted_keys = pair_keys(planted[:, 0], planted[:, 1], n) if planted.size else None
            for method in methods:
                res = results[method]
                if isinstance(res, str):
                    rows.append([kind, f"{n:,}", method, res, "", "", "", "", ""])
                    continue
                stats, keys = res
                if probe_rows is not None:
                    first = keys // np.uint64(n)
                    second = keys % np.uint64(n)
                    mine = np.isin(first, probe_rows) | np.isin(second, probe_rows)
                    sample = keys[mine]
                else:
                    sample = keys
                recall = np.isin(truth, sample).mean() if truth.shape[0] else 1.0
                false = int((~np.isin(sample, truth)).sum())
                planted_recall = (
                    f"{np.isin(planted_keys, keys).mean():.5f}" if planted_keys is not None else "—"
                )
                rows.append(
                    [
                        kind,
                        f"{n:,}",
                        method,
                        f"{stats['wall_s']:.2f}",
                        f"{stats['cpu_s']:.2f}",
                        f"{stats['peak_mib']:.0f}",
                        f"{recall:.5f} ({truth_note})",
                        planted_recall,
                        f"{int(stats['pairs']):,} ({false} outside)",
                    ]
                )
            print(f"done: {kind} {n:,} (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
    header = [
        "hashes",
        "entries",
        "method",
        "wall s",
        "CPU s",
        "peak RSS MiB",
        "recall",
        "planted recall",
        "pairs",
    ]
    print(_common.table(header, rows))


# ---------------------------------------------------------------------------------------------
# The whole dupes run over a real SQLite index


def build_index(root: Path, n: int) -> Path:
    """A real index file of ``n`` synthetic rows; 1 % same-bytes copies, 1 % near copies."""
    from samepix.index import Index

    root.mkdir(parents=True, exist_ok=True)
    with Index(root):
        pass  # the schema
    db = root / ".samepix" / "index.db"
    ph, dh, _ = make_hashes("random", n, seed=5)
    rng = np.random.default_rng(6)
    thumbs = rng.integers(0, 256, size=(n, 256), dtype=np.uint8)
    sha = rng.integers(0, 256, size=(n, 32), dtype=np.uint8)
    k = n // 100
    pos = rng.permutation(n)[: 4 * k].reshape(2, k, 2)
    sha[pos[0, :, 1]] = sha[pos[0, :, 0]]  # identical bytes
    for a, b in (pos[0].T, pos[1].T):  # both kinds of copy: the same hashes and thumbnail
        ph[b], dh[b], thumbs[b] = ph[a], dh[a], thumbs[a]
    ph[pos[1, :, 1]] ^= _flip_masks(rng, rng.integers(1, RADIUS + 1, size=k))
    phs, dhs = ph.view(np.int64), dh.view(np.int64)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    with conn:
        for start in range(0, n, 50_000):
            stop = min(n, start + 50_000)
            conn.executemany(
                "INSERT INTO files (path, size, mtime_ns, inode, sha256, format, width, height, "
                "mode, lossless, jpeg_quality, ahash, dhash, phash, whash, thumb) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    (
                        f"img/{i // 1000:04d}/{i:07d}.jpg",
                        100_000,
                        0,
                        i,
                        sha[i].tobytes(),
                        "JPEG",
                        1024,
                        768,
                        "RGB",
                        0,
                        90,
                        0,
                        int(dhs[i]),
                        int(phs[i]),
                        0,
                        thumbs[i].tobytes(),
                    )
                    for i in range(start, stop)
                ),
            )
    conn.close()
    return root


def dupes_worker(args: argparse.Namespace) -> None:
    from samepix.index import Index, Progress
    from samepix.library import Library

    root = Path(args.root)
    marks: list[dict[str, object]] = []
    t0 = time.perf_counter()
    stage: dict[str, object] = {"name": "start", "since": t0, "cpu": time.process_time()}

    def note(name: str) -> None:
        now, cpu = time.perf_counter(), time.process_time()
        marks.append(
            {
                "phase": stage["name"],
                "s": now - float(stage["since"]),  # type: ignore[arg-type]
                "cpu_s": cpu - float(stage["cpu"]),  # type: ignore[arg-type]
                "rss_mib": (_common.status_kib("VmRSS") or 0) / 1024,
                "peak_mib": (_common.status_kib("VmHWM") or 0) / 1024,
            }
        )
        stage.update(name=name, since=now, cpu=cpu)

    def progress(report: Progress) -> None:
        if report.stage != stage["name"]:
            note(report.stage)

    if args.worker == "dupes":
        with Library(root, progress=progress) as lib:
            groups = lib.duplicates(update=False)
        note("done")
        extra = {"groups": len(groups), "grouped_files": sum(len(g.copies) for g in groups)}
    else:  # what dupes did first before: every entry object
        with Index(root) as index:
            entries = index.entries()
        note("done")
        extra = {"entries": len(entries)}
    print(
        json.dumps(
            {
                "marks": marks[1:],
                "wall_s": time.perf_counter() - t0,
                **extra,
                "peak_mib": (_common.status_kib("VmHWM") or 0) / 1024,
            }
        )
    )


def bench_dupes(n: int) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="bench-dupes-"))
    t0 = time.perf_counter()
    root = build_index(tmp / "folder", n)
    print(f"built a {n:,}-row index in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    for what in ("entries", "dupes"):
        cmd = [sys.executable, __file__, "--worker", what, "--root", str(root)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            print(f"{what}: failed: {proc.stderr.strip()[-400:]}")
            continue
        data = json.loads(proc.stdout.strip().splitlines()[-1])
        title = (
            f"`Library.duplicates(update=False)` on {n:,} entries: {data['wall_s']:.1f} s, "
            f"peak RSS {data['peak_mib']:.0f} MiB, {data['groups']:,} groups of "
            f"{data['grouped_files']:,} files"
            if what == "dupes"
            else f"`Index.entries()` (what dupes read first before): {data['wall_s']:.1f} s, "
            f"peak RSS {data['peak_mib']:.0f} MiB"
        )
        print(title + f" (load {os.getloadavg()[0]:.1f})\n")
        rows = [
            [m["phase"], f"{m['s']:.1f}", f"{m.get('cpu_s', 0):.1f}", f"{m['rss_mib']:.0f}",
             f"{m['peak_mib']:.0f}"]
            for m in data["marks"]
        ]  # fmt: skip
        header = ["phase", "wall s", "CPU s", "RSS at its end MiB", "peak so far MiB"]
        print(_common.table(header, rows))
        print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--kinds", default="random,clustered")
    parser.add_argument(
        "--budget",
        type=float,
        default=600.0,
        help="run a method at a size only if projected under this many seconds",
    )
    parser.add_argument(
        "--probe",
        type=int,
        default=4000,
        help="entries whose pairs are checked exactly where the scan is not run",
    )
    parser.add_argument("--methods", default=",".join(METHODS), help="of: " + ", ".join(METHODS))
    parser.add_argument("--dupes-size", type=int, default=1_000_000)
    parser.add_argument("--skip-search", action="store_true")
    parser.add_argument("--skip-dupes", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--kind", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker in ("dupes", "entries"):
        dupes_worker(args)
        return
    if args.worker:
        worker(args)
        return
    print(f"Machine: {_common.machine()}; load average {os.getloadavg()[0]:.1f} at start\n")
    if not args.skip_search:
        sizes = [int(s) for s in args.sizes.split(",")]
        methods = args.methods.split(",")
        bench_search(sizes, args.kinds.split(","), args.budget, args.probe, methods)
        print()
    if not args.skip_dupes:
        bench_dupes(args.dupes_size)
    print(f"load average {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
