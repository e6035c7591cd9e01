"""Where in the picture two images differ: the worst region, and a local change.

A global score averages a local edit away (a pasted patch scores well once averaged with a
large untouched background), so the pair's maps are also looked at window by window:

- :func:`worst_region`: the lowest mean of an SSIM map over half-overlapping square windows;
- :func:`structure_map`, :func:`local_windows` and :func:`local_change`: whether one region
  lost more structure (SSIM's contrast-structure term, texture-weighted) than a global loss
  such as a re-encode or a resize explains (:data:`LOCAL_SPREAD`).

They live apart from :mod:`samepix.compare`, which calls them for every pair it measures,
because they are array functions only: two aligned grey images (or a map) and a window
fraction in, a value and a region out, knowing nothing of files, policies or verdicts; the
accuracy benchmark runs them again at other window sizes. Nothing here imports
:mod:`samepix.compare`; OpenCV and :mod:`samepix.metrics` are imported inside the functions,
so importing this module loads no more than numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "LOCAL_SIDE",
    "LOCAL_SPREAD",
    "StructureMap",
    "local_change",
    "local_windows",
    "structure_map",
    "worst_region",
]

LOCAL_SIDE = 512
"""The local-change test runs on luma reduced (INTER_AREA) to this shorter side: regions are
fractions of the picture, so its scale does not matter, and at this scale the test costs a few
milliseconds whatever the image size, and compression artefacts of a 12 MP photograph are as
small as a 0.4 MP photograph's."""
LOCAL_SPREAD = 4.0
"""How many times the picture's overall structure loss its worst region may lose before the
excess counts as a local change. Re-encoding and resizing lose structure unevenly (textured
regions more than flat ones); over the accuracy set, target copies' worst regions lost at most
about this multiple (docs/verdicts.md)."""
_LOCAL_MIN_WINDOW = 16  # map pixels: smaller windows are too noisy to judge (0.25× copies)


@dataclass(frozen=True, eq=False)
class StructureMap:
    """The contrast-structure term of SSIM and its weight, on a size-normalised luma pair.

    ``cs`` is SSIM without its luminance term, (2σab + C2) / (σa² + σb² + C2): blind to the
    brightness and contrast changes a copy may carry (SSIM's luminance term punishes a small
    shift in dark areas hard), sensitive to structure replaced, removed or added. ``weight`` is
    √(σa² + σb² + C2): flat areas, where any noise or dither is all the structure there is,
    count less than textured ones. ``scale`` maps these maps' pixels back to the compared
    images' (map pixel (i, j) is centred on compared pixel ((j + 5) / scale, (i + 5) / scale)).
    """

    cs: np.ndarray
    weight: np.ndarray
    scale: float


def structure_map(a: np.ndarray, b: np.ndarray) -> StructureMap:
    """:class:`StructureMap` of two grey uint8 images of one size (at least 11 × 11)."""
    import cv2

    from . import metrics as m_
    from .align import resize_area

    h, w = a.shape
    scale = min(1.0, LOCAL_SIDE / min(h, w))
    if scale < 1.0:
        size = (max(m_.SSIM_WINDOW, round(w * scale)), max(m_.SSIM_WINDOW, round(h * scale)))
        a, b = resize_area(a, size), resize_area(b, size)
    # Written in p = a + b and m = a − b, as metrics.ssim does: four blurs instead of five,
    # since σa² + σb² = (var p + var m) / 2 and 2σab = (var p − var m) / 2. OpenCV does the
    # arithmetic (no numpy temporaries: at this size they cost more than the blurs).
    x = a.astype(np.float32)
    y = b.astype(np.float32)
    p = cv2.add(x, y)
    m = cv2.subtract(x, y)
    p -= np.float32(cv2.mean(p)[0])  # centred: float32 squares stay exact enough
    kernel = cv2.getGaussianKernel(m_.SSIM_WINDOW, m_.SSIM_SIGMA, cv2.CV_32F)
    border = m_.SSIM_BORDER
    valid = (slice(border, x.shape[0] - border), slice(border, x.shape[1] - border))

    def blur(v: np.ndarray) -> np.ndarray:
        out: np.ndarray = cv2.sepFilter2D(v, -1, kernel, kernel)[valid]
        return out

    mean_p, mean_m = blur(p), blur(m)
    var_p = blur(cv2.multiply(p, p))
    var_p -= cv2.multiply(mean_p, mean_p)
    var_m = blur(cv2.multiply(m, m))
    var_m -= cv2.multiply(mean_m, mean_m)
    c2 = np.float32(2.0 * (m_.SSIM_K2 * 255.0) ** 2)
    num = var_p - var_m  # 2 (2σab + C2) once c2 is added
    num += c2
    den = var_p + var_m  # 2 (σa² + σb² + C2) once c2 is added
    den += c2
    cs = cv2.divide(num, den)
    # √den is √2 × the documented weight: a constant factor, gone from every weighted mean.
    return StructureMap(cs=cs, weight=cv2.sqrt(den), scale=scale)


def _window_side(height: int, width: int, fraction: float) -> int:
    """Side of :func:`local_windows`' square windows, in map pixels."""
    return min(height, width, max(_LOCAL_MIN_WINDOW, round(min(height, width) * fraction)))


