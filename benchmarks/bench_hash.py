"""Perceptual hashing throughput: samepix vs imagehash, from the file on disk to all four hashes.

    python benchmarks/bench_hash.py                # JPEG at 0.5, 2 and 12 MP, PNG at 2 MP
    python benchmarks/bench_hash.py --sizes 0.5,2

Indexing a folder means hashing every image in it, so the number that matters is images per
second from the file: decode included.

- imagehash (the reference: samepix's hashes are bit-identical to it for the same decoded
  input): ``Image.open(path)`` then ``average_hash``, ``dhash``, ``phash``, ``whash`` — the
  four calls a user makes, each converting to grey and resizing the fully decoded image.
- samepix from a full decode: ``samepix.load(path)`` (normalised decode: EXIF, ICC, alpha) and
  its ``hashes`` (all four from one grey image).
- samepix from a draft decode: ``samepix.load(path, lazy=True).hashes``, which for a JPEG
  decodes at reduced size straight from the DCT coefficients (Pillow ``draft``; REFERENCES.md
  found the hashes match the full decode), and for other formats is the full decode.

One process runs everything (hashing needs no fresh process: memory is small); times are
medians over several rounds through a set of distinct files, so no file is served from a
decoder's cache.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from _common import machine, shared_data, table

FILES_PER_SIZE = 6


def photos(count: int) -> list[np.ndarray]:
    from PIL import Image

    data = shared_data()
    if data is not None:
        paths = sorted((data / "photos").glob("*.png"))[:count]
        if paths:
            out = []
            for p in paths:
                with Image.open(p) as im:
                    out.append(np.asarray(im.convert("RGB")))
            return out
    from skimage import data as skdata

    return [np.asarray(getattr(skdata, n)()) for n in ("astronaut", "coffee", "chelsea", "rocket")]


def make_files(pictures: list[np.ndarray], mp: float, fmt: str, folder: Path) -> list[str]:
    from PIL import Image

    paths = []
    for i, x in enumerate(pictures):
        h, w = x.shape[:2]
        s = (mp * 1e6 / (h * w)) ** 0.5
        im = Image.fromarray(x).resize((round(w * s), round(h * s)), Image.Resampling.LANCZOS)
        path = folder / f"{mp}-{i}.{fmt.lower()}"
        im.save(path, quality=90) if fmt == "JPEG" else im.save(path, compress_level=6)
        paths.append(str(path))
    return paths


def imagehash_all(path: str) -> object:
    import imagehash
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        return (
            imagehash.average_hash(im),
            imagehash.dhash(im),
            imagehash.phash(im),
            imagehash.whash(im),
        )


def samepix_full(path: str) -> object:
    from samepix import load

    return load(path).hashes


def samepix_draft(path: str) -> object:
    from samepix import load

    return load(path, lazy=True).hashes


def per_image_ms(fn: Callable[[str], object], paths: list[str], rounds: int) -> float:
    for p in paths[:2]:
        fn(p)  # warm-up: imports, first-call costs
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        for p in paths:
            fn(p)
        samples.append((time.perf_counter() - start) * 1e3 / len(paths))
    return statistics.median(samples)


def agreement(paths: list[str]) -> str:
    """How many of the four hashes samepix's draft path gives exactly as imagehash does."""
    same = total = 0
    for p in paths:
        ref = [str(h) for h in imagehash_all(p)]  # type: ignore[attr-defined]
        ours = samepix_draft(p).as_hex()  # type: ignore[attr-defined]
        for r, o in zip(ref, ours.values(), strict=True):
            same += r == o
            total += 1
    return f"{same}/{total}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.5,2,12", help="JPEG megapixels, comma-separated")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    have_imagehash = importlib.util.find_spec("imagehash") is not None
    pictures = photos(FILES_PER_SIZE)
    print(f"# Hashing: all four hashes from a file ({time.strftime('%Y-%m-%d')})")
    print(f"{machine()}; {len(pictures)} distinct photos per size, JPEG q90 / PNG")
    if not have_imagehash:
        print("imagehash: skipped (not installed)")
    print("ms per image (median over rounds); images/s in brackets\n")
    cases = [(float(s), "JPEG") for s in args.sizes.split(",")] + [(2.0, "PNG")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="samepix-hash-") as tmp:
        for mp, fmt in cases:
            paths = make_files(pictures, mp, fmt, Path(tmp))
            rounds = args.rounds if mp < 10 else max(2, args.rounds // 2)
            draft = per_image_ms(samepix_draft, paths, rounds)
            full = per_image_ms(samepix_full, paths, rounds)
            row = [
                f"{fmt} {mp:g} MP",
                f"{draft:.1f} ({1e3 / draft:.0f}/s)",
                f"{full:.1f} ({1e3 / full:.0f}/s)",
            ]
            if have_imagehash:
                ref = per_image_ms(imagehash_all, paths, rounds)
                row += [
                    f"{ref:.1f} ({1e3 / ref:.0f}/s)",
                    f"{draft / ref:.3f} ({ref / draft:.1f}× faster)",
                    f"{full / ref:.3f} ({ref / full:.1f}× faster)",
                    agreement(paths),
                ]
            else:
                row += ["skipped", "—", "—", "—"]
            rows.append(row)
            print("  measured:", " | ".join(row), file=sys.stderr, flush=True)
    print(
        table(
            [
                "files",
                "samepix, draft decode",
                "samepix, full decode",
                "imagehash, full decode",
                "ratio draft/imagehash",
                "ratio full/imagehash",
                "draft hashes equal to imagehash's",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
