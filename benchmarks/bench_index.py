"""Folder index: build speed against imagehash, and find's candidate lookup at 1,000,000 entries.

    python benchmarks/bench_index.py                       # everything, ../shared/data photos
    python benchmarks/bench_index.py --data /path/to/shared/data --entries 1000000
    python benchmarks/bench_index.py --skip-lookup         # index build only

1. Index build on real JPEG photographs: the 24 Kodak images and the 24 photos of
   ``shared/data`` saved as JPEG into a temporary folder: quality 90 at their own size
   (0.4–1.7 MP), and quality 90 and 75 upscaled 3× (3.5–12 MP) and 4× (6.3–21 MP, mean 11.8:
   phone and camera sizes) with Lanczos (``--sets`` picks others). samepix indexes the folder
   with one worker process (images per second per core) and with one per CPU; the baseline is
   the loop a user would write with imagehash: ``imagehash.phash(Image.open(p))`` for each
   file, which decodes every file in full. Both read the files from the page cache (a warm-up
   pass reads them first); the columns are measured in turn, ``--reps`` times, best kept.
   Upscaled photographs are smoother than a camera's: fewer bytes per pixel, which favours the
   DCT-scaled decode (its cost follows the bytes, a full decode's the pixels). The "mosaic"
   sets are 11.8 MP tiled from the photographs at their own resolution: a camera's bytes per
   pixel (:func:`make_mosaics`).
2. ``find``'s candidate lookup against N synthetic entries (random 64-bit pHash/dHash, a few
   planted near copies) in a real SQLite index file: the time to load the in-memory table once,
   the time per query (median of 200), the table's memory, and a pure-Python loop over the same
   hashes for comparison (what ``[q - h for h in hashes]`` with imagehash objects amounts to, at
   best).
3. The index pre-screen (aspect ratio and 16×16 thumbnail) on its worst case for hashes: the same
   drawing on 64 different background shades, which pHash cannot tell apart. ``find`` of a 65th
   shade with the pre-screen on, and off (``candidate_thumb_distance=255``).

Prints markdown tables of what it measured.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

DEFAULT_DATA = ROOT.parent / "shared" / "data"


# ---------------------------------------------------------------------------------------------
# 1. Index build


def _sources(data: Path) -> list[Path]:
    return sorted((data / "kodak").glob("*.png")) + sorted((data / "photos").glob("*.png"))


def make_jpegs(data: Path, folder: Path, scale: int, quality: int) -> list[Path]:
    """Every photograph as a JPEG, upscaled ``scale``× with LANCZOS (1: its own size)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for src in _sources(data):
        with Image.open(src) as im:
            rgb = im.convert("RGB")
            if scale != 1:
                rgb = rgb.resize((rgb.width * scale, rgb.height * scale), Image.Resampling.LANCZOS)
            path = folder / f"{src.parent.name}-{src.stem}.jpg"
            rgb.save(path, format="JPEG", quality=quality)
            out.append(path)
    return out


MOSAIC_TILE = (768, 512)
MOSAIC_GRID = (5, 6)  # columns, rows: 3840×3072 = 11.8 MP


def make_mosaics(data: Path, folder: Path, quality: int) -> list[Path]:
    """48 camera-sized (11.8 MP) JPEGs with a camera's detail per pixel.

    Upscaled photographs are smooth: their JPEGs hold half the bytes per pixel of a camera's,
    and a DCT-scaled decode's cost follows the bytes. Each of these is instead a 5×6 mosaic of
    768×512 crops of the photographs at their own resolution (every file another arrangement),
    so the entropy per pixel is that of real photographs (~2.4 bits per pixel at q90, like a
    camera's JPEG).
    """
    import numpy as np
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    tw, th = MOSAIC_TILE
    tiles = []
    for src in _sources(data):
        with Image.open(src) as im:
            rgb = im.convert("RGB")
        if rgb.height > rgb.width:
            rgb = rgb.transpose(Image.Transpose.ROTATE_90)
        left, top = (rgb.width - tw) // 2, (rgb.height - th) // 2
        tiles.append(np.asarray(rgb.crop((left, top, left + tw, top + th))))
    cols, rows = MOSAIC_GRID
    out = []
    for i in range(len(tiles)):
        grid = [
            np.concatenate(
                [tiles[(i + r * cols + c) * 7 % len(tiles)] for c in range(cols)], axis=1
            )
            for r in range(rows)
        ]
        path = folder / f"mosaic-{i:02d}.jpg"
        Image.fromarray(np.concatenate(grid, axis=0)).save(path, format="JPEG", quality=quality)
        out.append(path)
    return out


def warm(files: list[Path]) -> int:
    return sum(len(p.read_bytes()) for p in files)


def time_imagehash(files: list[Path]) -> float:
    import imagehash
    from PIL import Image

    start = time.perf_counter()
    for path in files:
        with Image.open(path) as im:
            imagehash.phash(im)
    return time.perf_counter() - start


