"""Recall of ``find`` for crops keeping most of the picture, with and without its crop stage.

Built from ../shared/data (Kodak and photos/, each reduced to at most 1024 px): for each picture,
crops keeping 81 %, 64 % and 49 % of the area (linear 0.9, 0.8, 0.7) at the centre, a corner and
an off-centre position, saved as JPEG q85. Two directions:

- "query is a crop": the folder holds the originals, the query is a crop;
- "folder holds a crop": one folder per crop setting holds that crop of every picture, the query
  is the original (re-encoded at q88).

A hit is the right file among ``find``'s matches or similar files. "without" disables the crop
stage (no crop variants of the query, no unscreened candidates), which is what find did before.

    python benchmarks/crop_recall.py [N_PICTURES]
"""

from __future__ import annotations

import glob
import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image

import samepix
import samepix.library as library_module
import samepix.variants as variants_module

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SETTINGS = [(s, w) for s in (0.9, 0.8, 0.7) for w in ("centre", "corner", "offset")]


def pictures(n: int) -> list[Image.Image]:
    files = sorted(glob.glob(str(DATA / "kodak" / "*.png")))[: n // 2]
    files += sorted(glob.glob(str(DATA / "photos" / "*")))[: n - len(files)]
    out = []
    for f in files:
        im = Image.open(f).convert("RGB")
        im.thumbnail((1024, 1024))
        out.append(im)
    return out


def crop(im: Image.Image, scale: float, where: str) -> Image.Image:
    w, h = im.size
    cw, ch = round(w * scale), round(h * scale)
    x = {"centre": (w - cw) // 2, "corner": 0, "offset": (w - cw) // 3}[where]
    y = {"centre": (h - ch) // 2, "corner": 0, "offset": (h - ch) * 2 // 3}[where]
    return im.crop((x, y, x + cw, y + ch))


def run(ims: list[Image.Image], tmp: Path) -> dict[tuple[str, float, str], float]:
    results = {}
    folder = tmp / "originals"
    folder.mkdir()
    for i, im in enumerate(ims):
        im.save(folder / f"o{i}.jpg", quality=90)
        im.save(tmp / f"q{i}.jpg", quality=88)
    with samepix.Library(folder) as lib:
        lib.update()
        for scale, where in SETTINGS:
            hit = 0
            for i, im in enumerate(ims):
                q = tmp / "query.jpg"
                crop(im, scale, where).save(q, quality=85)
                r = lib.find(q, update=False)
                hit += any(m.path.name == f"o{i}.jpg" for m in (*r.matches, *r.similar))
            results[("query is a crop", scale, where)] = hit / len(ims)
    for scale, where in SETTINGS:
        crops = tmp / f"crops-{scale}-{where}"
        crops.mkdir()
        for i, im in enumerate(ims):
            crop(im, scale, where).save(crops / f"c{i}.jpg", quality=85)
        with samepix.Library(crops) as lib:
            lib.update()
            hit = 0
            for i in range(len(ims)):
                r = lib.find(tmp / f"q{i}.jpg", update=False)
                hit += any(m.path.name == f"c{i}.jpg" for m in (*r.matches, *r.similar))
            results[("folder holds a crop", scale, where)] = hit / len(ims)
        shutil.rmtree(crops)
    shutil.rmtree(folder)
    return results


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 12
    ims = pictures(n)
    with tempfile.TemporaryDirectory() as a:
        with_stage = run(ims, Path(a))
    saved = (variants_module.crop_variants, library_module._CROP_CANDIDATES)
    variants_module.crop_variants = lambda *args, **kw: ()  # type: ignore[assignment]
    library_module._CROP_CANDIDATES = 0
    try:
        with tempfile.TemporaryDirectory() as b:
            without = run(ims, Path(b))
    finally:
        variants_module.crop_variants, library_module._CROP_CANDIDATES = saved
    print(f"{len(ims)} pictures; recall without / with the crop stage")
    for key in with_stage:
        direction, scale, where = key
        print(
            f"  {direction:20s} {scale**2:4.0%} of the area, {where:6s}: "
            f"{without[key]:.2f} / {with_stage[key]:.2f}"
        )


if __name__ == "__main__":
    main()
