"""Full-reference image metrics: SSIM, MS-SSIM, PSNR, RMSE and NRMSE, fast and exact.

SSIM here is Wang, Bovik, Sheikh & Simoncelli (2004) exactly as the authors' ``ssim_index.m``
defines it: an 11×11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03, population covariance,
and the mean of the SSIM map over the region where the whole window fits (a 5-pixel border is
left out). scikit-image gives the same number with ``structural_similarity(a, b,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)``; samepix
agrees with it within 1e-6 (a few 1e-7 in practice) and runs 15-20 times faster on two cores
in a small, constant amount of memory (``benchmarks/bench_ssim.py``):

- the image is cut into tiles, each padded by the 5-pixel window radius, so every tile's valid
  region is exact and tiles join seamlessly;
- the four Gaussian blurs per tile (of a + b, a − b and their squares) and the arithmetic run
  in OpenCV and numpy, which release the GIL, so a few threads (one per CPU, at most 8, the
  caller included) share the tiles; they are started for the call and joined before it returns,
  so no samepix thread outlives an API call (a later fork stays safe);
- each thread reuses one set of float32 buffers (~6 MB) for all its tiles, and the buffers
  outlive the call: fresh memory costs a page fault per 4 KiB, which on a VM can cost as
  much as the arithmetic;
- float32 is exact enough because each tile is centred on its own mean before the squares are
  taken (variances are differences of large, nearly equal numbers) and sums are kept in
  float64.

Everything here works on arrays; decoding, alignment and verdicts live elsewhere.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

__all__ = [
    "MS_SSIM_MIN_SIDE",
    "MS_SSIM_WEIGHTS",
    "SSIM_BORDER",
    "SSIM_K1",
    "SSIM_K2",
    "SSIM_SIGMA",
    "SSIM_WINDOW",
    "SsimResult",
    "ms_ssim",
    "nrmse",
    "psnr",
    "region_means",
    "rmse",
    "ssim",
    "ssim_and_ms_ssim",
    "ssim_channels",
]

SSIM_WINDOW = 11
"""Side of the Gaussian window, in pixels (Wang et al. 2004)."""
SSIM_BORDER = SSIM_WINDOW // 2
"""Pixels left out on each side of the SSIM map: where the window does not fit."""
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
"""Exponents of the five MS-SSIM scales, finest first (Wang, Simoncelli & Bovik 2003)."""
MS_SSIM_MIN_SIDE = SSIM_WINDOW * 2 ** (len(MS_SSIM_WEIGHTS) - 1)
"""Smallest image side MS-SSIM accepts: the window must still fit at the coarsest scale."""


def _gaussian_kernel() -> np.ndarray:
    # The normalised 11-tap Gaussian: scipy's gaussian_filter(sigma=1.5, truncate=3.5), which
    # scikit-image uses, has radius int(3.5 * 1.5 + 0.5) = 5 and the same taps.
    x = np.arange(SSIM_WINDOW, dtype=np.float64) - SSIM_BORDER
    k64 = np.exp(-0.5 * (x / SSIM_SIGMA) ** 2)
    k = (k64 / k64.sum()).astype(np.float32)
    # Rounded to float32 the taps sum to 1 - 1.4e-9: a gain error that biases every variance
    # (E[v²] - E[v]²) by about 2.8e-9 × E[v]². Moving the tiny outer taps by a few ulps makes
    # the float32 taps sum to exactly 1, leaving only rounding noise.
    ulp = float(np.spacing(k[0]))
    residual = 1.0 - math.fsum(float(v) for v in k)
    steps = round(residual / (2 * ulp))
    k[0] = k[-1] = np.float32(float(k[0]) + steps * ulp)
    kernel: np.ndarray = k.reshape(-1, 1)
    return kernel


_KERNEL = _gaussian_kernel()

# Output tile size. Tiles are padded by the window radius on each side, so bigger tiles waste
# less work; OpenCV's filters also pay a cost per row, so rows should hold ~1500 floats. 128
# rows × 1536 floats (1536 grey or 512 RGB pixels) wastes 10 % and needs ~6 MB per thread.
_TILE_ROWS = 128
_TILE_FLOATS = 1536
_MAX_THREADS = 8
_MAX_SPARE = 4  # warm workspaces kept between calls (~6 MB each)


@dataclass(frozen=True)
class SsimResult:
    """The mean SSIM of two images and, on request, its map.

    Attributes
    ----------
    mean : float
        Mean of the SSIM map over the valid region (1.0 for identical images).
    map : numpy.ndarray or None
        float32 array of shape ``(H - 10, W - 10)``: the SSIM of the window centred on each
        pixel whose window fits inside the image (pixel ``(i, j)`` of the map is centred on
        image pixel ``(i + 5, j + 5)``). ``None`` unless ``return_map=True``. Per pixel it is
        within about 1e-4 of a float64 computation (where a tile mixes very dark and very
        bright areas); block means such as :func:`region_means` are far closer.
    """

    mean: float
    map: np.ndarray | None = None


# --------------------------------------------------------------------------------------------
# Input checks


def _check_pair(a: np.ndarray, b: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"{what}: images differ in shape: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError(f"{what}: empty images (shape {a.shape})")
    for arr in (a, b):
        if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_) or np.issubdtype(
            arr.dtype, np.complexfloating
        ):
            raise ValueError(f"{what}: unsupported pixel type {arr.dtype}")
    return a, b


def _check_range(data_range: float, what: str) -> float:
    value = float(data_range)
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"{what}: data_range must be a positive number, got {data_range!r}")
    return value


def _check_window(shape: tuple[int, ...], what: str) -> None:
    if shape[0] < SSIM_WINDOW or shape[1] < SSIM_WINDOW:
        raise ValueError(
            f"{what}: images of shape {shape} are smaller than the "
            f"{SSIM_WINDOW}×{SSIM_WINDOW} SSIM window"
        )


# --------------------------------------------------------------------------------------------
# The SSIM core: sums of the SSIM (and contrast-structure) maps over the valid region


class _Workspace:
    """One thread's float32 buffers for tiles of up to ``_TILE_ROWS`` × ``_tile_cols(channels)``."""

    def __init__(self, channels: int) -> None:
        self.key = _workspace_key(channels)
        rows, cols, pad = _TILE_ROWS, _tile_cols(channels), 2 * SSIM_BORDER
        extra = () if channels == 1 else (channels,)
        full = (rows + pad, cols + pad, *extra)
        valid = (rows, cols, *extra)
        self.p, self.m, self.pp, self.mm = (np.empty(full, np.float32) for _ in range(4))
        self.t1, self.t2, self.t3 = (np.empty(valid, np.float32) for _ in range(3))


