"""Size alignment: bring two decoded images to one size so full-reference metrics apply.

When the sizes differ but the aspect ratios agree (within ``Policy.max_aspect_change``), the
larger image is resized to the smaller with OpenCV's INTER_AREA, an antialiasing filter (the
classic advice: never compare through an aliasing resize). An image with alpha is resized with
its colour premultiplied by alpha (then divided again), as every correct resizer does: averaged
as stored, the colour of invisible pixels (black, usually) would bleed into the edges of an icon
or logo and darken them. When the aspect ratios differ, the
pair is a crop or another picture; nothing is resized and the caller decides from what still
makes sense (hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Alignment", "align", "aspect_change", "resize_area", "resize_with_alpha"]


@dataclass(frozen=True, eq=False)
class Alignment:
    """Two images of one size (or ``aligned=False`` when their aspect ratios differ)."""

    a: np.ndarray
    b: np.ndarray
    a_alpha: np.ndarray | None
    b_alpha: np.ndarray | None
    aligned: bool
    resized: str | None = None  # "a" or "b": which side was resized
    from_size: tuple[int, int] | None = None  # (width, height) before
    to_size: tuple[int, int] | None = None
    aspect_change: float = 0.0


def aspect_change(size_a: tuple[int, int], size_b: tuple[int, int]) -> float:
    """Relative difference of two aspect ratios, |ra − rb| / min(ra, rb); sizes are (w, h)."""
    ra = size_a[0] / size_a[1]
    rb = size_b[0] / size_b[1]
    return abs(ra - rb) / min(ra, rb)


def resize_area(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize an H×W(×C) uint8 array to ``size`` = (width, height) with INTER_AREA."""
    import cv2

    if (arr.shape[1], arr.shape[0]) == size:
        return arr
    out: np.ndarray = cv2.resize(arr, size, interpolation=cv2.INTER_AREA)
    return out


def resize_with_alpha(
    arr: np.ndarray, alpha: np.ndarray | None, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Resize colour and alpha to ``size`` = (width, height), the colour premultiplied by alpha.

    Fully transparent pixels of the result get colour 0 (they have none to show).
    """
    import cv2

    if alpha is None:
        return resize_area(arr, size), None
    if (arr.shape[1], arr.shape[0]) == size:
        return arr, alpha
    # One colour plane at a time: the float32 temporaries are 8 bytes a pixel of the large
    # image (alpha as weights, one weighted plane), not 28 (every plane, and a copy of each
    # before the product); INTER_AREA treats planes apart, so the result is the same.
    weight = alpha.astype(np.float32)
    coverage: np.ndarray = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    planes = [arr[:, :, c] for c in range(arr.shape[2])] if arr.ndim == 3 else [arr]
    resized = []
    for plane in planes:
        weighted = np.multiply(plane, weight, dtype=np.float32)
        resized.append(cv2.resize(weighted, size, interpolation=cv2.INTER_AREA))
        del weighted
    del weight
    colour: np.ndarray = np.dstack(resized) if arr.ndim == 3 else resized[0]
    shown = np.maximum(coverage, np.float32(1e-6))
    colour = colour / (shown[:, :, None] if colour.ndim == 3 else shown)
    out = np.clip(np.rint(colour), 0, 255).astype(np.uint8)
    new_alpha = np.clip(np.rint(coverage), 0, 255).astype(np.uint8)
    out[new_alpha == 0] = 0
    return out, new_alpha


def align(
    a: np.ndarray,
    b: np.ndarray,
    a_alpha: np.ndarray | None,
    b_alpha: np.ndarray | None,
    *,
    max_aspect_change: float,
    max_side: int | None = None,
) -> Alignment:
    """Resize the larger of ``a``/``b`` (and its alpha) to the smaller's size when possible.

    With ``max_side``, two images of one size are both shrunk to at most ``max_side`` pixels
    on the longer side (images of two sizes are compared at the smaller one's, as without it).
    """
    size_a = (a.shape[1], a.shape[0])
    size_b = (b.shape[1], b.shape[0])
    change = 0.0 if size_a == size_b else aspect_change(size_a, size_b)
    if change > max_aspect_change:
        return Alignment(a, b, a_alpha, b_alpha, aligned=False, aspect_change=change)
    larger_is_a = size_a[0] * size_a[1] >= size_b[0] * size_b[1]
    # Two images of one size are shrunk alike. A resized copy is not: shrinking it again by a
    # fraction resamples its pixels twice, which can read as a local edit (a 561 px copy of a
    # 1024 px picture, both taken to 512, failed the local-change test that it passes at 561).
    target = _fit(size_a, max_side) if size_a == size_b else size_b if larger_is_a else size_a
    a2, a_alpha2 = resize_with_alpha(a, a_alpha, target)
    b2, b_alpha2 = resize_with_alpha(b, b_alpha, target)
    if size_a == size_b:
        return Alignment(a2, b2, a_alpha2, b_alpha2, aligned=True)
    if larger_is_a:
        return Alignment(a2, b2, a_alpha2, b_alpha2, True, "a", size_a, size_b, change)
    return Alignment(a2, b2, a_alpha2, b_alpha2, True, "b", size_b, size_a, change)


def _fit(size: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """``size`` = (width, height) scaled to at most ``max_side`` on its longer side."""
    width, height = size
    longer = max(width, height)
    if max_side is None or longer <= max_side:
        return size
    scale = max_side / longer
    return max(1, round(width * scale)), max(1, round(height * scale))
