"""The HTML report of a 2,000-file folder, and its screenshot in docs/ (docs/report.md).

Builds a folder of 2,000 pictures from ../shared/data (kodak/ and photos/): every photo is cut
into tiles of 256×192 (each tile a different picture; flat ones left out), and some tiles get
extra copies as people make them — a re-encode at another JPEG quality, a PNG or WebP, a 75 %
resize, a byte copy in a backup folder. Then runs ``samepix dupes FOLDER --html``, opens the
report in headless Chromium (Debian's chromium + chromium-driver, via Selenium), checks the
console is clean, prints the measurements and saves a screenshot of the top of the report
(quantised PNG, under 300 kB).

Run (from the repository root, with the browser extra installed):

    python benchmarks/report_screenshot.py --out docs/report.png [--folder /tmp/samepix-2000]
"""

from __future__ import annotations

import argparse
import io
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image, ImageStat

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
TILE = (256, 192)
FILES = 2000
# Tiles of clear sky or a plain wall are left out: two such crops of different photos are the same
# picture to every measure (samepix groups them, rightly), which is not what a folder of photos
# holds.
MIN_DETAIL = 30.0


def tiles() -> list[Image.Image]:
    """Every 256×192 tile with detail (grey standard deviation at least :data:`MIN_DETAIL`) of
    every photo (photos over 2,048 px wide are halved first)."""
    sources = sorted((DATA / "kodak").glob("*.png")) + sorted((DATA / "photos").glob("*.png"))
    if not sources:
        sys.exit(f"no photos under {DATA}: this needs ../shared/data")
    out = []
    for path in sources:
        with Image.open(path) as im:
            im = im.convert("RGB")
            if im.width > 2048:
                im = im.resize((im.width // 2, im.height // 2), Image.Resampling.LANCZOS)
            for y in range(0, im.height - TILE[1] + 1, TILE[1]):
                for x in range(0, im.width - TILE[0] + 1, TILE[0]):
                    tile = im.crop((x, y, x + TILE[0], y + TILE[1]))
                    if ImageStat.Stat(tile.convert("L")).stddev[0] >= MIN_DETAIL:
                        out.append(tile)
    return out


def encode(im: Image.Image, fmt: str, **options: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format=fmt, **options)
    return buf.getvalue()


def build(folder: Path, rng: random.Random) -> dict[str, int]:
    """Write the folder; counts of what was made."""
    pictures = tiles()
    rng.shuffle(pictures)
    for sub in ("camera", "phone", "web", "backup"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    written = 0
    copies = 0
    originals: list[tuple[Image.Image, Path]] = []
    for n, im in enumerate(pictures):
        path = folder / "camera" / f"IMG_{n:04d}.jpg"
        path.write_bytes(encode(im, "JPEG", quality=92))
        originals.append((im, path))
        written += 1
    variants = [
        ("phone", "jpg", lambda im: encode(im, "JPEG", quality=rng.choice((60, 75, 85)))),
        ("web", "webp", lambda im: encode(im, "WEBP", quality=80)),
        ("web", "png", lambda im: encode(im, "PNG")),
        (
            "phone",
            "jpg",
            lambda im: encode(im.resize((192, 144), Image.Resampling.LANCZOS), "JPEG", quality=85),
        ),
        ("backup", "jpg", None),  # a byte copy
    ]
    while written < FILES:
        im, original = rng.choice(originals)
        sub, ext, make = rng.choice(variants)
        path = folder / sub / f"{original.stem}_{written:04d}.{ext}"
        path.write_bytes(original.read_bytes() if make is None else make(im))
        written += 1
        copies += 1
    return {"pictures": len(pictures), "files": written, "extra copies": copies}


def screenshot(report: Path, out: Path) -> dict[str, float]:
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = shutil.which("chromium") or "chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    try:
        started = time.perf_counter()
        driver.get(report.resolve().as_uri())
        driver.find_element("css selector", "section.item")
        opened = time.perf_counter() - started
        time.sleep(0.5)  # the first pictures decode
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        if errors:
            sys.exit(f"console errors: {errors}")
        png = driver.get_screenshot_as_png()
    finally:
        driver.quit()
    image = Image.open(io.BytesIO(png)).convert("RGB")
    small = image.quantize(colors=96, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    small.save(out, format="PNG", optimize=True)
    return {"opened_s": opened}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "report.png")
    parser.add_argument("--folder", type=Path, help="build the folder here (default: a temp dir)")
    parser.add_argument("--seed", type=int, default=12)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="samepix-report-"))
    folder = args.folder or base / "pictures"
    if folder.exists():
        shutil.rmtree(folder)
    counts = build(folder, random.Random(args.seed))
    report = base / "report.html"
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "samepix", "dupes", str(folder), "--html", str(report)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
    )
    elapsed = time.perf_counter() - started
    if proc.returncode not in (0, 1):
        sys.exit(proc.stderr)
    summary = proc.stdout.strip().splitlines()[-1]
    shot = screenshot(report, args.out)
    print(f"folder: {folder} ({counts['files']:,} files, {counts['pictures']:,} distinct tiles)")
    print(f"dupes --html: {summary}; {elapsed:.1f} s (index, search, report)")
    print(f"report: {report} ({report.stat().st_size / 1e6:.1f} MB)")
    print(
        f"opened in Chromium in {shot['opened_s']:.2f} s; screenshot {args.out} "
        f"({args.out.stat().st_size / 1000:.0f} kB)"
    )


if __name__ == "__main__":
    main()
