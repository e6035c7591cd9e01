"""SSIM: samepix vs the classic StackOverflow ``fftconvolve`` SSIM, and vs pytorch-msssim.

    python benchmarks/bench_ssim_peers.py            # 0.5, 2 and 12 megapixels, grey and RGB
    python benchmarks/bench_ssim_peers.py --sizes 0.5,2

(``bench_ssim.py`` measures samepix against scikit-image's reference setting.)

- The classic answer: the SSIM map of Wang et al. written with ``scipy.signal.fftconvolve``
  of an 11×11 Gaussian window (σ 1.5) in ``'valid'`` mode over float64 images, as in the
  well-known StackOverflow answer ("SSIM in Python" / "fspecial_gauss"); its mean is the same
  number as samepix's (the |Δ value| column shows it), one colour band at a time.
- pytorch-msssim's ``ssim`` on the CPU (N×C×H×W float tensors, ``data_range=255``; the same
  window, constants and valid region), only where torch and pytorch-msssim are already
  installed: this benchmark never installs torch.

Each measurement runs in a fresh process: the time is the median of several calls after a
warm-up call, the peak memory the process's peak resident set above its resident set with the
inputs loaded. RGB values are the mean over R, G, B for every implementation.
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from _common import (
    machine,
    measure_in_process,
    report_timed,
    shared_data,
    table,
    usable_cpus,
)

REPS = {0.5: (9, 3), 2.0: (7, 2), 12.0: (5, 2)}  # samepix, others


# --------------------------------------------------------------------------------------------
# The implementations


def fspecial_gauss(size: int, sigma: float) -> np.ndarray:
    """MATLAB's fspecial('gaussian'), as the classic answer writes it."""
    x, y = np.mgrid[-size // 2 + 1 : size // 2 + 1, -size // 2 + 1 : size // 2 + 1]
    g = np.exp(-((x**2 + y**2) / (2.0 * sigma**2)))
    return g / g.sum()


def classic_ssim(img1: np.ndarray, img2: np.ndarray) -> float:
    """The StackOverflow answer's SSIM (one band), mean of its map."""
    from scipy import signal

    img1 = img1.astype(np.float64)
    img2 = img2.astype(np.float64)
    window = fspecial_gauss(11, 1.5)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu1 = signal.fftconvolve(window, img1, mode="valid")
    mu2 = signal.fftconvolve(window, img2, mode="valid")
    mu1_sq, mu2_sq, mu1_mu2 = mu1 * mu1, mu2 * mu2, mu1 * mu2
    sigma1_sq = signal.fftconvolve(window, img1 * img1, mode="valid") - mu1_sq
    sigma2_sq = signal.fftconvolve(window, img2 * img2, mode="valid") - mu2_sq
    sigma12 = signal.fftconvolve(window, img1 * img2, mode="valid") - mu1_mu2
    ssim_map = ((2 * mu1_mu2 + c1) * (2 * sigma12 + c2)) / (
        (mu1_sq + mu2_sq + c1) * (sigma1_sq + sigma2_sq + c2)
    )
    return float(ssim_map.mean())


def worker(impl: str, path_a: str, path_b: str, reps: int) -> None:
    a, b = np.load(path_a), np.load(path_b)
    if impl == "samepix":
        from samepix import metrics

        def run() -> float:
            if a.ndim == 3:
                return float(np.mean(metrics.ssim_channels(a, b)))
            return metrics.ssim(a, b).mean

    elif impl == "fftconvolve":

        def run() -> float:
            if a.ndim == 3:
                return float(np.mean([classic_ssim(a[..., i], b[..., i]) for i in range(3)]))
            return classic_ssim(a, b)

    else:
        import torch
        from pytorch_msssim import ssim as torch_ssim

        torch.set_num_threads(usable_cpus())

        def tensor(x: np.ndarray) -> torch.Tensor:
            t = torch.from_numpy(np.ascontiguousarray(x)).float()
            return t[None, None] if x.ndim == 2 else t.permute(2, 0, 1)[None]

        def run() -> float:
            with torch.no_grad():
                return float(torch_ssim(tensor(a), tensor(b), data_range=255, size_average=True))

    report_timed(run, reps)


def measure(impl: str, pa: str, pb: str, reps: int) -> dict[str, float]:
    return measure_in_process(__file__, impl, pa, pb, reps)


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


def make_inputs(photo: np.ndarray, mp: float, folder: Path) -> dict[str, tuple[str, str, str]]:
    from PIL import Image

    h, w = photo.shape[:2]
    s = (mp * 1e6 / (h * w)) ** 0.5
    size = (round(w * s), round(h * s))
    a = Image.fromarray(photo).resize(size, Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    a.save(buf, format="JPEG", quality=75)
    b = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    out = {}
    for kind, (ia, ib) in {"grey": (a.convert("L"), b.convert("L")), "RGB": (a, b)}.items():
        pa, pb = folder / f"{mp}-{kind}-a.npy", folder / f"{mp}-{kind}-b.npy"
        np.save(pa, np.asarray(ia))
        np.save(pb, np.asarray(ib))
        out[kind] = (str(pa), str(pb), f"{size[0]}×{size[1]}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.5,2,12", help="megapixels, comma-separated")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        impl, pa, pb, reps = args.worker
        worker(impl, pa, pb, int(reps))
        return

    peers = []
    if importlib.util.find_spec("scipy") is not None:
        peers.append(("fftconvolve", "classic fftconvolve"))
    else:
        print("classic fftconvolve SSIM: skipped (scipy not installed)")
    if importlib.util.find_spec("torch") and importlib.util.find_spec("pytorch_msssim"):
        import torch

        peers.append(("torch", f"pytorch-msssim (torch {torch.__version__}, CPU)"))
    else:
        print(
            "pytorch-msssim: skipped (torch and pytorch-msssim not installed; never installed here)"
        )
    photo, source = source_image()
    today = time.strftime("%Y-%m-%d")
    print(f"# SSIM: samepix vs the classic fftconvolve SSIM and pytorch-msssim ({today})")
    print(f"{machine()}; image: {source} vs its JPEG q75 copy")
    print("time: median ms per call; peak: MiB above the RSS with the inputs loaded\n")

    rows = []
    with tempfile.TemporaryDirectory(prefix="samepix-ssim-peers-") as tmp:
        for mp in (float(s) for s in args.sizes.split(",")):
            inputs = make_inputs(photo, mp, Path(tmp))
            ours_reps, their_reps = REPS.get(mp, (5, 2))
            for kind in ("grey", "RGB"):
                pa, pb, size = inputs[kind]
                ours = measure("samepix", pa, pb, ours_reps)
                for impl, label in peers:
                    theirs = measure(impl, pa, pb, their_reps)
                    row = [
                        f"{mp:g} MP ({size})",
                        kind,
                        label,
                        f"{ours['ms']:.1f}",
                        f"{theirs['ms']:.1f}",
                        f"{ours['ms'] / theirs['ms']:.3f} "
                        f"({theirs['ms'] / ours['ms']:.1f}× faster)",
                        f"{ours['peak_mib']:.1f}" if ours["peak_mib"] is not None else "—",
                        f"{theirs['peak_mib']:.1f}" if theirs["peak_mib"] is not None else "—",
                        f"{abs(ours['value'] - theirs['value']):.1e}",
                    ]
                    rows.append(row)
                    print("  measured:", " | ".join(row), file=sys.stderr, flush=True)
    print(
        table(
            [
                "size",
                "image",
                "other",
                "samepix ms",
                "other ms",
                "ratio samepix/other",
                "samepix peak MiB",
                "other peak MiB",
                "|Δ value|",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
