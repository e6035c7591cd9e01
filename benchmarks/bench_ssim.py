"""SSIM and PSNR: samepix.metrics against scikit-image, side by side in one run.

    python benchmarks/bench_ssim.py            # 0.5, 2 and 12 megapixels, grey and RGB
    python benchmarks/bench_ssim.py --sizes 0.5,2

scikit-image runs in its reference setting for samepix's SSIM (REFERENCES.md, "Which SSIM"):
``structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
data_range=255)``, with ``channel_axis=2`` for RGB (the mean over channels; samepix's side is
the mean of :func:`samepix.metrics.ssim_channels`). PSNR is compared with
``skimage.metrics.peak_signal_noise_ratio``.

The images are a real photograph from ../shared/data/photos (scikit-image's astronaut when
that folder is absent) resized with Lanczos to each size, against a JPEG quality-75 copy.
Every measurement runs in a fresh subprocess: the time is the median of several calls, and the
peak memory is the process's peak resident set (VmHWM) minus its resident set once the inputs
are loaded — tracemalloc would miss OpenCV's allocations.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import reset_peak, status_kib

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "photos"
SKIMAGE_SETTING = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
}
# Repetitions per measurement: (samepix, scikit-image) by size; scikit-image's 12 MP RGB SSIM
# takes about 4 s a call.
REPS = {0.5: (15, 5), 2.0: (9, 3), 12.0: (5, 2)}
MISSING = "skipped: scikit-image not installed"


# --------------------------------------------------------------------------------------------
# Worker: one measurement in a fresh process


def _max_rss_kib() -> int:
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak  # bytes on macOS


def worker(impl: str, metric: str, path_a: str, path_b: str, reps: int) -> None:
    if impl == "samepix":
        sys.path.insert(0, str(ROOT / "src"))
        from samepix import metrics

        def run(a: np.ndarray, b: np.ndarray) -> float:
            if metric == "psnr":
                return metrics.psnr(a, b)
            if a.ndim == 3:
                return float(np.mean(metrics.ssim_channels(a, b)))
            return metrics.ssim(a, b).mean

    else:
        from skimage import metrics as skm

        def run(a: np.ndarray, b: np.ndarray) -> float:
            if metric == "psnr":
                return float(skm.peak_signal_noise_ratio(a, b, data_range=255))
            axis = 2 if a.ndim == 3 else None
            return float(skm.structural_similarity(a, b, channel_axis=axis, **SKIMAGE_SETTING))

    a, b = np.load(path_a), np.load(path_b)
    base = status_kib("VmRSS")
    exact = base is not None and reset_peak()
    if base is None:
        base = _max_rss_kib()
    times, value = [], 0.0
    for _ in range(reps):
        start = time.perf_counter()
        value = run(a, b)
        times.append((time.perf_counter() - start) * 1e3)
    peak = (status_kib("VmHWM") if exact else None) or _max_rss_kib()
    print(
        json.dumps(
            {
                "ms": statistics.median(times),
                "peak_mib": max(0, peak - base) / 1024,
                "value": value,
                "exact_peak": exact,
            }
        )
    )


# --------------------------------------------------------------------------------------------
# Driver


def source_image() -> tuple[np.ndarray, str]:
    from PIL import Image

    if PHOTOS.is_dir():
        photos = sorted(PHOTOS.glob("*.png"))
        if photos:
            with Image.open(photos[0]) as im:
                return np.asarray(im.convert("RGB")), f"{photos[0].name} from {PHOTOS}"
    if importlib.util.find_spec("skimage") is not None:
        from skimage import data

        return np.asarray(data.astronaut()), "scikit-image astronaut"
    # Last resort: a smooth synthetic scene with texture, so JPEG has something to lose.
    y, x = np.mgrid[0:512, 0:768].astype(np.float64)
    rng = np.random.default_rng(0)
    planes = [
        128 + 90 * np.sin(x / (40 + 15 * c)) * np.cos(y / 55) + rng.normal(0, 12, x.shape)
        for c in range(3)
    ]
    return np.clip(np.stack(planes, axis=2), 0, 255).astype(np.uint8), "synthetic pattern"


def make_inputs(
    photo: np.ndarray, megapixels: float, folder: Path
) -> dict[str, tuple[str, str, tuple[int, int]]]:
    from PIL import Image

    h, w = photo.shape[:2]
    scale = (megapixels * 1e6 / (h * w)) ** 0.5
    size = (round(w * scale), round(h * scale))
    a = Image.fromarray(photo).resize(size, Image.LANCZOS)
    buf = io.BytesIO()
    a.save(buf, format="JPEG", quality=75)
    b = Image.open(io.BytesIO(buf.getvalue()))
    paths = {}
    for kind, (ia, ib) in {
        "grey": (a.convert("L"), b.convert("L")),
        "RGB": (a, b.convert("RGB")),
    }.items():
        pa, pb = folder / f"{megapixels}-{kind}-a.npy", folder / f"{megapixels}-{kind}-b.npy"
        np.save(pa, np.asarray(ia))
        np.save(pb, np.asarray(ib))
        paths[kind] = (str(pa), str(pb), size)
    return paths


def fmt_ms(ms: float) -> str:
    return f"{ms:.2f}" if ms < 10 else f"{ms:.1f}"


def measure(impl: str, metric: str, pa: str, pb: str, reps: int) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--worker", impl, metric, pa, pb, str(reps)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"{impl} {metric} failed:\n{done.stderr}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.5,2,12", help="megapixels, comma-separated")
    parser.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, metric, pa, pb, reps = args.worker
        worker(impl, metric, pa, pb, int(reps))
        return

    have_skimage = importlib.util.find_spec("skimage") is not None
    import cv2

    versions = f"numpy {np.__version__}, OpenCV {cv2.__version__}"
    if have_skimage:
        import skimage

        versions += f", scikit-image {skimage.__version__}"
    photo, source = source_image()
    print(f"# SSIM / PSNR: samepix vs scikit-image ({platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"{versions}; image: {source} vs its JPEG q75 copy")
    print("time: median ms per call; peak: MiB above the RSS with the inputs loaded\n")
    if not have_skimage:
        print(MISSING + "\n")

    header = ["metric", "image", "size", "samepix ms", "scikit-image ms", "speed-up"]
    header += ["samepix peak MiB", "scikit-image peak MiB", "|Δ value|"]
    rows = []
    sizes = [float(s) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="samepix-bench-") as tmp:
        for mp in sizes:
            inputs = make_inputs(photo, mp, Path(tmp))
            ours_reps, their_reps = REPS.get(mp, (5, 2))
            for metric in ("ssim", "psnr"):
                for kind in ("grey", "RGB"):
                    pa, pb, (w, h) = inputs[kind]
                    ours = measure("samepix", metric, pa, pb, ours_reps)
                    row = [metric.upper(), kind, f"{mp:g} MP ({w}×{h})", fmt_ms(ours["ms"])]
                    if have_skimage:
                        reps = their_reps if metric == "ssim" else max(their_reps, 3)
                        theirs = measure("skimage", metric, pa, pb, reps)
                        row += [
                            fmt_ms(theirs["ms"]),
                            f"{theirs['ms'] / ours['ms']:.1f}×",
                            f"{ours['peak_mib']:.1f}",
                            f"{theirs['peak_mib']:.1f}",
                            f"{abs(ours['value'] - theirs['value']):.1e}",
                        ]
                    else:
                        row += [MISSING, "—", f"{ours['peak_mib']:.1f}", "—", "—"]
                    rows.append(row)
                    print("  measured:", " | ".join(row), file=sys.stderr, flush=True)

    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(" --- " for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")


if __name__ == "__main__":
    main()
