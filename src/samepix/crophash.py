"""Hashes of crops of a picture, kept in the index for each file, so that a query which is a
crop of an indexed file can be found (``find``/``sync`` with ``--crop-is-same``), and pairs of
files where one is a crop of the other (``dupes --crop-is-same``).

A picture's pHash and dHash change beyond the candidate distance once a crop leaves out more
than a few percent of it, so the plain hashes find only crops keeping about 80 % of the area
or more. The index therefore keeps the hashes of :data:`STORED_CROPS` of every file (49 slots,
784 bytes a file); a query that is a crop keeping at least 70 % of each side lands close to one
of them, or one of the query's own crops (:data:`QUERY_CROPS`) lands close to one. The full
comparison then locates the crop (``samepix.relations``) and the policy decides.

The hashes here are made the same way for indexed files and queries, and are only ever
compared with each other: every crop is an exact area average (two matrix products) of one
small copy of the grey image, then pHash's DCT and dHash's steps are taken as imagehash does.
About 1.5 ms a picture for the 49 crops, where Pillow's LANCZOS resize takes 35 ms.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "CROP_SIDES",
    "QUERY_CROPS",
    "STORED_CROPS",
    "STORED_CROPS_ID",
    "crop_hashes",
]

Rect = tuple[float, float, float, float]  # width kept, height kept, x anchor, y anchor (0–1)


def _stored_crop_rects() -> tuple[Rect, ...]:
    """(width kept, height kept, x anchor, y anchor) of each stored crop; slot 0 is the whole
    picture. Each side keeps 100, 85 or 70 % (not both 100 %), at the start, middle or end."""
    rects = [(1.0, 1.0, 0.5, 0.5)]
    for sx in CROP_SIDES:
        for sy in CROP_SIDES:
            if (sx, sy) == (1.0, 1.0):
                continue
            for ax in (0.5,) if sx == 1.0 else (0.0, 0.5, 1.0):
                for ay in (0.5,) if sy == 1.0 else (0.0, 0.5, 1.0):
                    rects.append((sx, sy, ax, ay))
    return tuple(rects)


CROP_SIDES = (1.0, 0.85, 0.7)
"""Fractions of a side that the index's crop hashes keep (see :data:`STORED_CROPS`)."""

STORED_CROPS = _stored_crop_rects()
"""The crops of every indexed file whose pHash and dHash the index keeps (49 slots, 784 bytes
a file): the whole picture and 48 crops keeping 100/85/70 % of each side at the start, middle or
end. A query that is a crop keeping at least 70 % of each side lands within the candidate
distance of one of them, or one of its own crops does (measured by
``benchmarks/crop_recall.py``). Slot 0, the whole picture, is hashed the same way as the crops,
so a file and a crop of it can be compared through this table alone (``dupes``)."""

QUERY_CROPS = tuple(r for r in STORED_CROPS if r[:2] in ((1.0, 1.0), (0.85, 0.85)))
"""What of the query is looked up in the crop table: the whole query and its nine crops keeping
85 % of each side. A crop of the query lands near a stored crop where the query alone lands
between two (measured on 48 Kodak and photos pictures, 288 random crops keeping 70–100 % of each
side: found 99.7 % of the time, against 92.7 % for the whole query alone; with all 49 crops of
the query, no more, for 5× the lookup time and 2.6× the false candidates)."""

#: Names the grid in the index (``meta.crop_grid``): an index made with another grid has its
#: crop hashes made again at the next update.
STORED_CROPS_ID = hashlib.sha256(repr(STORED_CROPS).encode()).hexdigest()[:16]


