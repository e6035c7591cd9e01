"""samepix.metrics against published reference values and scikit-image (the oracle).

Reference values come from ../shared/REFERENCES.md; each carries its source in a comment.
"""

from __future__ import annotations

import io
import math
import multiprocessing
import os
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from PIL import Image

from samepix import metrics
from samepix.metrics import (
    MS_SSIM_MIN_SIDE,
    SSIM_BORDER,
    SSIM_WINDOW,
    SsimResult,
    ms_ssim,
    nrmse,
    psnr,
    region_means,
    rmse,
    ssim,
    ssim_and_ms_ssim,
    ssim_channels,
)

from .conftest import shared_file

# scikit-image's structural_similarity gives samepix's SSIM definition with these options
# (REFERENCES.md, "Which SSIM"); its defaults are a different number.
REFERENCE_SETTING = {
    "gaussian_weights": True,
    "sigma": 1.5,
    "use_sample_covariance": False,
    "data_range": 255,
}
# float32 SSIM agrees with float64 scikit-image within 5e-7 (REFERENCES.md, speed anchors);
# the module promises 1e-6 on real photographs.
SSIM_TOL = 1e-6
MS_SSIM_TOL = 1e-4  # TensorFlow values are published to 6 decimals (REFERENCES.md)


def sk_ssim(a: np.ndarray, b: np.ndarray, **options: object) -> float:
    skm = pytest.importorskip("skimage.metrics")
    return float(skm.structural_similarity(a, b, **{**REFERENCE_SETTING, **options}))


def sk_ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    skm = pytest.importorskip("skimage.metrics")
    _, full = skm.structural_similarity(a, b, full=True, **REFERENCE_SETTING)
    inner: np.ndarray = full[SSIM_BORDER:-SSIM_BORDER, SSIM_BORDER:-SSIM_BORDER]
    return inner


def jpeg_copy(pixels: np.ndarray, quality: int) -> np.ndarray:
    """The image after a JPEG round trip through Pillow (a typical re-encoded copy)."""
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(out.getvalue())))


def load(path: Path, mode: str) -> np.ndarray:
    with Image.open(path) as im:
        return np.asarray(im.convert(mode))


# --------------------------------------------------------------------------------------------
# Fixtures built exactly as REFERENCES.md shows them


