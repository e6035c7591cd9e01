"""CIE L*a*b* through OpenCV, and the one-time cost of its first use.

OpenCV builds its Lab tables on the first RGB→Lab conversion (about 0.1 s of CPU, with the GIL
released). A one-shot ``samepix compare`` starts that work in a thread as soon as OpenCV is
imported (:func:`warm_lab_tables`), so it overlaps importing the rest and decoding the files.
Conversions wait for that thread (:func:`to_lab`), never racing the tables' construction.

This module imports only numpy and OpenCV, so the CLI can start the thread before it imports
the comparison ladder.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np

__all__ = ["lab_tables_ready", "to_lab", "warm_lab_tables"]

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