def crop_hashes(grey: Any, rects: Sequence[Rect] = STORED_CROPS) -> np.ndarray:
    """pHash and dHash of crops of a grey PIL image: ``(len(rects), 2)`` int64 (as stored).

    Not imagehash's bits (hash_image): every crop is area-averaged from one small copy of the
    image with two matrix products (about 1 ms for the 49 crops, where 49 Pillow LANCZOS resizes
    take 35 ms), then the DCT of pHash and the steps of dHash are taken as imagehash does. Only
    hashes made by this function are ever compared with each other.
    """
    pixels = np.asarray(grey, dtype=np.float32)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ValueError("crop_hashes needs a non-empty grey image")
    pixels = _shrink(pixels, _CROP_WORK_SIDE)
    h, w = pixels.shape
    n = len(rects)
    rows32, cols32, rows8, cols9 = _crop_weights(h, w, tuple(rects))
    small = np.matmul(np.matmul(rows32, pixels), cols32).astype(np.float64)  # (n, 32, 32)
    dct = _dct_rows()
    low = np.matmul(np.matmul(dct, small), dct.T)  # (n, 8, 8)
    flat = low.reshape(n, 64)
    p_bits = flat > np.median(flat, axis=1, keepdims=True)
    tiny = np.matmul(np.matmul(rows8, pixels), cols9)  # (n, 8, 9)
    d_bits = (tiny[:, :, 1:] > tiny[:, :, :-1]).reshape(n, 64)
    out = np.empty((n, 2), np.int64)
    out[:, 0] = np.packbits(p_bits, axis=1).view(">u8")[:, 0].astype(np.uint64).view(np.int64)
    out[:, 1] = np.packbits(d_bits, axis=1).view(">u8")[:, 0].astype(np.uint64).view(np.int64)
    return out


# Crops are hashed from a copy of at most this many pixels a side (box-reduced): pHash reads only
# the lowest 8×8 frequencies of 32×32, which 64 px keep.
_CROP_WORK_SIDE = 96


def _shrink(pixels: np.ndarray, side: int) -> np.ndarray:
    """Box-reduce by the largest integer factor that leaves the longer side at least ``side``
    (a long thin picture: its shorter side at least 16)."""
    h, w = pixels.shape
    factor = max(1, int(max(h, w) // side))
    if factor == 1:
        return pixels
    h2, w2 = h // factor, w // factor
    if min(h2, w2) < 16:  # a long thin picture: keep its short side
        factor = max(1, min(h, w) // 16)
        if factor == 1:
            return pixels
        h2, w2 = h // factor, w // factor
    trimmed = pixels[: h2 * factor, : w2 * factor]
    out: np.ndarray = trimmed.reshape(h2, factor, w2, factor).mean(axis=(1, 3), dtype=np.float32)
    return out


@functools.lru_cache(maxsize=32)  # a folder's pictures mostly share a few sizes
def _crop_weights(
    h: int, w: int, rects: tuple[Rect, ...]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Row and column weights of every crop: 32 × 32 (pHash) and 8 × 9 (dHash) area means."""
    box = np.asarray(rects, dtype=np.float64).reshape(len(rects), 4)
    cw, ch = w * box[:, 0], h * box[:, 1]
    x0, y0 = (w - cw) * box[:, 2], (h - ch) * box[:, 3]
    return (
        _area_weights(y0, y0 + ch, 32, h),
        _area_weights(x0, x0 + cw, 32, w).transpose(0, 2, 1).copy(),
        _area_weights(y0, y0 + ch, 8, h),
        _area_weights(x0, x0 + cw, 9, w).transpose(0, 2, 1).copy(),
    )


def _area_weights(start: np.ndarray, stop: np.ndarray, bins: int, size: int) -> np.ndarray:
    """``(n, bins, size)`` weights: bin b of crop k is the area average of its share of
    [start[k], stop[k]) (pixel p covers [p, p + 1))."""
    steps = np.arange(bins + 1, dtype=np.float64) / bins
    edges = start[:, None] + (stop - start)[:, None] * steps[None, :]  # (n, bins + 1)
    pixel = np.arange(size, dtype=np.float64)
    lo = np.maximum(edges[:, :-1, None], pixel)
    hi = np.minimum(edges[:, 1:, None], pixel + 1.0)
    weights = np.clip(hi - lo, 0.0, None)
    weights /= np.maximum(weights.sum(axis=2, keepdims=True), 1e-12)
    out: np.ndarray = weights.astype(np.float32)
    return out


_DCT_ROWS: np.ndarray | None = None


def _dct_rows() -> np.ndarray:
    """The 8 lowest rows of the unnormalised 32-point DCT-II (pHash's coefficients)."""
    global _DCT_ROWS
    if _DCT_ROWS is None:
        n = np.arange(32)
        k = np.arange(8)[:, None]
        _DCT_ROWS = 2.0 * np.cos(np.pi * k * (2 * n + 1) / 64.0)
    return _DCT_ROWS
