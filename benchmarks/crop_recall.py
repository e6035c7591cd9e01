"""Recall of ``find`` for crops keeping most of the picture, with and without each crop lookup.

Built from ../shared/data (Kodak and photos/, each reduced to at most 1024 px). Two directions:

- "query is a crop": the folder holds the originals (JPEG q90), the query is a crop of one of
  them (JPEG q85). Found through the crop hashes the index keeps (``samepix.crophash``; with
  ``crop_is_same``).
- "folder holds a crop": one folder per crop setting holds that crop of every picture, the query
  is the original (re-encoded at q88). Found through the crops of the query looked up in the
  plain hashes (``samepix.variants.crop_variants``).

Crops: fixed settings (81 %, 64 % and 49 % of the area — linear 0.9, 0.8, 0.7 — at the centre, a
corner and an off-centre position), and random ones of two families, 4 a picture:
"sides ≥ 70 %" (each side keeps 70–100 %, any position; what the crop hashes are built for)
and "area ≥ 50 %" (any shape keeping half the area or more, each side ≥ 50 %).

A hit is the right file among ``find``'s matches or similar files; "same" counts it among the
matches (with ``--crop-is-same``: the verdict ladder confirmed the crop). "without" disables the
lookup the direction needs. The last lines give the cost: indexing time and index size with and
without the crop hashes, and the time of the crop lookups on large tables of random hashes.

    python benchmarks/crop_recall.py [N_PICTURES]
"""

from __future__ import annotations

import glob
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import samepix
import samepix.crophash as crophash_module
import samepix.index as index_module
import samepix.library as library_module
import samepix.variants as variants_module

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETTINGS = [(s, s, w) for s in (0.9, 0.8, 0.7) for w in ("centre", "corner", "offset")]
POLICY = samepix.Policy(crop_is_same=True)


def pictures(n: int) -> list[Image.Image]:
    files = sorted(glob.glob(str(DATA / "kodak" / "*.png")))[: n // 2]
    files += sorted(glob.glob(str(DATA / "photos" / "*")))[: n - len(files)]
    out = []
    for f in files:
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        out.append(im)
    return out


def crop(im: Image.Image, sx: float, sy: float, where: str | tuple[float, float]) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * sx), round(h * sy)
    if isinstance(where, tuple):
        ax, ay = where
    else:
        ax, ay = {"centre": (0.5, 0.5), "corner": (0.0, 0.0), "offset": (1 / 3, 2 / 3)}[where]
    x, y = round((w - cw) * ax), round((h - ch) * ay)
    return im.crop((x, y, x + cw, y + ch))


def random_crops(
    n: int, family: str, seed: int = 1
) -> list[tuple[float, float, tuple[float, float]]]:
    rng = random.Random(seed)
    out = []
    while len(out) < n:
        low = 0.7 if family == "sides ≥ 70 %" else 0.5
        sx, sy = rng.uniform(low, 1.0), rng.uniform(low, 1.0)
        if sx * sy > 0.95 or (family == "area ≥ 50 %" and sx * sy < 0.5):
            continue
        out.append((sx, sy, (rng.random(), rng.random())))
    return out


def query_is_a_crop(ims: list[Image.Image], tmp: Path) -> dict[str, tuple[float, float]]:
    results: dict[str, tuple[float, float]] = {}
    folder = tmp / "originals"
    folder.mkdir()
    for i, im in enumerate(ims):
        im.save(folder / f"o{i}.jpg", quality=90)
    cases: dict[str, list[tuple[int, float, float, object]]] = {}
    for sx, sy, where in SETTINGS:
        cases[f"{sx * sy:4.0%} of the area, {where}"] = [
            (i, sx, sy, where) for i in range(len(ims))
        ]
    for family in ("sides ≥ 70 %", "area ≥ 50 %"):
        crops = random_crops(4 * len(ims), family)
        cases[f"random, {family}"] = [
            (k % len(ims), sx, sy, where) for k, (sx, sy, where) in enumerate(crops)
        ]
    with samepix.Library(folder, policy=POLICY) as lib:
        lib.update()
        for name, items in cases.items():
            hit = same = 0
            for i, sx, sy, where in items:
                q = tmp / "query.jpg"
                crop(ims[i], sx, sy, where).save(q, quality=85)  # type: ignore[arg-type]
                r = lib.find(q, update=False)
                hit += any(m.path.name == f"o{i}.jpg" for m in (*r.matches, *r.similar))
                same += any(m.path.name == f"o{i}.jpg" for m in r.matches)
            results[name] = (hit / len(items), same / len(items))
    shutil.rmtree(folder)
    return results


def folder_holds_a_crop(ims: list[Image.Image], tmp: Path) -> dict[str, tuple[float, float]]:
    results = {}
    for i, im in enumerate(ims):
        im.save(tmp / f"q{i}.jpg", quality=88)
    for sx, sy, where in SETTINGS:
        crops = tmp / f"crops-{sx}-{where}"
        crops.mkdir()
        for i, im in enumerate(ims):
            crop(im, sx, sy, where).save(crops / f"c{i}.jpg", quality=85)
        with samepix.Library(crops, policy=POLICY) as lib:
            lib.update()
            hit = same = 0
            for i in range(len(ims)):
                r = lib.find(tmp / f"q{i}.jpg", update=False)
                hit += any(m.path.name == f"c{i}.jpg" for m in (*r.matches, *r.similar))
                same += any(m.path.name == f"c{i}.jpg" for m in r.matches)
            results[f"{sx * sy:4.0%} of the area, {where}"] = (hit / len(ims), same / len(ims))
        shutil.rmtree(crops)
    return results


