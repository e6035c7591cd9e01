"""CIE L*a*b* through OpenCV, and the one-time cost of its first use.

OpenCV builds its Lab tables on the first RGB→Lab conversion (about 0.1 s of CPU, with the GIL
released). A one-shot ``samepix compare`` starts that work in a thread as soon as OpenCV is
imported (:func:`warm_lab_tables`), so it overlaps importing the rest and decoding the files.
Conversions wait for that thread (:func:`to_lab`), never racing the tables' construction.

This module imports only numpy and OpenCV, so the CLI can start the thread before it imports
the comparison ladder.

:func:`exact_chroma` is the CIE formula itself, in numpy, with no tables to wait for: it decides
the grey test outright wherever OpenCV's table-interpolated chroma could not decide otherwise
(:data:`OPENCV_CHROMA_ERROR`).
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

__all__ = ["OPENCV_CHROMA_ERROR", "exact_chroma", "lab_tables_ready", "to_lab", "warm_lab_tables"]

_tables: threading.Thread | None = None


def warm_lab_tables() -> None:
    """Have OpenCV build its Lab conversion tables in a background thread now (once)."""
    global _tables
    if _tables is not None:
        return

    def build() -> None:
        cv2.cvtColor(np.zeros((1, 1, 3), np.float32), cv2.COLOR_RGB2Lab)

    # Not a daemon: the interpreter waits for it at exit (a fraction of a second at most)
    # instead of stopping it inside OpenCV, which aborts the process.
    _tables = threading.Thread(target=build, name="samepix-lab-tables")
    _tables.start()


def lab_tables_ready() -> None:
    """Wait for :func:`warm_lab_tables`' thread. Call before the process exits: a thread still
    inside OpenCV when the interpreter shuts down aborts the process ("FATAL: exception not
    rethrown", SIGABRT) — e.g. when the first file turned out to be missing."""
    if _tables is not None:
        _tables.join()


def to_lab(rgb: np.ndarray) -> np.ndarray:
    """CIE L*a*b* of float RGB in 0–1 (OpenCV's conversion)."""
    if _tables is not None:
        _tables.join()
    out: np.ndarray = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    return out


#: An upper bound of |C*ab (OpenCV) − C*ab (:func:`exact_chroma`)| for 8-bit colours. OpenCV's
#: float RGB→Lab interpolates a 33³ table; over all 16.7 M 8-bit colours its chroma is within
#: 0.55 of the formula's (test_colour measures it against the installed OpenCV).
OPENCV_CHROMA_ERROR = 1.0

# sRGB D65 to XYZ (OpenCV's coefficients), each row scaled by the white point's X, Y, Z.
_RGB_TO_XYZ_WHITE = np.array(
    [
        [0.412453 / 0.950456, 0.357580 / 0.950456, 0.180423 / 0.950456],
        [0.212671, 0.715160, 0.072169],
        [0.019334 / 1.088754, 0.119193 / 1.088754, 0.950227 / 1.088754],
    ]
)
_LEVELS = np.arange(256) / 255.0
_LINEAR = np.where(_LEVELS <= 0.04045, _LEVELS / 12.92, ((_LEVELS + 0.055) / 1.055) ** 2.4)


def exact_chroma(rgb: np.ndarray) -> np.ndarray:
    """C*ab (CIE76 chroma, D65) of each pixel of an H×W×3 uint8 sRGB image, from the CIE
    formulas in float64 (a small image: this is for thumbnails)."""
    xyz = _LINEAR[rgb] @ _RGB_TO_XYZ_WHITE.T
    f = np.where(xyz > 0.008856, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    out: np.ndarray = np.hypot(a, b)
    return out
