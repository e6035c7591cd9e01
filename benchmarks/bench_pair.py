"""The whole job for one pair: samepix vs the script a user writes today, and vs ImageMagick.

    python benchmarks/bench_pair.py                # 0.5, 2 and 12 megapixels
    python benchmarks/bench_pair.py --sizes 0.5,2

"The whole job" is what answers "is b the same picture as a?" from two files on disk: decode
both, bring them to one size, compute the metrics, decide.

- samepix: ``samepix.compare(path_a, path_b)`` — decode (EXIF, ICC, alpha normalised), align,
  luma SSIM and its map, per-channel SSIM, worst region, MS-SSIM, PSNR, NRMSE, colour shift,
  four perceptual hashes, verdict.
- Pillow + scikit-image, the classic recipe: ``Image.open`` → RGB array, LANCZOS-resize the
  larger to the smaller when sizes differ, SSIM per band in scikit-image's reference setting
  (Gaussian σ 1.5, population covariance: REFERENCES.md), the lowest band against a threshold.
  It computes less than samepix does (one SSIM per band, no map, no MS-SSIM, no hashes).
- ImageMagick ``compare -metric PSNR`` (and ``-metric SSIM`` where this ImageMagick has it) as
  a whole process, where installed; samepix's CLI ``samepix compare --json`` likewise as a
  whole process, imports included. Skipped, saying so, where ImageMagick is absent.

Two pairs per size: a JPEG q95 "copy on disk" against a JPEG q75 copy of the same size, and
against a JPEG q75 copy at half the size (the resize case; ImageMagick's compare would search
for a sub-image there, so it only runs the same-size pair). Every measurement runs in a fresh
process; times are medians of several calls after a warm-up call, peak memory is the
process's peak resident set above its resident set before the first call (VmHWM).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import ROOT, machine, measure_in_process, report_timed, shared_data, table

SKIMAGE_SETTING = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
}
REPS = {0.5: (9, 5, 5), 2.0: (7, 3, 5), 12.0: (5, 2, 3)}  # samepix, scikit-image, processes


# --------------------------------------------------------------------------------------------
# Workers: one implementation, in its own process


def samepix_job(path_a: str, path_b: str) -> float:
    from samepix import compare

    result = compare(path_a, path_b)
    assert result.metrics.ssim is not None
    return result.metrics.ssim_min_channel or result.metrics.ssim


def classic_job(path_a: str, path_b: str) -> float:
    from PIL import Image
    from skimage.metrics import structural_similarity

    with Image.open(path_a) as ia, Image.open(path_b) as ib:
        a, b = ia.convert("RGB"), ib.convert("RGB")
    if a.size != b.size:
        if a.size[0] * a.size[1] > b.size[0] * b.size[1]:
            a = a.resize(b.size, Image.Resampling.LANCZOS)
        else:
            b = b.resize(a.size, Image.Resampling.LANCZOS)
    xa, xb = np.asarray(a), np.asarray(b)
    return min(
        float(structural_similarity(xa[..., i], xb[..., i], **SKIMAGE_SETTING)) for i in range(3)
    )


def worker(impl: str, path_a: str, path_b: str, reps: int) -> None:
    src = os.environ.get("SAMEPIX_SRC")
    if src:  # time another checkout's samepix (before/after comparisons)
        sys.path.insert(0, src)
    job = samepix_job if impl == "samepix" else classic_job
    report_timed(lambda: job(path_a, path_b), reps)


def measure(impl: str, path_a: str, path_b: str, reps: int) -> dict[str, float]:
    return measure_in_process(__file__, impl, path_a, path_b, reps)


def process_ms(cmd: list[str], reps: int, ok_codes: tuple[int, ...] = (0, 1)) -> float | str:
    """Median wall time of a whole process (after one warm-up run), or why it could not run."""
    # samepix from this checkout (or from --src)
    env = {**os.environ, "PYTHONPATH": os.environ.get("SAMEPIX_SRC") or str(ROOT / "src")}
    times = []
    for i in range(reps + 1):
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
        elapsed = (time.perf_counter() - start) * 1e3
        if done.returncode not in ok_codes:
            return f"failed: {done.stderr.strip().splitlines()[-1][:80]}"
        if i:
            times.append(elapsed)
    return statistics.median(times)


# --------------------------------------------------------------------------------------------
# Driver


def source_image() -> tuple[np.ndarray, str]:
    from PIL import Image

    data = shared_data()
    if data is not None and sorted((data / "photos").glob("*.png")):
        path = sorted((data / "photos").glob("*.png"))[0]
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB")), f"photos/{path.name}"
    from skimage import data as skdata

    return np.asarray(skdata.astronaut()), "scikit-image astronaut"


def make_files(photo: np.ndarray, mp: float, folder: Path) -> tuple[str, str, str, tuple[int, int]]:
    from PIL import Image

    h, w = photo.shape[:2]
    scale = (mp * 1e6 / (h * w)) ** 0.5
    size = (round(w * scale), round(h * scale))
    big = Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS)
    a, b, half = (folder / f"{mp}-{n}.jpg" for n in ("a", "b", "half"))
    big.save(a, quality=95)
    big.save(b, quality=75)
    big.resize((size[0] // 2, size[1] // 2), Image.Resampling.LANCZOS).save(half, quality=75)
    return str(a), str(b), str(half), size


def ratio(ours: float, theirs: float | str) -> str:
    if isinstance(theirs, str):
        return "—"
    if ours <= theirs:
        return f"{ours / theirs:.3f} ({theirs / ours:.1f}× faster)"
    return f"{ours / theirs:.3f} ({ours / theirs:.1f}× slower)"


def fmt(v: float | str | None, digits: int = 0) -> str:
    if v is None:
        return "—"
    return v if isinstance(v, str) else f"{v:.{digits}f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.5,2,12", help="megapixels, comma-separated")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    parser.add_argument(
        "--src", help="time the samepix in this src/ folder instead (before/after comparisons)"
    )
    parser.add_argument("--no-peers", action="store_true", help="samepix only")
    args = parser.parse_args()
    if args.worker:
        impl, pa, pb, reps = args.worker
        worker(impl, pa, pb, int(reps))
        return
    if args.src:
        os.environ["SAMEPIX_SRC"] = str(Path(args.src).resolve())
        print(f"samepix from {os.environ['SAMEPIX_SRC']}")

    have_skimage = importlib.util.find_spec("skimage") is not None and not args.no_peers
    magick = None if args.no_peers else shutil.which("magick")
    plain = None if args.no_peers else shutil.which("compare")
    im_compare = [magick, "compare"] if magick else ([plain] if plain else None)
    samepix_cli = [sys.executable, "-m", "samepix"]
    photo, source = source_image()
    today = time.strftime("%Y-%m-%d")
    print(f"# Whole pair: samepix vs Pillow + scikit-image vs ImageMagick ({today})")
    print(f"{machine()}; image: {source}, JPEG q95 vs JPEG q75 (same size, or half size)")
    if not have_skimage:
        print("Pillow + scikit-image: skipped (scikit-image not installed)")
    im_version = ""
    im_metrics: set[str] = set()
    if im_compare is None:
        print("ImageMagick: skipped (not installed; `apt-get install imagemagick` to include it)")
    else:
        out = subprocess.run([*im_compare, "-version"], capture_output=True, text=True, check=False)
        im_version = out.stdout.splitlines()[0] if out.stdout else "ImageMagick"
        print(im_version)
        listed = subprocess.run(
            [*im_compare, "-list", "metric"], capture_output=True, text=True, check=False
        )
        im_metrics = set(listed.stdout.split())
    print("time: median ms; peak: MiB above the process's resident set before the first call\n")

    rows, cli_rows = [], []
    env_note = "samepix CLI: `python -m samepix compare A B --json`"
    with tempfile.TemporaryDirectory(prefix="samepix-pair-") as tmp:
        for mp in (float(s) for s in args.sizes.split(",")):
            a, b, half, (w, h) = make_files(photo, mp, Path(tmp))
            ours_reps, their_reps, proc_reps = REPS.get(mp, (5, 2, 3))
            for label, other in (("same size", b), ("half size", half)):
                ours = measure("samepix", a, other, ours_reps)
                row = [f"{mp:g} MP ({w}×{h})", label, fmt(ours["ms"]), fmt(ours["peak_mib"], 1)]
                if have_skimage:
                    theirs = measure("classic", a, other, their_reps)
                    row += [
                        fmt(theirs["ms"]),
                        fmt(theirs["peak_mib"], 1),
                        ratio(ours["ms"], theirs["ms"]),
                    ]
                else:
                    row += ["skipped", "—", "—"]
                rows.append(row)
                print("  measured:", " | ".join(row), file=sys.stderr, flush=True)
            # Whole processes, same-size pair only.
            cli = process_ms([*samepix_cli, "compare", a, b, "--json"], proc_reps)
            crow = [f"{mp:g} MP", fmt(cli)]
            for metric in ("PSNR", "SSIM"):
                if im_compare is None:
                    crow += ["skipped: not installed", "—"]
                    continue
                if metric not in im_metrics:
                    crow += [f"skipped: {im_version.split(' http')[0]} has no {metric}", "—"]
                    continue
                t = process_ms([*im_compare, "-metric", metric, a, b, "null:"], proc_reps)
                crow += [fmt(t), ratio(cli, t) if isinstance(cli, float) else "—"]
            cli_rows.append(crow)
            print("  measured:", " | ".join(crow), file=sys.stderr, flush=True)

    print(
        table(
            [
                "size",
                "pair",
                "samepix ms",
                "samepix peak MiB",
                "Pillow+skimage ms",
                "Pillow+skimage peak MiB",
                "ratio samepix/other",
            ],
            rows,
        )
    )
    im_note = "ImageMagick `compare -metric M A B null:`"
    print(f"\nWhole processes, same-size pair ({env_note}; {im_note}):\n")
    print(
        table(
            [
                "size",
                "samepix CLI ms",
                "IM PSNR ms",
                "ratio samepix/IM PSNR",
                "IM SSIM ms",
                "ratio samepix/IM SSIM",
            ],
            cli_rows,
        )
    )


if __name__ == "__main__":
    main()