def index_cost(ims: list[Image.Image], tmp: Path) -> dict[str, tuple[float, int]]:
    """Seconds to index the pictures (one process) and the index's size, with and without
    the crop hashes (best of 5 runs each, interleaved)."""
    folder = tmp / "cost"
    folder.mkdir()
    for i, im in enumerate(ims):
        im.save(folder / f"o{i}.jpg", quality=90)
    best: dict[str, tuple[float, int]] = {}
    for _ in range(5):
        for name in ("with crop hashes", "without"):
            saved = crophash_module.crop_hashes
            if name == "without":  # nothing made, nothing stored
                crophash_module.crop_hashes = lambda *a, **k: np.zeros((0, 2), np.int64)
            try:
                db = tmp / f"{name}.db"
                index_module.Index.remove_files(db)
                started = time.perf_counter()
                with samepix.Library(folder, db=db, workers=1) as lib:
                    lib.update()
                took = time.perf_counter() - started
                size = sum(os.path.getsize(p) for p in glob.glob(f"{db}*"))
            finally:
                crophash_module.crop_hashes = saved
            if name not in best or took < best[name][0]:
                best[name] = (took, size)
    return best


def dupes_recall(ims: list[Image.Image], tmp: Path, family: str) -> str:
    """``dupes --crop-is-same`` on a folder of the originals and one random crop of each: how
    many crops are grouped with their original, and how many groups hold anything else."""
    folder = tmp / f"dupes-{family[:5]}"
    folder.mkdir()
    crops = random_crops(len(ims), family, seed=2)
    for i, (im, (sx, sy, where)) in enumerate(zip(ims, crops, strict=True)):
        im.save(folder / f"o{i}.jpg", quality=90)
        crop(im, sx, sy, where).save(folder / f"c{i}.jpg", quality=85)
    started = time.perf_counter()
    with samepix.Library(folder, policy=POLICY) as lib:
        lib.update()
        indexed = time.perf_counter()
        groups = lib.duplicates(update=False)
    took = time.perf_counter() - indexed
    names = [sorted(c.path.name for c in g.copies) for g in groups]
    joined = sum(1 for i in range(len(ims)) if [f"c{i}.jpg", f"o{i}.jpg"] in names)
    same_area = sum(1 for sx, sy, _ in crops if sx * sy >= POLICY.min_crop_area)
    wrong = sum(1 for g in names if len({n[1:].split(".")[0] for n in g}) > 1)
    shutil.rmtree(folder)
    return (
        f"  dupes, {family}: {joined}/{len(ims)} crops grouped with their original "
        f"({same_area} keep >= {POLICY.min_crop_area:.0%} of the area), {wrong} groups mixing "
        f"pictures; dupes {took:.1f} s after indexing ({indexed - started:.1f} s)"
    )


def lookup_cost() -> list[str]:
    """Seconds of the crop-hash lookups on tables of random hashes (what a large folder costs):
    find's lookup of one query, and dupes' search for pairs."""
    from samepix.crophash import QUERY_CROPS, STORED_CROPS
    from samepix.index import CropTable
    from samepix.variants import crop_candidates, crop_pairs

    rng = np.random.default_rng(0)
    lines = []
    for n, what in ((10_000, "find"), (100_000, "find"), (1_000, "dupes"), (5_000, "dupes")):
        table = CropTable(
            ids=np.arange(n, dtype=np.int64),
            hashes=rng.integers(-(2**63), 2**63 - 1, (n, len(STORED_CROPS), 2), dtype=np.int64),
        )
        query = rng.integers(-(2**63), 2**63 - 1, (len(QUERY_CROPS), 2), dtype=np.int64)
        started = time.perf_counter()
        if what == "find":
            crop_candidates(table, query, 12)
        else:
            crop_pairs(table, 12)
        lines.append(f"  {what} crop lookup, {n:,} files: {time.perf_counter() - started:.2f} s")
    return lines


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    ims = pictures(n)
    with tempfile.TemporaryDirectory() as a:
        with_q = query_is_a_crop(ims, Path(a))
        with_f = folder_holds_a_crop(ims, Path(a))
    saved = (library_module.Library._stored_crop_candidates, variants_module.crop_variants)
    library_module.Library._stored_crop_candidates = lambda *a, **k: iter(())  # type: ignore[method-assign]
    variants_module.crop_variants = lambda *args, **kw: ()  # type: ignore[assignment]
    try:
        with tempfile.TemporaryDirectory() as b:
            without_q = query_is_a_crop(ims, Path(b))
            without_f = folder_holds_a_crop(ims, Path(b))
    finally:
        library_module.Library._stored_crop_candidates, variants_module.crop_variants = saved
    print(f"{len(ims)} pictures, --crop-is-same; found (similar or same) without / with the "
          "lookup, then found as same with it")  # fmt: skip
    for direction, without, with_ in (
        ("query is a crop", without_q, with_q),
        ("folder holds a crop", without_f, with_f),
    ):
        print(f"  {direction}:")
        for key, (hit, same) in with_.items():
            print(f"    {key:28s}: {without[key][0]:.2f} / {hit:.2f}, same {same:.2f}")
    with tempfile.TemporaryDirectory() as d:
        for family in ("sides ≥ 70 %", "area ≥ 50 %"):
            print(dupes_recall(ims, Path(d), family))
    with tempfile.TemporaryDirectory() as c:
        cost = index_cost(ims, Path(c))
    for name, (took, size) in cost.items():
        print(f"  index of {len(ims)} pictures {name:17s}: {took:.2f} s, {size / 1024:.0f} KiB")
    print("\n".join(lookup_cost()))


if __name__ == "__main__":
    main()
