"""How far apart a picture's mirror image is from it in dupes' turned-thumbnail bits
(samepix.variants.turned_pairs: 112 signs of the steps of the index thumbnail's 8×8 means),
against the distance between different pictures. Sets ``MAX_TURNED_DISTANCE``.

Each picture (Kodak, and the first 30 of photos/, reduced to at most 1600 px) is described as
the index describes a file, saved at JPEG q90; its left-right mirror at JPEG q75.

    python benchmarks/turned_thumbs.py
"""

from __future__ import annotations

import glob
import io
from pathlib import Path

import numpy as np
from PIL import Image

from samepix.index import describe_blob
from samepix.sources import Blob

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def grid(image: Image.Image, quality: int) -> np.ndarray:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=quality)
    thumb = describe_blob(Blob(out.getvalue(), "x")).thumb
    t = np.frombuffer(thumb, np.uint8).reshape(16, 16).astype(np.float32)
    means: np.ndarray = t.reshape(8, 2, 8, 2).mean(axis=(1, 3))
    return means


def bits(m: np.ndarray) -> np.ndarray:
    return np.concatenate([(np.diff(m, axis=1) > 0).ravel(), (np.diff(m, axis=0) > 0).ravel()])


def main() -> None:
    files = sorted(glob.glob(str(DATA / "kodak" / "*.png")))
    files += sorted(glob.glob(str(DATA / "photos" / "*")))[:30]
    originals, mirrors = [], []
    for f in files:
        im = Image.open(f).convert("RGB")
        im.thumbnail((1600, 1600))
        originals.append(grid(im, 90))
        mirrors.append(grid(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 75))
    true = [
        int((bits(np.fliplr(o)) != bits(m)).sum()) for o, m in zip(originals, mirrors, strict=True)
    ]
    false = [
        int((bits(np.fliplr(o)) != bits(m)).sum())
        for i, o in enumerate(originals)
        for j, m in enumerate(mirrors)
        if i != j
    ]
    print(f"{len(files)} pictures: mirror pairs at most {max(true)} bits apart; {len(false)} "
          f"pairs of different pictures at least {min(false)} "
          f"(1st percentile {np.percentile(false, 1):.0f})")  # fmt: skip


if __name__ == "__main__":
    main()