def _tile_cols(channels: int) -> int:
    return max(64, _TILE_FLOATS // channels)


def _workspace_key(channels: int) -> tuple[int, int, int]:
    return channels, _TILE_ROWS, _tile_cols(channels)


# First touches of fresh memory cost a page fault per 4 KiB (about 2-4 µs on a VM): for a
# 1-megapixel image that is as long as the SSIM itself. So workspaces outlive a call.
_spare: list[_Workspace] = []
_spare_lock = threading.Lock()


def _borrow(channels: int) -> _Workspace:
    key = _workspace_key(channels)
    with _spare_lock:
        for i, ws in enumerate(_spare):
            if ws.key == key:
                return _spare.pop(i)
    return _Workspace(channels)


def _give_back(ws: _Workspace) -> None:
    with _spare_lock:
        _spare.append(ws)
        del _spare[:-_MAX_SPARE]  # keep the most recently used


def _tile_sums(
    ws: _Workspace,
    a: np.ndarray,
    b: np.ndarray,
    c1: float,
    c2: float,
    integer: bool,
    out: np.ndarray | None,
    want_cs: bool,
) -> tuple[tuple[float, ...], tuple[float, ...] | None]:
    """SSIM (and cs) sums over the valid region of one padded tile ``a``, ``b``."""
    hi, wi = a.shape[:2]
    h, w = hi - 2 * SSIM_BORDER, wi - 2 * SSIM_BORDER
    x, y = ws.pp[:hi, :wi], ws.mm[:hi, :wi]
    np.copyto(x, a, casting="unsafe")
    np.copyto(y, b, casting="unsafe")
    # Centre the tile on its mean: a variance computed as E[v²] − E[v]² loses about
    # eps × E[v]² to cancellation, and centring is what keeps float32 within a few 1e-7 of
    # float64 on the mean SSIM. Variances do not depend on the shift; the means get it back.
    # Every 4th row is enough to choose a shift.
    channels = 1 if a.ndim == 2 else a.shape[2]
    mean_a = sum(cv2.mean(x[::4])[:channels]) / channels
    mean_b = sum(cv2.mean(y[::4])[:channels]) / channels
    sp, sm = mean_a + mean_b, mean_a - mean_b
    if integer:  # integer shifts keep integer pixels exact in float32
        sp, sm = float(round(sp)), float(round(sm))
    p, m = ws.p[:hi, :wi], ws.m[:hi, :wi]
    # SSIM written in p = a + b and m = a − b: σa² + σb² = (var p + var m) / 2 and
    # 2σab = (var p − var m) / 2, so four blurs (p, m, p², m²) give every term.
    cv2.addWeighted(x, 1.0, y, 1.0, -sp, dst=p)
    cv2.addWeighted(x, 1.0, y, -1.0, -sm, dst=m)
    # Squares negated, so accumulateSquare below turns −E[v²] into −var in one pass.
    cv2.multiply(p, p, dst=x, scale=-1.0)
    cv2.multiply(m, m, dst=y, scale=-1.0)
    for buf in (p, m, x, y):
        # In place; the border rule is irrelevant: only the valid centre is read.
        cv2.sepFilter2D(buf, -1, _KERNEL, _KERNEL, dst=buf)
    inner = (slice(SSIM_BORDER, SSIM_BORDER + h), slice(SSIM_BORDER, SSIM_BORDER + w))
    mu_p, mu_m, nvar_p, nvar_m = p[inner], m[inner], x[inner], y[inner]
    t1, t2, t3 = ws.t1[:h, :w], ws.t2[:h, :w], ws.t3[:h, :w]
    cv2.accumulateSquare(mu_p, nvar_p)
    cv2.accumulateSquare(mu_m, nvar_m)
    # Contrast-structure term, numerator and denominator both doubled:
    # (2σab + C2) / (σa² + σb² + C2) = (var p − var m + 2C2) / (var p + var m + 2C2).
    cv2.addWeighted(nvar_m, 1.0, nvar_p, -1.0, 2.0 * c2, dst=t2)
    cv2.addWeighted(nvar_p, -1.0, nvar_m, -1.0, 2.0 * c2, dst=nvar_p)
    cs_den = nvar_p
    cs_sums = None
    if want_cs:
        cv2.divide(t2, cs_den, dst=t3)
        cs_sums = cv2.sumElems(t3)[:channels]
    # Luminance term, both parts doubled: (2μaμb + C1) / (μa² + μb² + C1)
    # = (U² − V² + 2C1) / (U² + V² + 2C1) with U = μa + μb, V = μa − μb: the shifts go back.
    if sm != 0.0:
        cv2.addWeighted(mu_m, 1.0, mu_m, 0.0, sm, dst=mu_m)
    cv2.multiply(mu_m, mu_m, dst=t1)
    cv2.addWeighted(mu_p, 1.0, mu_p, 0.0, sp, dst=mu_p)
    cv2.multiply(mu_p, mu_p, dst=mu_p)
    cv2.addWeighted(mu_p, 1.0, t1, -1.0, 2.0 * c1, dst=mu_m)
    cv2.addWeighted(mu_p, 1.0, t1, 1.0, 2.0 * c1, dst=mu_p)
    cv2.multiply(mu_m, t2, dst=mu_m)
    cv2.multiply(mu_p, cs_den, dst=mu_p)
    dest = t3 if out is None else out
    cv2.divide(mu_m, mu_p, dst=dest)
    return cv2.sumElems(dest)[:channels], cs_sums


def _split(n: int, size: int) -> list[tuple[int, int]]:
    """Cut ``range(n)`` into nearly equal pieces of at most ``size``: no sliver at the end."""
    pieces = -(-n // size)
    step = -(-n // pieces)
    return [(start, min(start + step, n)) for start in range(0, n, step)]


def _tiles(
    rows: int, cols: int, channels: int, threads: int
) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Output tiles of a ``rows`` × ``cols`` SSIM map, row-major."""
    col_pieces = -(-cols // _tile_cols(channels))
    row_pieces = -(-rows // _TILE_ROWS)
    # With only a few tiles, a count the threads share evenly beats the largest tiles.
    while (
        (row_pieces * col_pieces) % threads
        and row_pieces * col_pieces < 4 * threads
        and rows // (row_pieces + 1) >= 32
    ):
        row_pieces += 1
    row_size = -(-rows // row_pieces)
    return list(itertools.product(_split(rows, row_size), _split(cols, _tile_cols(channels))))


_caller = threading.local()  # per calling thread: the cap set by thread_cap()


@contextlib.contextmanager
def thread_cap(cap: int | None) -> Iterator[None]:
    """At most ``cap`` threads for the metrics this thread computes (None: one per CPU, at most
    8): a worker process that shares the cores with others uses one."""
    before = getattr(_caller, "cap", None)
    _caller.cap = cap
    try:
        yield
    finally:
        _caller.cap = before


def _cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _ssim_sums(
    a: np.ndarray,
    b: np.ndarray,
    data_range: float,
    *,
    want_cs: bool = False,
    out: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-channel sums of the SSIM map (and cs map) of H×W or H×W×C (C ≤ 4) images."""
    height, width = a.shape[:2]
    channels = 1 if a.ndim == 2 else a.shape[2]
    pad = 2 * SSIM_BORDER
    threads = min(_cpu_count(), _MAX_THREADS, getattr(_caller, "cap", None) or _MAX_THREADS)
    tiles = _tiles(height - pad, width - pad, channels, threads)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    integer = all(np.issubdtype(x.dtype, np.integer) or x.dtype == np.bool_ for x in (a, b))
    sums = np.zeros((len(tiles), channels), np.float64)
    cs = np.zeros((len(tiles), channels), np.float64) if want_cs else None
    counter = itertools.count()
    counter_lock = threading.Lock()

    def next_tile() -> int:
        with counter_lock:
            return next(counter)

    def work() -> None:
        ws: _Workspace | None = None
        try:
            while (i := next_tile()) < len(tiles):
                ws = ws or _borrow(channels)
                (r0, r1), (c0, c1_) = tiles[i]
                dest = None if out is None else out[r0:r1, c0:c1_]
                s, c = _tile_sums(
                    ws, a[r0 : r1 + pad, c0 : c1_ + pad], b[r0 : r1 + pad, c0 : c1_ + pad],
                    c1, c2, integer, dest, want_cs,
                )  # fmt: skip
                sums[i] = s
                if cs is not None and c is not None:
                    cs[i] = c
        finally:
            if ws is not None:
                _give_back(ws)

    # Helper threads live for this call only: a pool kept alive behind the API would make every
    # later fork unsafe (the index's worker processes would have to be spawned, which re-imports
    # a caller's unguarded script). Starting a thread costs ~0.1 ms against ≥ 2 tiles of work.
    failures: list[BaseException] = []

    def helper() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the calling thread, which raises it
            failures.append(exc)

    helpers = [
        threading.Thread(target=helper, name="samepix-ssim", daemon=True)
        for _ in range(min(threads, len(tiles)) - 1)
    ]
    for thread in helpers:
        thread.start()
    try:
        work()
    finally:
        for thread in helpers:
            thread.join()
    if failures:
        raise failures[0]
    # Summed in tile order whatever the threads did: the result is deterministic.
    return sums.sum(axis=0), (None if cs is None else cs.sum(axis=0))


def _per_channel(
    a: np.ndarray, b: np.ndarray, data_range: float, want_cs: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean SSIM (and cs) per channel; OpenCV handles up to 4 interleaved channels at once."""
    count = (a.shape[0] - 2 * SSIM_BORDER) * (a.shape[1] - 2 * SSIM_BORDER)
    if a.ndim == 2 or a.shape[2] <= 4:
        s, c = _ssim_sums(a, b, data_range, want_cs=want_cs)
        return s / count, (None if c is None else c / count)
    parts = [
        _ssim_sums(a[..., i], b[..., i], data_range, want_cs=want_cs) for i in range(a.shape[2])
    ]
    s = np.concatenate([p[0] for p in parts]) / count
    if not want_cs:
        return s, None
    return s, np.concatenate([p[1] for p in parts if p[1] is not None]) / count


# --------------------------------------------------------------------------------------------
# Public metrics


def ssim(
    a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0, return_map: bool = False
) -> SsimResult:
    """Structural similarity (SSIM) of two single-channel images.

    Wang et al. (2004) exactly as their reference code defines it: an 11×11 Gaussian window
    (σ = 1.5), K1 = 0.01, K2 = 0.03, population covariance, and the mean of the SSIM map
    over the pixels whose whole window lies inside the image (a 5-pixel border is excluded).
    Equal to scikit-image's ``structural_similarity(a, b, gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=data_range)`` within 1e-6.

    Parameters
    ----------
    a, b : numpy.ndarray
        2-D arrays of the same shape, at least 11×11 (uint8, uint16, other integers, bool
        or float). Arithmetic is float32 with float64 sums.
    data_range : float, optional
        L, the span of possible pixel values (255 for 8-bit images, 65535 for 16-bit, 1.0
        for floats in [0, 1]).
    return_map : bool, optional
        Also return the SSIM map of the valid region.

    Returns
    -------
    SsimResult
        ``mean`` in [-1, 1], 1 meaning identical; ``map`` when asked for.

    Raises
    ------
    ValueError
        If the shapes differ, the images are not 2-D, a side is shorter than 11 pixels, or
        ``data_range`` is not positive.

    See Also
    --------
    ssim_channels : SSIM of each channel of a colour image.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004. :doi:`10.1109/TIP.2003.819861`
    .. [2] Z. Wang, ``ssim_index.m`` (2003), https://ece.uwaterloo.ca/~z70wang/research/ssim/
    """
    a, b = _check_pair(a, b, "ssim")
    if a.ndim != 2:
        raise ValueError(
            f"ssim: expected 2-D images, got shape {a.shape} (use ssim_channels for colour)"
        )
    _check_window(a.shape, "ssim")
    data_range = _check_range(data_range, "ssim")
    count = (a.shape[0] - 2 * SSIM_BORDER) * (a.shape[1] - 2 * SSIM_BORDER)
    ssim_map = None
    if return_map:
        ssim_map = np.empty(
            (a.shape[0] - 2 * SSIM_BORDER, a.shape[1] - 2 * SSIM_BORDER), np.float32
        )
    sums, _ = _ssim_sums(a, b, data_range, out=ssim_map)
    return SsimResult(mean=float(sums[0] / count), map=ssim_map)


def ssim_channels(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> tuple[float, ...]:
    """SSIM of each channel of two images (the definition of :func:`ssim`).

    Parameters
    ----------
    a, b : numpy.ndarray
        H×W×C arrays of the same shape (a 2-D array counts as one channel), H and W ≥ 11.
    data_range : float, optional
        L, the span of possible pixel values (255 for 8-bit images).

    Returns
    -------
    tuple of float
        One SSIM per channel, in channel order. scikit-image's ``channel_axis=2`` result is
        their mean.

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are not 2-D or 3-D, a side is shorter than 11
        pixels, or ``data_range`` is not positive.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004. :doi:`10.1109/TIP.2003.819861`
    """
    a, b = _check_pair(a, b, "ssim_channels")
    if a.ndim not in (2, 3):
        raise ValueError(f"ssim_channels: expected H×W or H×W×C images, got shape {a.shape}")
    _check_window(a.shape, "ssim_channels")
    data_range = _check_range(data_range, "ssim_channels")
    means, _ = _per_channel(a, b, data_range, want_cs=False)
    return tuple(float(v) for v in means)


def _half(x: np.ndarray) -> np.ndarray:
    """2×2 average pool in float32; an odd last row/column is paired with itself (as TF)."""
    h, w = x.shape[:2]
    he, we = h // 2 * 2, w // 2 * 2
    out = np.empty(((h + 1) // 2, (w + 1) // 2, *x.shape[2:]), np.float32)
    core = out[: h // 2, : w // 2]
    np.add(x[0:he:2, 0:we:2], x[1:he:2, 0:we:2], out=core, dtype=np.float32)
    np.add(core, x[0:he:2, 1:we:2], out=core, dtype=np.float32)
    np.add(core, x[1:he:2, 1:we:2], out=core, dtype=np.float32)
    # TF pads odd sides with mode SYMMETRIC (the edge repeated) before pooling.
    if h % 2:
        np.add(x[-1, 0:we:2], x[-1, 1:we:2], out=out[-1, : w // 2], dtype=np.float32)
        out[-1, : w // 2] *= 2
    if w % 2:
        np.add(x[0:he:2, -1], x[1:he:2, -1], out=out[: h // 2, -1], dtype=np.float32)
        out[: h // 2, -1] *= 2
    if h % 2 and w % 2:
        out[-1, -1] = np.float32(x[-1, -1]) * 4
    out *= np.float32(0.25)
    return out


def ms_ssim(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """Multi-scale SSIM (MS-SSIM) as TensorFlow's ``tf.image.ssim_multiscale`` computes it.

    Five scales, each half the size of the previous (2×2 average pooling; an odd side is
    padded by repeating its last row or column). At scales 1-4 the mean contrast-structure
    term is taken, at scale 5 the full SSIM; each is clipped at 0 and raised to its weight
    (0.0448, 0.2856, 0.3001, 0.2363, 0.1333), and the product is the score. Colour images
    are scored per channel and the channel scores averaged.

    Parameters
    ----------
    a, b : numpy.ndarray
        H×W or H×W×C arrays of the same shape, both sides at least
        :data:`MS_SSIM_MIN_SIDE` (176) pixels.
    data_range : float, optional
        L, the span of possible pixel values (255 for 8-bit images).

    Returns
    -------
    float
        MS-SSIM in [0, 1], 1 meaning identical.

    Raises
    ------
    ValueError
        If the shapes differ, the smaller side is under 176 pixels, or ``data_range`` is not
        positive.

    References
    ----------
    .. [1] Z. Wang, E. P. Simoncelli and A. C. Bovik, "Multiscale structural similarity for
       image quality assessment", Proceedings of the 37th Asilomar Conference on Signals,
       Systems and Computers, 1398-1402, 2003. :doi:`10.1109/ACSSC.2003.1292216`
    .. [2] TensorFlow, ``tf.image.ssim_multiscale``,
       https://www.tensorflow.org/api_docs/python/tf/image/ssim_multiscale
    """
    a, b = _check_pair(a, b, "ms_ssim")
    if a.ndim not in (2, 3):
        raise ValueError(f"ms_ssim: expected H×W or H×W×C images, got shape {a.shape}")
    if min(a.shape[:2]) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"ms_ssim: images of shape {a.shape} are too small for "
            f"{len(MS_SSIM_WEIGHTS)} scales (each side must be ≥ {MS_SSIM_MIN_SIDE} px)"
        )
    data_range = _check_range(data_range, "ms_ssim")
    _, cs = _per_channel(a, b, data_range, want_cs=True)
    assert cs is not None
    return _ms_ssim_from_first_scale(cs, a, b, data_range)


def _ms_ssim_from_first_scale(
    first_cs: np.ndarray, a: np.ndarray, b: np.ndarray, data_range: float
) -> float:
    """MS-SSIM of ``a`` and ``b`` given the mean cs term per channel of the full-size scale.

    Scales 2-5 are measured here (2-4: mean cs, 5: full SSIM); the channel scores are averaged.
    """
    # relu as TensorFlow: a negative mean term would make the power undefined.
    score: np.ndarray = np.maximum(first_cs, 0.0) ** MS_SSIM_WEIGHTS[0]
    x, y = a, b
    last = len(MS_SSIM_WEIGHTS) - 1
    for scale in range(1, len(MS_SSIM_WEIGHTS)):
        x, y = _half(x), _half(y)
        s, cs = _per_channel(x, y, data_range, want_cs=scale < last)
        term = s if scale == last else cs
        assert term is not None
        score *= np.maximum(term, 0.0) ** MS_SSIM_WEIGHTS[scale]
    return float(score.mean())


def ssim_and_ms_ssim(
    a: np.ndarray, b: np.ndarray, *, want_ms: bool, data_range: float = 255.0
) -> tuple[float, np.ndarray, float | None]:
    """:func:`ssim` with its map, and :func:`ms_ssim`, with one pass over the full-size images.

    MS-SSIM's first scale needs the mean contrast-structure term of the very SSIM pass that
    gives the map, so it is taken from that pass instead of a second one: the same tiles and
    the same arithmetic as :func:`ms_ssim`, hence the same number, for about 60 % of its cost.
    :func:`samepix.compare.compare` measures luma this way.

    Parameters
    ----------
    a, b : numpy.ndarray
        2-D arrays of the same shape, at least 11×11; with ``want_ms``, both sides at least
        :data:`MS_SSIM_MIN_SIDE` (176) pixels.
    want_ms : bool
        Also compute MS-SSIM.
    data_range : float, optional
        L, the span of possible pixel values (255 for 8-bit images).

    Returns
    -------
    tuple
        ``(mean, map, ms)``: the SSIM and its map as :func:`ssim` gives them with
        ``return_map=True``, and the MS-SSIM (None unless ``want_ms``).

    Raises
    ------
    ValueError
        If the shapes differ, the images are not 2-D, a side is too short, or ``data_range``
        is not positive.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004. :doi:`10.1109/TIP.2003.819861`
    .. [2] Z. Wang, E. P. Simoncelli and A. C. Bovik, "Multiscale structural similarity for
       image quality assessment", Proceedings of the 37th Asilomar Conference on Signals,
       Systems and Computers, 1398-1402, 2003. :doi:`10.1109/ACSSC.2003.1292216`
    """
    a, b = _check_pair(a, b, "ssim_and_ms_ssim")
    if a.ndim != 2:
        raise ValueError(f"ssim_and_ms_ssim: expected 2-D images, got shape {a.shape}")
    _check_window(a.shape, "ssim_and_ms_ssim")
    if want_ms and min(a.shape) < MS_SSIM_MIN_SIDE:
        raise ValueError(
            f"ssim_and_ms_ssim: images of shape {a.shape} are too small for "
            f"{len(MS_SSIM_WEIGHTS)} scales (each side must be ≥ {MS_SSIM_MIN_SIDE} px)"
        )
    data_range = _check_range(data_range, "ssim_and_ms_ssim")
    height, width = a.shape
    count = (height - 2 * SSIM_BORDER) * (width - 2 * SSIM_BORDER)
    ssim_map = np.empty((height - 2 * SSIM_BORDER, width - 2 * SSIM_BORDER), np.float32)
    sums, cs = _ssim_sums(a, b, data_range, want_cs=want_ms, out=ssim_map)
    mean = float(sums[0] / count)
    if not want_ms or cs is None:
        return mean, ssim_map, None
    return mean, ssim_map, _ms_ssim_from_first_scale(cs / count, a, b, data_range)


def _sum_sq_diff(a: np.ndarray, b: np.ndarray) -> float:
    """Σ (a − b)² over all samples, in float64, without a float64 copy of the images."""
    if a.dtype == b.dtype and a.dtype in _CV_NORM_TYPES:
        # OpenCV sums squared differences exactly in integers for 8/16-bit, in double otherwise.
        flat_a = a.reshape(a.shape[0], -1) if a.ndim > 1 else a.reshape(1, -1)
        flat_b = b.reshape(b.shape[0], -1) if b.ndim > 1 else b.reshape(1, -1)
        return float(cv2.norm(flat_a, flat_b, cv2.NORM_L2SQR))
    total = 0.0
    rows = max(1, (1 << 20) // max(1, a[0].size)) if a.ndim > 1 else a.shape[0]
    for start in range(0, a.shape[0], rows):  # bounded float64 temporaries
        d = a[start : start + rows].astype(np.float64) - b[start : start + rows]
        flat = d.ravel()
        total += float(np.dot(flat, flat))
    return total


_CV_NORM_TYPES = frozenset(
    np.dtype(t) for t in (np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32, np.float64)
)


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    """Root-mean-square error over all samples (every pixel of every channel).

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of the same shape and any numeric type.

    Returns
    -------
    float
        √(mean((a − b)²)), in pixel units; 0.0 for identical arrays.

    Raises
    ------
    ValueError
        If the shapes differ or the arrays are empty.

    References
    ----------
    .. [1] Z. Wang and A. C. Bovik, "Mean squared error: love it or leave it? A new look at
       signal fidelity measures", IEEE Signal Processing Magazine 26(1), 98-117, 2009.
       :doi:`10.1109/MSP.2008.930649`
    """
    a, b = _check_pair(a, b, "rmse")
    return math.sqrt(_sum_sq_diff(a, b) / a.size)


def psnr(a: np.ndarray, b: np.ndarray, *, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio, in decibels, over all samples.

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of the same shape (H×W, H×W×C, ...).
    data_range : float, optional
        L, the span of possible pixel values (255 for 8-bit images).

    Returns
    -------
    float
        10 · log10(L² / MSE); ``math.inf`` for identical arrays (without a warning).

    Raises
    ------
    ValueError
        If the shapes differ, the arrays are empty, or ``data_range`` is not positive.

    References
    ----------
    .. [1] Q. Huynh-Thu and M. Ghanbari, "Scope of validity of PSNR in image/video quality
       assessment", Electronics Letters 44(13), 800-801, 2008. :doi:`10.1049/el:20080522`
    """
    a, b = _check_pair(a, b, "psnr")
    data_range = _check_range(data_range, "psnr")
    mse = _sum_sq_diff(a, b) / a.size
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range * data_range / mse)


def nrmse(a: np.ndarray, b: np.ndarray) -> float:
    """samepix's normalised RMSE similarity: 1 − RMSE / (max − min), 1.0 meaning identical.

    The range is taken over both images together, so the score is symmetric and does not
    depend on which image is the reference. This is NOT scikit-image's
    ``normalized_root_mse`` (RMSE over the reference's range, 0 meaning identical).

    Parameters
    ----------
    a, b : numpy.ndarray
        Arrays of the same shape; all samples count.

    Returns
    -------
    float
        A similarity in [0, 1]. Two equal constant images (max = min) score 1.0.

    Raises
    ------
    ValueError
        If the shapes differ or the arrays are empty.

    References
    ----------
    .. [1] J. R. Fienup, "Invariant error metrics for image reconstruction", Applied Optics
       36(32), 8352-8357, 1997. :doi:`10.1364/AO.36.008352`
    """
    a, b = _check_pair(a, b, "nrmse")
    hi = max(a.max(), b.max())
    lo = min(a.min(), b.min())
    span = float(hi) - float(lo)
    if span == 0.0:
        return 1.0  # both images are the same constant
    # RMSE never exceeds the span, so the value is within [0, 1]; clamp away rounding
    # (RMSE == span gave -2.2e-16 for two images at opposite extremes).
    return max(0.0, 1.0 - math.sqrt(_sum_sq_diff(a, b) / a.size) / span)


def region_means(ssim_map: np.ndarray, tile: int) -> np.ndarray:
    """Mean of an SSIM map over a grid of ``tile`` × ``tile`` blocks.

    A global SSIM can hide a local edit (a pasted patch scores well once averaged with a
    large untouched background); the lowest block mean exposes it.

    Parameters
    ----------
    ssim_map : numpy.ndarray
        A 2-D map, such as ``ssim(a, b, return_map=True).map``.
    tile : int
        Block side in map pixels, ≥ 1.

    Returns
    -------
    numpy.ndarray
        float64 array of shape ``(ceil(H / tile), ceil(W / tile))``; blocks on the bottom and
        right edges may be partial and are averaged over the pixels they hold.

    Raises
    ------
    ValueError
        If the map is not a non-empty 2-D array or ``tile`` < 1.

    References
    ----------
    .. [1] Z. Wang, A. C. Bovik, H. R. Sheikh and E. P. Simoncelli, "Image quality
       assessment: from error visibility to structural similarity", IEEE Transactions on
       Image Processing 13(4), 600-612, 2004 (the SSIM map as a local quality measure).
       :doi:`10.1109/TIP.2003.819861`
    """
    ssim_map = np.asarray(ssim_map)
    if ssim_map.ndim != 2 or ssim_map.size == 0:
        raise ValueError(f"region_means: expected a non-empty 2-D map, got shape {ssim_map.shape}")
    if int(tile) != tile or tile < 1:
        raise ValueError(f"region_means: tile must be a positive integer, got {tile!r}")
    tile = int(tile)
    height, width = ssim_map.shape
    row_starts = np.arange(0, height, tile)
    col_starts = np.arange(0, width, tile)
    sums = np.add.reduceat(ssim_map, row_starts, axis=0, dtype=np.float64)
    sums = np.add.reduceat(sums, col_starts, axis=1)
    row_sizes = np.diff(np.append(row_starts, height))
    col_sizes = np.diff(np.append(col_starts, width))
    means: np.ndarray = sums / np.outer(row_sizes, col_sizes)
    return means