@pytest.fixture(scope="module")
def camera_noise(camera: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """REFERENCES.md fixture 1: skimage's camera and a noisy copy (truncating cast)."""
    rng = np.random.RandomState(5)
    noisy = np.clip(camera + 20.0 * rng.randn(*camera.shape), 0, 255).astype(np.uint8)
    return camera, noisy


@pytest.fixture(scope="module")
def goldhill(reference_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """REFERENCES.md fixture 2: goldhill.gif vs goldhill_jpeg.gif, grey 512×512."""
    return load(reference_dir / "goldhill.gif", "L"), load(reference_dir / "goldhill_jpeg.gif", "L")


@pytest.fixture(scope="module")
def tid_i01(reference_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """REFERENCES.md fixture 3: TID2013 I01.BMP vs i01_01_5.bmp, RGB 384×512."""
    return load(reference_dir / "I01.BMP", "RGB"), load(reference_dir / "i01_01_5.bmp", "RGB")


# --------------------------------------------------------------------------------------------
# Fixture 1: camera + noise


def test_camera_noise_ssim(camera_noise: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = camera_noise
    # REFERENCES.md fixture 1: scikit-image, reference setting (IPOL imdiff: 0.357959).
    assert ssim(a, b).mean == pytest.approx(0.3579642362365813, abs=SSIM_TOL)


def test_camera_noise_psnr_rmse_nrmse(camera_noise: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = camera_noise
    # REFERENCES.md fixture 1: PSNR 22.40935284991332 dB (IPOL: 22.409353).
    assert psnr(a, b) == pytest.approx(22.40935284991332, abs=1e-9)
    # REFERENCES.md fixture 1: RMSE 19.322910305409444, NRMSE 0.9242238811552571 (range 255).
    assert rmse(a, b) == pytest.approx(19.322910305409444, abs=1e-9)
    assert nrmse(a, b) == pytest.approx(0.9242238811552571, abs=1e-12)


def test_camera_noise_ms_ssim(camera_noise: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = camera_noise
    # REFERENCES.md fixture 1: TensorFlow ssim_multiscale 0.793391.
    assert ms_ssim(a, b) == pytest.approx(0.793391, abs=MS_SSIM_TOL)


def test_camera_noise_skimage_defaults_are_another_number(
    camera_noise: tuple[np.ndarray, np.ndarray],
) -> None:
    skm = pytest.importorskip("skimage.metrics")
    a, b = camera_noise
    default = skm.structural_similarity(a, b, data_range=255)  # 7×7 uniform, sample covariance
    # REFERENCES.md fixture 1: scikit-image legacy default 0.3674518327910367 (7 decimals).
    assert default == pytest.approx(0.3674518327910367, abs=1e-7)
    assert abs(ssim(a, b).mean - default) > 1e-3  # samepix's SSIM is the Gaussian one


# --------------------------------------------------------------------------------------------
# Fixture 2: goldhill


def test_goldhill_ssim(goldhill: tuple[np.ndarray, np.ndarray]) -> None:
    # REFERENCES.md fixture 2: 0.6823718172 (scikit-image and TensorFlow agree).
    assert ssim(*goldhill).mean == pytest.approx(0.6823718172, abs=SSIM_TOL)


def test_goldhill_ssim_2009_downsample(goldhill: tuple[np.ndarray, np.ndarray]) -> None:
    # Wang's ssim.m (2009) averages 2×2 blocks first when min(H, W) / 256 rounds to 2.
    a, b = (x.astype(np.float64) for x in goldhill)
    a2 = (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]) / 4
    b2 = (b[0::2, 0::2] + b[1::2, 0::2] + b[0::2, 1::2] + b[1::2, 1::2]) / 4
    # REFERENCES.md fixture 2: 0.8202024645 (MATLAB ssim.m: 0.8202).
    assert ssim(a2, b2).mean == pytest.approx(0.8202024645, abs=SSIM_TOL)


def test_goldhill_psnr(goldhill: tuple[np.ndarray, np.ndarray]) -> None:
    # REFERENCES.md fixture 2: 27.43138889763108 dB.
    assert psnr(*goldhill) == pytest.approx(27.43138889763108, abs=1e-9)


def test_goldhill_ms_ssim(goldhill: tuple[np.ndarray, np.ndarray]) -> None:
    # REFERENCES.md fixture 2: TensorFlow ssim_multiscale 0.901158.
    assert ms_ssim(*goldhill) == pytest.approx(0.901158, abs=MS_SSIM_TOL)


# --------------------------------------------------------------------------------------------
# Fixture 3: TID2013 I01, RGB


def test_tid_i01_ssim_rgb(tid_i01: tuple[np.ndarray, np.ndarray]) -> None:
    channels = ssim_channels(*tid_i01)
    assert len(channels) == 3
    # REFERENCES.md fixture 3: scikit-image channel_axis=2 mean 0.5270696588 (TF 0.527069).
    assert float(np.mean(channels)) == pytest.approx(0.5270696588, abs=SSIM_TOL)


def test_tid_i01_ms_ssim_rgb(tid_i01: tuple[np.ndarray, np.ndarray]) -> None:
    # REFERENCES.md fixture 3: TensorFlow ssim_multiscale on RGB (mean over channels) 0.879965.
    assert ms_ssim(*tid_i01) == pytest.approx(0.879965, abs=MS_SSIM_TOL)


# --------------------------------------------------------------------------------------------
# scikit-image as the oracle on real photographs

PHOTO_CASES = [
    ("kodak", "kodim03.png", 30),
    ("kodak", "kodim13.png", 75),
    ("photos", "007.png", 10),
]
PHOTO_CASES += [("photos", "017.png", 60), ("photos", "021.png", 90)]


@pytest.fixture(scope="module", params=PHOTO_CASES, ids=lambda c: f"{c[1]}-q{c[2]}")
def photo_pair(request: pytest.FixtureRequest) -> tuple[np.ndarray, np.ndarray]:
    folder, name, quality = request.param
    original = load(shared_file(folder, name), "RGB")
    return original, jpeg_copy(original, quality)


def test_photo_ssim_grey_matches_skimage(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (np.asarray(Image.fromarray(x).convert("L")) for x in photo_pair)
    assert ssim(a, b).mean == pytest.approx(sk_ssim(a, b), abs=SSIM_TOL)


def test_photo_ssim_channels_match_skimage(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = photo_pair
    channels = ssim_channels(a, b)
    for i, value in enumerate(channels):
        assert value == pytest.approx(sk_ssim(a[..., i], b[..., i]), abs=SSIM_TOL)
    # Strided channel views (one float32 shift per channel) agree as closely.
    for i, value in enumerate(channels):
        assert ssim(a[..., i], b[..., i]).mean == pytest.approx(value, abs=SSIM_TOL)


def test_photo_ssim_map_matches_skimage(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = (np.ascontiguousarray(x[..., 1]) for x in photo_pair)
    result = ssim(a, b, return_map=True)
    assert result.map is not None
    assert result.map.dtype == np.float32
    assert result.map.shape == (a.shape[0] - 2 * SSIM_BORDER, a.shape[1] - 2 * SSIM_BORDER)
    # Per pixel float32 keeps ~4 digits where a tile mixes very dark and bright areas; the
    # mean (what verdicts use) is far tighter.
    np.testing.assert_allclose(result.map, sk_ssim_map(a, b), atol=5e-4)
    assert float(result.map.mean(dtype=np.float64)) == pytest.approx(result.mean, abs=1e-9)


SIZES = {
    "exactly-11-tall": (11, 300),
    "exactly-11-wide": (257, 11),
    "11x11": (11, 11),
    "odd-101x257": (101, 257),
    "tiles-uneven-397x1700": (397, 1700),
    "many-row-tiles-700x60": (700, 60),
}


@pytest.mark.parametrize("shape", SIZES.values(), ids=SIZES.keys())
def test_odd_sizes_match_skimage(astronaut: np.ndarray, shape: tuple[int, int]) -> None:
    rgb = np.asarray(Image.fromarray(astronaut).resize((shape[1], shape[0]), Image.LANCZOS))
    a = np.ascontiguousarray(rgb[..., 0])
    b = jpeg_copy(a, 40)
    assert ssim(a, b).mean == pytest.approx(sk_ssim(a, b), abs=SSIM_TOL)
    np.testing.assert_allclose(ssim(a, b, return_map=True).map, sk_ssim_map(a, b), atol=5e-4)
    rgb_b = jpeg_copy(rgb, 40)
    expected = sk_ssim(rgb, rgb_b, channel_axis=2)
    assert float(np.mean(ssim_channels(rgb, rgb_b))) == pytest.approx(expected, abs=SSIM_TOL)


def test_small_tiles_have_exact_seams(
    astronaut: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Force tiny tiles (many seams, many threads' worth of tiles) on a small odd image.
    monkeypatch.setattr(metrics, "_TILE_ROWS", 16)
    monkeypatch.setattr(metrics, "_TILE_FLOATS", 72)
    monkeypatch.setattr(metrics, "_spare", [])
    rgb = astronaut[100:203, 50:307]
    b = jpeg_copy(rgb, 20)
    grey_a, grey_b = np.ascontiguousarray(rgb[..., 2]), np.ascontiguousarray(b[..., 2])
    result = ssim(grey_a, grey_b, return_map=True)
    assert result.mean == pytest.approx(sk_ssim(grey_a, grey_b), abs=SSIM_TOL)
    np.testing.assert_allclose(result.map, sk_ssim_map(grey_a, grey_b), atol=5e-4)
    expected = sk_ssim(rgb, b, channel_axis=2)
    assert float(np.mean(ssim_channels(rgb, b))) == pytest.approx(expected, abs=SSIM_TOL)


def test_pixel_types(camera_noise: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = camera_noise
    expected = sk_ssim(a, b)
    # uint16 with its own range, floats in [0, 1], and float64 holding 8-bit values.
    a16, b16 = a.astype(np.uint16) * 257, b.astype(np.uint16) * 257
    assert ssim(a16, b16, data_range=65535).mean == pytest.approx(expected, abs=SSIM_TOL)
    af, bf = a / 255.0, b / 255.0
    assert ssim(af, bf, data_range=1.0).mean == pytest.approx(expected, abs=SSIM_TOL)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    assert ssim(a64, b64).mean == pytest.approx(expected, abs=SSIM_TOL)
    # Integer types share one exact path.
    assert ssim(a.astype(np.int64), b.astype(np.int64)).mean == ssim(a, b).mean


def test_ssim_channels_shapes(astronaut: np.ndarray) -> None:
    a = astronaut[:64, :80]
    b = jpeg_copy(a, 30)
    grey = ssim_channels(a[..., 0], b[..., 0])
    assert grey == (ssim(a[..., 0], b[..., 0]).mean,)
    # Five channels: beyond what OpenCV interleaves, handled channel by channel.
    five_a = np.concatenate([a, a[..., :2]], axis=2)
    five_b = np.concatenate([b, b[..., :2]], axis=2)
    five = ssim_channels(five_a, five_b)
    assert five == tuple(ssim(five_a[..., i], five_b[..., i]).mean for i in range(5))
    # Interleaved RGB shares one float32 shift per tile: equal within the float32 tolerance.
    np.testing.assert_allclose(ssim_channels(a, b), five[:3], atol=SSIM_TOL)


def test_concurrent_calls_agree(astronaut: np.ndarray) -> None:
    a = astronaut
    b = jpeg_copy(a, 50)
    expected = ssim_channels(a, b)
    results: list[tuple[float, ...]] = []

    def run() -> None:
        results.append(ssim_channels(a, b))

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [expected] * 4  # deterministic, whatever the scheduling


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() with threads, 3.12+
def test_works_in_a_forked_child(astronaut: np.ndarray) -> None:
    # The parent's pool threads do not survive a fork: the child starts its own pool and
    # never waits on a helper that cannot run.
    b = jpeg_copy(astronaut, 50)
    expected = ssim_channels(astronaut, b)
    with multiprocessing.get_context("fork").Pool(1) as pool:
        got = pool.apply_async(ssim_channels, (astronaut, b)).get(timeout=60)
    assert got == expected


def test_kernel_is_scipys_gaussian() -> None:
    ndimage = pytest.importorskip("scipy.ndimage")
    impulse = np.zeros(21)
    impulse[10] = 1.0
    # scikit-image's gaussian_weights=True filters with scipy's gaussian_filter, truncate=3.5.
    expected = ndimage.gaussian_filter1d(impulse, 1.5, truncate=3.5)[5:16]
    kernel = metrics._KERNEL.ravel().astype(np.float64)
    assert kernel.shape == (SSIM_WINDOW,)
    np.testing.assert_allclose(kernel, expected, rtol=0, atol=1e-8)
    assert math.fsum(kernel) == 1.0


# --------------------------------------------------------------------------------------------
# MS-SSIM details, against an independent float64 implementation of TensorFlow's algorithm


def tf_ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """tf.image.ssim_multiscale re-written with scipy in float64 (test oracle)."""
    ndimage = pytest.importorskip("scipy.ndimage")
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = a.astype(np.float64), b.astype(np.float64)
    if x.ndim == 2:
        x, y = x[..., None], y[..., None]
    values = []
    for scale, weight in enumerate(metrics.MS_SSIM_WEIGHTS):
        if scale:
            pads = ((0, x.shape[0] % 2), (0, x.shape[1] % 2), (0, 0))
            x, y = (np.pad(v, pads, mode="symmetric") for v in (x, y))
            x, y = (
                (v[0::2, 0::2] + v[1::2, 0::2] + v[0::2, 1::2] + v[1::2, 1::2]) / 4 for v in (x, y)
            )

        def blur(v: np.ndarray) -> np.ndarray:
            out = np.stack(
                [ndimage.gaussian_filter(v[..., c], 1.5, truncate=3.5) for c in range(v.shape[2])],
                axis=2,
            )
            inner: np.ndarray = out[5:-5, 5:-5]
            return inner

        mx, my = blur(x), blur(y)
        vx, vy, cxy = blur(x * x) - mx**2, blur(y * y) - my**2, blur(x * y) - mx * my
        cs = (2 * cxy + c2) / (vx + vy + c2)
        lum = (2 * mx * my + c1) / (mx**2 + my**2 + c1)
        term = (lum * cs if scale == 4 else cs).mean(axis=(0, 1))
        values.append(np.maximum(term, 0) ** weight)
    return float(np.prod(values, axis=0).mean())


@pytest.mark.parametrize("shape", [(176, 176), (177, 301), (255, 383)], ids=str)
def test_ms_ssim_odd_sizes_match_tf_algorithm(
    astronaut: np.ndarray, shape: tuple[int, int]
) -> None:
    a = np.asarray(Image.fromarray(astronaut).resize((shape[1], shape[0]), Image.LANCZOS))
    b = jpeg_copy(a, 25)
    assert ms_ssim(a, b) == pytest.approx(tf_ms_ssim(a, b), abs=1e-6)
    assert ms_ssim(a[..., 1], b[..., 1]) == pytest.approx(
        tf_ms_ssim(a[..., 1], b[..., 1]), abs=1e-6
    )


def test_ms_ssim_identical_and_symmetric(goldhill: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = goldhill
    assert ms_ssim(a, a) == pytest.approx(1.0, abs=1e-6)
    assert ms_ssim(a, b) == pytest.approx(ms_ssim(b, a), abs=1e-7)


def test_ms_ssim_min_side_constant() -> None:
    assert MS_SSIM_MIN_SIDE == 11 * 2**4 == 176


@pytest.mark.parametrize("shape", [(176, 176), (177, 301), (255, 383)], ids=str)
def test_ssim_and_ms_ssim_in_one_pass_is_ssim_and_ms_ssim(
    astronaut: np.ndarray, shape: tuple[int, int]
) -> None:
    grey = np.asarray(Image.fromarray(astronaut).convert("L").resize((shape[1], shape[0])))
    a, b = grey, jpeg_copy(grey, 25)
    mean, ssim_map, ms = ssim_and_ms_ssim(a, b, want_ms=True)
    alone = ssim(a, b, return_map=True)
    assert mean == alone.mean and ms == ms_ssim(a, b)  # the same arithmetic: the same numbers
    assert alone.map is not None and np.array_equal(ssim_map, alone.map)
    assert ssim_and_ms_ssim(a, b, want_ms=False)[2] is None
    with pytest.raises(ValueError, match="too small"):
        ssim_and_ms_ssim(a[:100], b[:100], want_ms=True)


# --------------------------------------------------------------------------------------------
# PSNR, RMSE, NRMSE


def test_psnr_matches_skimage(photo_pair: tuple[np.ndarray, np.ndarray]) -> None:
    skm = pytest.importorskip("skimage.metrics")
    a, b = photo_pair
    expected = skm.peak_signal_noise_ratio(a, b, data_range=255)
    assert psnr(a, b) == pytest.approx(expected, abs=1e-9)


def test_rmse_nrmse_any_pixel_type() -> None:
    rng = np.random.default_rng(3)
    for dtype in (np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_):
        a = (rng.random((13, 17, 3)) * 100).astype(dtype)
        b = (rng.random((13, 17, 3)) * 100).astype(dtype)
        d = a.astype(np.float64) - b.astype(np.float64)
        expected = math.sqrt(float(np.mean(d * d)))
        assert rmse(a, b) == pytest.approx(expected, rel=1e-6, abs=1e-12), dtype
        span = max(float(a.max()), float(b.max())) - min(float(a.min()), float(b.min()))
        expected_n = 1.0 - expected / span if span else 1.0
        assert nrmse(a, b) == pytest.approx(expected_n, rel=1e-6), dtype


def test_simple_values() -> None:
    a = np.zeros((4, 5), np.uint8)
    b = np.full((4, 5), 3, np.uint8)
    assert rmse(a, b) == pytest.approx(3.0, rel=1e-15)
    assert psnr(a, b) == pytest.approx(20 * math.log10(255 / 3))
    assert nrmse(a, b) == pytest.approx(0.0, abs=1e-15)  # the range is 3, all of it error
    assert nrmse(b, b) == 1.0  # equal constants: identical, no division by zero
    assert psnr(np.arange(10.0), np.arange(10.0) + 0.5, data_range=1.0) == pytest.approx(
        10 * math.log10(1 / 0.25)
    )


def test_psnr_identical_is_inf_without_warning(recwarn: pytest.WarningsRecorder) -> None:
    a = np.full((20, 20, 3), 7, np.uint8)
    assert psnr(a, a) == math.inf
    assert len(recwarn) == 0


# --------------------------------------------------------------------------------------------
# region_means


def test_region_means_partial_blocks() -> None:
    m = np.arange(35, dtype=np.float32).reshape(5, 7)
    grid = region_means(m, 3)
    assert grid.shape == (2, 3)
    expected = [
        [m[0:3, 0:3].mean(), m[0:3, 3:6].mean(), m[0:3, 6:].mean()],
        [m[3:, 0:3].mean(), m[3:, 3:6].mean(), m[3:, 6:].mean()],
    ]
    np.testing.assert_allclose(grid, expected, rtol=1e-12)
    np.testing.assert_allclose(region_means(m, 1), m)
    np.testing.assert_allclose(region_means(m, 100), [[m.mean()]])


def test_region_means_finds_a_local_edit(astronaut: np.ndarray) -> None:
    a = np.ascontiguousarray(astronaut[..., 1])
    b = a.copy()
    b[300:340, 200:240] = 255 - b[300:340, 200:240]  # a small pasted patch
    result = ssim(a, b, return_map=True)
    assert result.map is not None
    grid = region_means(result.map, 50)
    row, col = np.unravel_index(int(np.argmin(grid)), grid.shape)
    assert result.mean > 0.97  # the global score hides it...
    assert grid.min() < 0.6  # ...the worst region does not, and it is where the patch is
    centre = (320 - SSIM_BORDER, 220 - SSIM_BORDER)  # in map coordinates
    assert row * 50 <= centre[0] < row * 50 + 50
    assert col * 50 <= centre[1] < col * 50 + 50


# --------------------------------------------------------------------------------------------
# Properties

small_side = st.integers(SSIM_WINDOW, 40)


@st.composite
def image_pairs(draw: st.DrawFn, dtype: type = np.uint8) -> tuple[np.ndarray, np.ndarray]:
    shape = draw(st.tuples(small_side, small_side))
    a = draw(hnp.arrays(dtype, shape))
    b = draw(hnp.arrays(dtype, shape))
    return a, b


@settings(max_examples=30, deadline=None)
@given(image_pairs())
def test_ssim_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    assert ssim(a, a).mean == pytest.approx(1.0, abs=1e-6)
    ab, ba = ssim(a, b).mean, ssim(b, a).mean
    assert ab == pytest.approx(ba, abs=1e-6)
    assert -1.0 - 1e-6 <= ab <= 1.0 + 1e-6


@settings(max_examples=30, deadline=None)
@given(image_pairs())
def test_psnr_nrmse_properties(pair: tuple[np.ndarray, np.ndarray]) -> None:
    a, b = pair
    assert psnr(a, a) == math.inf
    assert nrmse(a, a) == 1.0
    assert psnr(a, b) == psnr(b, a)
    assert nrmse(a, b) == nrmse(b, a)
    assert 0.0 <= nrmse(a, b) <= 1.0


@settings(max_examples=30, deadline=None)
@given(
    st.tuples(st.integers(1, 30), st.integers(1, 30)),
    st.floats(-1.0, 1.0, width=32),
    st.integers(1, 40),
)
def test_region_means_of_constant_map(shape: tuple[int, int], value: float, tile: int) -> None:
    grid = region_means(np.full(shape, value, np.float32), tile)
    assert grid.shape == (-(-shape[0] // tile), -(-shape[1] // tile))
    np.testing.assert_allclose(grid, value, rtol=1e-12, atol=1e-15)


# --------------------------------------------------------------------------------------------
# Errors

ALL_PAIR_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], object]] = {
    "ssim": ssim,
    "ssim_channels": ssim_channels,
    "ms_ssim": ms_ssim,
    "psnr": psnr,
    "rmse": rmse,
    "nrmse": nrmse,
}


@pytest.mark.parametrize("fn", ALL_PAIR_METRICS.values(), ids=ALL_PAIR_METRICS.keys())
def test_shape_mismatch_names_both_shapes(fn: Callable[[np.ndarray, np.ndarray], object]) -> None:
    with pytest.raises(ValueError, match=r"\(200, 200\) vs \(200, 201\)"):
        fn(np.zeros((200, 200), np.uint8), np.zeros((200, 201), np.uint8))


@pytest.mark.parametrize("shape", [(10, 50), (50, 10), (0, 0)], ids=str)
def test_ssim_too_small(shape: tuple[int, int]) -> None:
    a = np.zeros(shape, np.uint8)
    with pytest.raises(ValueError, match=rf"\({shape[0]}, {shape[1]}\)"):
        ssim(a, a)
    with pytest.raises(ValueError, match=rf"\({shape[0]}, {shape[1]}"):
        ssim_channels(a, a)


def test_ssim_is_two_dimensional() -> None:
    a = np.zeros((20, 20, 3), np.uint8)
    with pytest.raises(ValueError, match=r"ssim_channels"):
        ssim(a, a)
    with pytest.raises(ValueError, match=r"\(20, 20, 3, 1\)"):
        ssim_channels(a[..., None], a[..., None])


def test_ms_ssim_too_small() -> None:
    a = np.zeros((175, 300), np.uint8)
    with pytest.raises(ValueError, match=r"\(175, 300\).*176"):
        ms_ssim(a, a)


@pytest.mark.parametrize("data_range", [0.0, -1.0, math.nan, math.inf])
def test_bad_data_range(data_range: float) -> None:
    a = np.zeros((200, 200), np.uint8)
    for fn in (ssim, ssim_channels, ms_ssim, psnr):
        with pytest.raises(ValueError, match="data_range"):
            fn(a, a, data_range=data_range)  # type: ignore[operator]


def test_bad_region_means_arguments() -> None:
    with pytest.raises(ValueError, match="tile"):
        region_means(np.zeros((5, 5)), 0)
    with pytest.raises(ValueError, match=r"\(5,\)"):
        region_means(np.zeros(5), 2)


def test_result_is_frozen() -> None:
    a = np.zeros((20, 20), np.uint8)
    result = ssim(a, a)
    assert result == SsimResult(mean=1.0, map=None)
    with pytest.raises(AttributeError):
        result.mean = 0.5  # type: ignore[misc]


def test_nrmse_of_opposite_extremes_is_exactly_zero() -> None:
    # Found by Hypothesis: RMSE == span gave 1 - 1.0000000000000002 = -2.2e-16.
    black, white = np.zeros((3, 3), np.uint8), np.full((3, 3), 255, np.uint8)
    assert nrmse(black, white) == 0.0
