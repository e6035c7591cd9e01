"""Peak memory and time of the largest legal inputs, and the memory model checked against them.

    python benchmarks/bench_limits.py            # the largest inputs (a few minutes)
    python benchmarks/bench_limits.py --model    # estimate vs measured peak, 24 MP per format

Each case runs in a fresh process; its peak resident memory is that child's own ``ru_maxrss``
(``os.wait4``), its time the wall time of the whole command (interpreter start included).
Side by side, the same file decoded the way a user would without samepix: Pillow's
``Image.open(...).load()`` followed by ``np.asarray`` (what most scripts do), in the same run.

The largest legal inputs are the hostile set's 196 MP 16-bit PNG and 200 MP TIFF
(``../shared/data/hostile``), and a 196 MP 8-bit RGB PNG, a 200 MP RGB TIFF and a 196 MP still
WebP made here (a smooth gradient, so the files stay small). ``--only WebP`` runs the cases
whose label has "WebP".
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from _common import ROOT, machine, shared_data, table

SAMEPIX_COMPARE = "import sys; from samepix import compare; compare(sys.argv[1], sys.argv[2])"
SAMEPIX_LOAD = "import sys; from samepix import load; p = load(sys.argv[1]); p.hashes"
PILLOW_LOAD = (
    "import sys, numpy as np; from PIL import Image; Image.MAX_IMAGE_PIXELS = None; "
    "im = Image.open(sys.argv[1]); im.load(); a = np.asarray(im)"
)
ESTIMATE = (
    "import sys; from samepix.decode import memory_facts; from samepix.limits import "
    "decode_memory; from samepix.sources import read_source; "
    "f = memory_facts(read_source(sys.argv[1])); "
    "print(decode_memory(f.width, f.height, f.mode, f.format, has_alpha=f.has_alpha, "
    "direct=f.direct, encoded=f.encoded))"
)


# A small launcher: the measured command's ru_maxrss then counts only its own pages (Linux keeps
# the parent's high-water mark across fork/vfork + exec, so a big parent would be counted).
PEAK_LAUNCHER = (
    "import os, sys; pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ); "
    "_, status, usage = os.wait4(pid, 0); "
    "open(sys.argv[1], 'w').write(f'{usage.ru_maxrss * 1024} {os.waitstatus_to_exitcode(status)}')"
)


def estimate(path: Path) -> str:
    """samepix's memory estimate for ``path`` (bytes, as text), from a fresh process."""
    return subprocess.run(
        [sys.executable, "-c", ESTIMATE, str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src")},
        check=True,
    ).stdout.strip()


def run_wait4(code: str, *args: str) -> tuple[float, int, int]:
    """(seconds, peak RSS bytes of that child alone, exit status)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", PEAK_LAUNCHER, report.name, sys.executable, "-c", code, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=env,
            check=True,
        )
        seconds = time.perf_counter() - start
        peak, code_ = (int(x) for x in report.read().split())
    return seconds, peak, code_


def _gradient(side: int) -> np.ndarray:
    y = np.linspace(0, 255, side, dtype=np.float32)
    img = np.empty((side, side, 3), np.uint8)
    for c in range(3):
        img[:, :, c] = (y[:, None] * (c + 1) / 3 + y[None, :] * (3 - c) / 3) / 2
    return img


def largest(folder: Path, reps: int, only: str) -> None:
    hostile = shared_data()
    if hostile is None:
        sys.exit("../shared/data is absent: the hostile files are needed")
    small = hostile / "hostile" / "small_100x100.png"
    rgb = folder / "rgb_14000x14000.png"
    if not rgb.exists() and "PNG" in (only or "PNG"):
        Image.fromarray(_gradient(14000)).save(rgb, compress_level=9)
    webp = folder / "rgb_14000x14000.webp"
    if not webp.exists() and "WebP" in (only or "WebP"):
        # lossless: a lossy 196 MP frame overflows VP8's first partition (512 kB of modes)
        Image.fromarray(_gradient(14000)).save(webp, lossless=True, method=0)
    tiff = folder / "rgb_14142x14142.tif"
    if not tiff.exists() and "TIFF" in (only or "TIFF"):
        Image.fromarray(_gradient(14142)).save(tiff, compression="tiff_deflate")
    cases = [
        ("196 MP RGB 8-bit PNG", rgb),
        ("200 MP RGB TIFF (deflate)", tiff),
        ("196 MP RGB still WebP (lossless)", webp),
        ("196 MP grey 16-bit PNG", hostile / "hostile" / "legal_14000x14000_16bit.png"),
        ("200 MP grey TIFF (deflate)", hostile / "hostile" / "tiff_14142x14142_grey_deflate.tif"),
    ]
    rows = []
    for label, path in cases:
        if only and only not in label:
            continue
        results: dict[str, list[tuple[float, int, int]]] = {"samepix": [], "pillow": [], "cmp": []}
        for _ in range(reps):  # interleaved, so load drifts hit every tool alike
            results["pillow"].append(run_wait4(PILLOW_LOAD, str(path)))
            results["samepix"].append(run_wait4(SAMEPIX_LOAD, str(path)))
            results["cmp"].append(run_wait4(SAMEPIX_COMPARE, str(path), str(small)))
        est = estimate(path)

        s, p, c = (min(results[k], key=lambda r: r[0]) for k in ("samepix", "pillow", "cmp"))
        rows.append(
            [
                label,
                f"{path.stat().st_size / 1e6:.1f} MB",
                f"{s[0]:.1f} s / {s[1] / 2**30:.2f} GiB" + ("" if s[2] == 0 else f" (exit {s[2]})"),
                f"{c[0]:.1f} s / {c[1] / 2**30:.2f} GiB" + ("" if c[2] == 0 else f" (exit {c[2]})"),
                f"{int(est) / 2**30:.2f} GiB",
                f"{p[0]:.1f} s / {p[1] / 2**30:.2f} GiB" + ("" if p[2] == 0 else f" (exit {p[2]})"),
            ]
        )
    print(
        table(
            [
                "input",
                "file",
                "samepix load + hashes",
                "samepix compare with 100×100",
                "estimate (decode)",
                "Pillow load + np.asarray",
            ],
            rows,
        )
    )


def model(folder: Path) -> None:
    """The estimate against the measured peak of ``load`` (decode + hashes), 24 MP each."""
    w, h = 6000, 4000
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (h // 8, w // 8, 3), dtype=np.uint8)
    rgb = np.asarray(Image.fromarray(base).resize((w, h), Image.Resampling.BILINEAR))
    alpha = np.asarray(Image.fromarray(base[:, :, 0]).resize((w, h)))
    cases = {
        "JPEG RGB": (Image.fromarray(rgb), "JPEG", {"quality": 90}),
        "JPEG CMYK": (Image.fromarray(rgb).convert("CMYK"), "JPEG", {"quality": 90}),
        "PNG RGB": (Image.fromarray(rgb), "PNG", {"compress_level": 1}),
        "PNG RGBA": (Image.fromarray(np.dstack([rgb, alpha])), "PNG", {"compress_level": 1}),
        "PNG P": (Image.fromarray(rgb).quantize(256), "PNG", {}),
        "PNG I;16": (
            Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257),
            "PNG",
            {"compress_level": 1},
        ),
        "WebP RGB": (Image.fromarray(rgb), "WEBP", {"quality": 80}),
        "TIFF RGB": (Image.fromarray(rgb), "TIFF", {"compression": "tiff_deflate"}),
        "GIF": (Image.fromarray(rgb).quantize(256), "GIF", {}),
    }
    rows = []
    for label, (im, fmt, options) in cases.items():
        path = folder / f"model-{label.replace(' ', '_').replace(';', '')}.{fmt.lower()}"
        if not path.exists():
            im.save(path, fmt, **options)
        seconds, peak, code = run_wait4(SAMEPIX_LOAD, str(path))
        est = estimate(path)
        rows.append(
            [
                label,
                f"{peak / 2**20:.0f} MiB" + ("" if code == 0 else f" (exit {code})"),
                f"{int(est) / 2**20:.0f} MiB",
                f"{int(est) / peak:.2f}",
                f"{seconds:.1f} s",
            ]
        )
    print(table(["24 MP file", "measured peak", "estimate", "estimate / peak", "time"], rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="store_true", help="estimate vs measured, per format")
    parser.add_argument("--reps", type=int, default=1, help="interleaved repetitions (best kept)")
    parser.add_argument("--only", default="", help="only the largest inputs whose label has this")
    parser.add_argument("--dir", help="where the generated inputs are kept (default: a temp dir)")
    args = parser.parse_args()
    print(machine())
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) at start")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.dir) if args.dir else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        if args.model:
            model(folder)
        else:
            largest(folder, args.reps, args.only)
    print(f"load average: {os.getloadavg()[0]:.2f} (1 min) at the end")


if __name__ == "__main__":
    main()
