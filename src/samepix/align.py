"""Size alignment: bring two decoded images to one size so full-reference metrics apply.

When the sizes differ but the aspect ratios agree (within ``Policy.max_aspect_change``), the
larger image is resized to the smaller with OpenCV's INTER_AREA, an antialiasing filter (the
classic advice: never compare through an aliasing resize). When the aspect ratios differ, the
pair is a crop or another picture; nothing is resized and the caller decides from what still
makes sense (hashes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Alignment", "align", "aspect_change", "resize_area"]


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


def align(
    a: np.ndarray,
    b: np.ndarray,
    a_alpha: np.ndarray | None,
    b_alpha: np.ndarray | None,
    *,
    max_aspect_change: float,
) -> Alignment:
    """Resize the larger of ``a``/``b`` (and its alpha) to the smaller's size when possible."""
    size_a = (a.shape[1], a.shape[0])
    size_b = (b.shape[1], b.shape[0])
    if size_a == size_b:
        return Alignment(a, b, a_alpha, b_alpha, aligned=True)
    change = aspect_change(size_a, size_b)
    if change > max_aspect_change:
        return Alignment(a, b, a_alpha, b_alpha, aligned=False, aspect_change=change)
    if size_a[0] * size_a[1] >= size_b[0] * size_b[1]:
        a2 = resize_area(a, size_b)
        alpha2 = None if a_alpha is None else resize_area(a_alpha, size_b)
        return Alignment(a2, b, alpha2, b_alpha, True, "a", size_a, size_b, change)
    b2 = resize_area(b, size_a)
    alpha2 = None if b_alpha is None else resize_area(b_alpha, size_a)
    return Alignment(a, b2, a_alpha, alpha2, True, "b", size_b, size_a, change)
