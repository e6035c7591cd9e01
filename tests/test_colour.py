"""The grey test decides with the exact CIE chroma wherever OpenCV's Lab could not disagree.

OpenCV's float RGB→Lab interpolates a table it builds on first use (a one-shot ``compare``
waited ~30 ms for it); :func:`samepix.colour.exact_chroma` needs none. The grey test keeps
OpenCV's answer by using the exact value only further than OpenCV's error from the threshold.
"""

from __future__ import annotations

import importlib

import cv2
import numpy as np
import pytest

from samepix.colour import OPENCV_CHROMA_ERROR, exact_chroma, to_lab

compare_module = importlib.import_module("samepix.compare")


def opencv_chroma(rgb: np.ndarray) -> np.ndarray:
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)
    out: np.ndarray = np.hypot(lab[..., 1], lab[..., 2])
    return out


def test_opencv_chroma_is_within_the_stated_error_of_the_formula_for_every_8_bit_colour() -> None:
    levels = np.arange(256, dtype=np.uint8)
    worst = 0.0
    for red in range(0, 256, 16):  # 16 reds at a time: 1 M colours, ~100 MB of float64
        reds = np.arange(red, red + 16, dtype=np.uint8)
        rgb = np.stack(np.meshgrid(reds, levels, levels, indexing="ij"), -1).reshape(-1, 256, 3)
        worst = max(worst, float(np.abs(opencv_chroma(rgb) - exact_chroma(rgb)).max()))
    assert worst <= OPENCV_CHROMA_ERROR
    assert worst > 0.1  # the two differ: the exact path is not OpenCV's under another name


def opencv_only_grey(pixels: np.ndarray, alpha: np.ndarray | None) -> bool:
    """The grey test as it was: OpenCV's chroma of the same thumbnail, always."""
    from samepix.align import resize_area

    h, w = pixels.shape[:2]
    step = max(1, min(h, w) // 256)
    small = pixels[::step, ::step]
    scale = min(1.0, 64 / min(small.shape[:2]))
    size = (max(1, round(small.shape[1] * scale)), max(1, round(small.shape[0] * scale)))
    lab = to_lab(resize_area(np.ascontiguousarray(small), size).astype(np.float32) / 255.0)
    chroma = np.hypot(lab[:, :, 1], lab[:, :, 2])
    if alpha is not None:
        shown = resize_area(np.ascontiguousarray(alpha[::step, ::step]), size) > 0
        chroma = chroma[shown] if shown.any() else chroma
    return bool(chroma.max() < compare_module._GREY_CHROMA)


def pictures() -> list[tuple[str, np.ndarray, np.ndarray | None]]:
    """Colour, grey and faintly tinted pictures, some right at the grey threshold."""
    rng = np.random.default_rng(7)
    base = cv2.GaussianBlur(rng.integers(0, 256, (240, 320), dtype=np.uint8), (0, 0), 6)
    grey = np.dstack([base] * 3)
    out: list[tuple[str, np.ndarray, np.ndarray | None]] = [
        ("colour noise", rng.integers(0, 256, (200, 300, 3), dtype=np.uint8), None),
        ("grey", grey, None),
    ]
    # Tints of a level or a few on one channel: their chroma crosses the threshold of 2.
    for level in range(1, 7):
        for channel in range(3):
            tinted = grey.astype(np.int16)
            tinted[..., channel] += level
            out.append(
                (f"tint +{level} ch{channel}", np.clip(tinted, 0, 255).astype(np.uint8), None)
            )
    alpha = np.zeros((240, 320), np.uint8)
    alpha[60:180, 80:240] = 255
    colour_outside = grey.copy()
    colour_outside[:40, :40] = (255, 0, 0)  # colour only where nothing shows
    out.append(("colour under transparency", colour_outside, alpha))
    return out


@pytest.mark.parametrize(
    ("pixels", "alpha"),
    [pytest.param(p, a, id=name) for name, p, a in pictures()],
)
def test_the_grey_test_answers_as_opencvs_lab_alone_did(
    pixels: np.ndarray, alpha: np.ndarray | None
) -> None:
    assert compare_module._looks_grey_pixels(pixels, alpha) == opencv_only_grey(pixels, alpha)


def test_a_borderline_tint_is_left_to_opencv_and_the_tints_straddle_the_threshold(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def counted(rgb: np.ndarray) -> np.ndarray:
        calls.append(rgb.shape)
        return to_lab(rgb)

    monkeypatch.setattr("samepix.colour.to_lab", counted)
    answers = {
        compare_module._looks_grey_pixels(p, a) for name, p, a in pictures() if "tint" in name
    }
    assert answers == {True, False}
    assert 0 < len(calls) < 18  # some of the 18 tints were near enough to need OpenCV's answer


def test_a_clearly_coloured_or_grey_picture_is_decided_without_opencvs_tables(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_tables(rgb: np.ndarray) -> np.ndarray:
        raise AssertionError("waited for OpenCV's Lab tables")

    monkeypatch.setattr("samepix.colour.to_lab", no_tables)
    named = {name: (p, a) for name, p, a in pictures()}
    assert compare_module._looks_grey_pixels(*named["colour noise"]) is False
    assert compare_module._looks_grey_pixels(*named["grey"]) is True
    assert compare_module._looks_grey_pixels(*named["colour under transparency"]) is True