def local_windows(structure: StructureMap, fraction: float) -> tuple[float, float, tuple[int, int]]:
    """Weighted mean cs over the picture and over its worst window of ``fraction`` × shorter side.

    Windows overlap by half. Returns (global, worst window, worst window's top-left in map
    pixels).
    """
    import cv2

    cs, weight = structure.cs, structure.weight
    height, width = cs.shape
    side = _window_side(height, width, fraction)
    step = max(1, side // 2)
    weighted = cs * weight
    # Window sums (anchored at their top-left corner), in float64.
    num, den = (
        cv2.boxFilter(
            v, cv2.CV_64F, (side, side), anchor=(0, 0), normalize=False,
            borderType=cv2.BORDER_CONSTANT,
        )
        for v in (weighted, weight)
    )  # fmt: skip
    rows = sorted({*range(0, height - side + 1, step), height - side})
    cols = sorted({*range(0, width - side + 1, step), width - side})
    means = num[np.ix_(rows, cols)] / den[np.ix_(rows, cols)]
    r, c = (int(v) for v in np.unravel_index(int(np.argmin(means)), means.shape))
    overall = float(weighted.sum(dtype=np.float64) / weight.sum(dtype=np.float64))
    return overall, float(means[r, c]), (rows[r], cols[c])


def local_change(
    structure: StructureMap, fraction: float
) -> tuple[float, tuple[int, int, int, int]]:
    """How much more structure the worst region lost than :data:`LOCAL_SPREAD` × the whole.

    (1 − worst window's weighted cs) − LOCAL_SPREAD × (1 − the picture's weighted cs), at
    least 0: 0 when the loss is as even as a re-encode's or a resize's, about 1 when a region
    was replaced by something else. A global loss (JPEG q10, a resize with a poor filter)
    raises the bar for the worst region with it; an edit lowers one region alone.

    Returns the value and the window as (x, y, width, height) in compared-image pixels.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004 (the contrast-structure term; the SSIM map as a
       local measure). :doi:`10.1109/TIP.2003.819861`
    """
    from .metrics import SSIM_BORDER

    overall, worst, (row, col) = local_windows(structure, fraction)
    value = max(0.0, (1.0 - worst) - LOCAL_SPREAD * (1.0 - overall))
    height, width = structure.cs.shape
    side = _window_side(height, width, fraction)
    inv = 1.0 / structure.scale
    region = (
        round((col + SSIM_BORDER) * inv),
        round((row + SSIM_BORDER) * inv),
        round(side * inv),
        round(side * inv),
    )
    return value, region


def worst_region(ssim_map: np.ndarray, fraction: float) -> tuple[float, tuple[int, int, int, int]]:
    """The lowest mean of an SSIM map over square windows of ``fraction`` × its shorter side.

    Windows overlap by half their side, so an edit is never split between two windows and
    diluted by the untouched pixels of both (as it can be on a grid of disjoint tiles), and
    every window is at least half full at the edges (no sliver of a tile decides alone).

    Parameters
    ----------
    ssim_map : numpy.ndarray
        A 2-D SSIM map (``metrics.ssim(a, b, return_map=True).map``).
    fraction : float
        Window side as a fraction of the map's shorter side (``Policy.region_fraction``); at
        least 8 map pixels.

    Returns
    -------
    tuple
        The lowest window mean, and that window as (x, y, width, height) in image pixels
        (the map's 5-pixel border added back).
    """
    import cv2

    from .metrics import SSIM_BORDER

    height, width = ssim_map.shape
    side = max(8, round(min(height, width) * fraction))
    step = max(1, side // 2)
    # Sums over step × step blocks, in float64 (OpenCV's reduce is exact enough and fast).
    row_starts = list(range(0, height, step))
    col_starts = np.arange(0, width, step)
    band_sums = np.empty((len(row_starts), width), np.float64)
    for i, r in enumerate(row_starts):
        band_sums[i] = cv2.reduce(ssim_map[r : r + step], 0, cv2.REDUCE_SUM, dtype=cv2.CV_64F)
    sums = np.add.reduceat(band_sums, col_starts, axis=1)
    rows = np.diff(np.append(row_starts, height))
    cols = np.diff(np.append(col_starts, width))
    counts = np.outer(rows, cols).astype(np.float64)
    # Windows of 2 × 2 blocks (fewer where the map is only one block across).
    kr, kc = min(2, sums.shape[0]), min(2, sums.shape[1])

    def windows(x: np.ndarray) -> np.ndarray:
        out: np.ndarray = x[: x.shape[0] - kr + 1, : x.shape[1] - kc + 1].copy()
        for dr in range(kr):
            for dc in range(kc):
                if dr or dc:
                    out += x[dr : dr + out.shape[0], dc : dc + out.shape[1]]
        return out

    means = windows(sums) / windows(counts)
    r, c = (int(v) for v in np.unravel_index(int(np.argmin(means)), means.shape))
    y0, x0 = r * step, c * step
    h = int(rows[r : r + kr].sum())
    w = int(cols[c : c + kc].sum())
    return float(means[r, c]), (x0 + SSIM_BORDER, y0 + SSIM_BORDER, w, h)