def time_index(folder: Path, workers: int) -> tuple[float, int]:
    from samepix.index import Index, default_db_path, update_index

    Index.remove_files(default_db_path(folder))
    start = time.perf_counter()
    with Index(folder) as index:
        summary = update_index(index, workers=workers)
    return time.perf_counter() - start, summary.decoded


def bench_build(data: Path, tmp: Path, reps: int, sets: list[tuple[str, int]]) -> list[str]:
    from PIL import Image

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    cpus = cpus or 1
    rows = [
        "| set | files | MP per file: mean (range) | MB per file | imagehash phash loop, img/s "
        f"| samepix index 1 worker, img/s | ratio per core | samepix index {cpus} workers, "
        "img/s | ratio per core |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for kind, quality in sets:
        folder = tmp / f"jpegs-{kind}-q{quality}"
        if kind == "mosaic":
            files = make_mosaics(data, folder, quality)
            label = f"photo mosaics JPEG q{quality} (camera detail)"
        else:
            files = make_jpegs(data, folder, int(kind), quality)
            label = f"Kodak + photos JPEG q{quality} ×{kind}"
        mps = []
        for p in files:
            with Image.open(p) as im:
                mps.append(im.size[0] * im.size[1] / 1e6)
        mb = warm(files) / len(files) / 1e6
        base = one = many = float("inf")
        for _ in range(reps):  # interleaved, so a noisy moment hits every column alike
            base = min(base, time_imagehash(files))
            one = min(one, time_index(folder, 1)[0])
            many = min(many, time_index(folder, cpus)[0])
        n = len(files)
        shutil.rmtree(folder)
        rows.append(
            f"| {label} | {n} | {statistics.mean(mps):.1f} "
            f"({min(mps):.1f}–{max(mps):.1f}) | {mb:.2f} | {n / base:.1f} | {n / one:.1f} | "
            f"{base / one:.2f}× | {n / many:.1f} | {base / many / cpus:.2f}× |"
        )
    return rows


# ---------------------------------------------------------------------------------------------
# 2. Candidate lookup at scale


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def build_synthetic_db(root: Path, n: int) -> tuple[Path, list[int]]:
    """A real index file with n rows of random hashes (and random 256-byte thumbnails)."""
    from samepix.index import Index

    root.mkdir(parents=True, exist_ok=True)
    with Index(root):
        pass  # creates the schema
    db = root / ".samepix" / "index.db"
    rng = np.random.default_rng(1)
    hashes = rng.integers(-(1 << 63), (1 << 63) - 1, size=(n, 4), dtype=np.int64)
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA synchronous = OFF")
    thumb = bytes(256)
    batch = 50_000
    with conn:
        for start in range(0, n, batch):
            rows = [
                (
                    f"img/{i:07d}.jpg",
                    100_000,
                    0,
                    i,
                    rng.bytes(32),
                    "JPEG",
                    1024,
                    768,
                    "RGB",
                    0,
                    90,
                    int(hashes[i, 0]),
                    int(hashes[i, 1]),
                    int(hashes[i, 2]),
                    int(hashes[i, 3]),
                    thumb,
                )
                for i in range(start, min(n, start + batch))
            ]
            conn.executemany(
                "INSERT INTO files (path, size, mtime_ns, inode, sha256, format, width, height, "
                "mode, lossless, jpeg_quality, ahash, dhash, phash, whash, thumb) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows,
            )
    conn.close()
    return db, [int(v) for v in hashes[:200, 2]]


def bench_lookup(tmp: Path, n: int) -> list[str]:
    from samepix.hashes import HashSet, ImageHash
    from samepix.index import Index

    root = tmp / "synthetic"
    t0 = time.perf_counter()
    db, planted = build_synthetic_db(root, n)
    build_s = time.perf_counter() - t0
    size_mb = db.stat().st_size / 1e6

    rss0 = rss_kib()
    with Index(root) as index:
        t0 = time.perf_counter()
        table = index.hash_table()
        load_s = time.perf_counter() - t0
        rss1 = rss_kib()
        table_mb = (table.ids.nbytes + table.phash.nbytes + table.dhash.nbytes) / 1e6
    with Index(root) as index:  # a later process: the table comes from the cache file
        t0 = time.perf_counter()
        table = index.hash_table()
        cached_s = time.perf_counter() - t0

        rng = random.Random(2)
        queries = []
        for k in range(200):
            base = planted[k] & ((1 << 64) - 1)
            flips = rng.sample(range(64), rng.randint(0, 6))  # a near copy of a stored entry
            value = base
            for bit in flips:
                value ^= 1 << bit
            h = {kind: ImageHash(kind, rng.getrandbits(64)) for kind in ("ahash", "whash")}
            h["phash"] = ImageHash("phash", value)
            h["dhash"] = ImageHash("dhash", rng.getrandbits(64))
            queries.append(HashSet(**h))
        times, found = [], 0
        for q in queries:
            t0 = time.perf_counter()
            ids, _ = table.candidates(q, 12)
            times.append(time.perf_counter() - t0)
            found += len(ids) >= 1
        per_query_ms = statistics.median(times) * 1000

        # The same search in pure Python over ints (imagehash objects would be slower still).
        values = [int(v) & ((1 << 64) - 1) for v in table.phash[: min(n, 1_000_000)]]
        q = queries[0].phash.value
        t0 = time.perf_counter()
        _ = [i for i, v in enumerate(values) if (v ^ q).bit_count() <= 12]
        python_ms = (time.perf_counter() - t0) * 1000 * (n / len(values))
    shutil.rmtree(root)
    return [
        "| entries | index file | table load: from SQLite / cached | table memory | RSS growth | "
        "lookup per query (median of 200) | near copies found | pure-Python loop | ratio |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {n:,} | {size_mb:.0f} MB (built in {build_s:.0f} s) | {load_s * 1000:.0f} ms / "
        f"{cached_s * 1000:.0f} ms | "
        f"{table_mb:.0f} MB | {(rss1 - rss0) / 1024:.0f} MB | {per_query_ms:.2f} ms | "
        f"{found}/200 | {python_ms:.0f} ms | {python_ms / per_query_ms:.0f}× |",
    ]


# ---------------------------------------------------------------------------------------------
# 3. The pre-screen


def bench_prescreen(tmp: Path) -> list[str]:
    import cv2
    from PIL import Image

    from samepix.library import Library
    from samepix.policy import DEFAULT_POLICY

    folder = tmp / "shades"
    folder.mkdir()

    def drawing(shade: int) -> np.ndarray:
        img = np.full((480, 640, 3), shade, np.uint8)
        cv2.circle(img, (200, 240), 120, (20, 60, 200), -1, cv2.LINE_AA)
        cv2.rectangle(img, (380, 100), (560, 380), (230, 200, 40), -1, cv2.LINE_AA)
        cv2.putText(img, "logo", (60, 440), cv2.FONT_HERSHEY_SIMPLEX, 2, (0, 0, 0), 4)
        return img

    for k in range(64):
        Image.fromarray(drawing(k * 4)).save(folder / f"shade{k:02d}.png")
    out = io.BytesIO()
    Image.fromarray(drawing(130)).save(out, format="PNG")
    query = out.getvalue()
    rows = [
        "| pre-screen | candidates | screened out | fully compared | matches | find time |",
        "| --- | ---: | ---: | ---: | --- | ---: |",
    ]
    with Library(folder, workers=1) as lib:
        lib.update()
    for label, policy in (
        (
            f"on (default, thumbnail distance {DEFAULT_POLICY.candidate_thumb_distance:g})",
            DEFAULT_POLICY,
        ),
        (
            "off (candidate_thumb_distance=255)",
            DEFAULT_POLICY.with_(candidate_thumb_distance=255.0),
        ),
    ):
        with Library(folder, workers=1, policy=policy) as lib:
            best = None
            for _ in range(3):
                t0 = time.perf_counter()
                result = lib.find(query, update=False)
                elapsed = time.perf_counter() - t0
                best = elapsed if best is None else min(best, elapsed)
        rows.append(
            f"| {label} | {result.candidates} | {result.screened_out} | {result.compared} | "
            f"{len(result.matches)} files | {best * 1000:.0f} ms |"
        )
    return rows


# ---------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared/data folder")
    parser.add_argument("--entries", type=int, default=1_000_000, help="synthetic index size")
    parser.add_argument("--reps", type=int, default=3, help="repetitions (best is kept)")
    parser.add_argument(
        "--sets",
        default="1:90,3:90,3:75,4:90,4:75,mosaic:90,mosaic:75",
        help="index-build sets as KIND:QUALITY,... (KIND: upscale factor of the photographs, or "
        "'mosaic'; QUALITY: JPEG quality)",
    )
    parser.add_argument("--skip-build", action="store_true")
    parser.add_argument("--skip-lookup", action="store_true")
    parser.add_argument("--skip-prescreen", action="store_true")
    args = parser.parse_args()

    import PIL

    print(
        f"python {platform.python_version()}, numpy {np.__version__}, Pillow {PIL.__version__}, "
        f"{os.cpu_count()} CPUs, {platform.machine()}\n"
    )
    tmp = Path(tempfile.mkdtemp(prefix="samepix-bench-"))
    try:
        if not args.skip_build:
            if not (args.data / "kodak").is_dir():
                print(f"index build skipped: no photographs at {args.data} (use --data)\n")
            else:
                print("## Index build (real JPEG photographs)\n")
                sets = [(a, int(b)) for a, b in (i.split(":") for i in args.sets.split(","))]
                rows = bench_build(args.data, tmp, args.reps, sets)
                print("\n".join(rows) + "\n")
        if not args.skip_lookup:
            print("## find: candidate lookup\n")
            print("\n".join(bench_lookup(tmp, args.entries)) + "\n")
        if not args.skip_prescreen:
            print("## find: index pre-screen on hash look-alikes\n")
            print("\n".join(bench_prescreen(tmp)) + "\n")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
