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
96 × 96 copy of the grey image, then pHash's DCT and dHash's steps are taken as imagehash does.
Well under a millisecond a picture for the 49 crops (49 Pillow LANCZOS resizes take 35 ms).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
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
side, JPEG q85: a stored crop within 12 bits for 99.0 % of them, against 92.7 % for the whole
query alone; with all 49 crops of the query, no more, for 5× the lookup time and 2.3× the false
candidates: 52 of the 2,256 pairs of different pictures instead of 23)."""

#: Names the grid in the index (``meta.crop_grid``): an index made with another grid has its
#: crop hashes made again at the next update.
STORED_CROPS_ID = hashlib.sha256(repr(STORED_CROPS).encode()).hexdigest()[:16]


def crop_hashes(grey: Any, rects: Sequence[Rect] = STORED_CROPS) -> np.ndarray:
    """pHash and dHash of crops of a grey PIL image (or 2-D uint8 array):
    ``(len(rects), 2)`` int64 (as stored).

    Not imagehash's bits (hash_image): every crop is area-averaged from one 96 × 96 copy of the
    image with two matrix products (well under a millisecond for the 49 crops, where 49 Pillow
    LANCZOS resizes take 35 ms), then the DCT of pHash and the steps of dHash are taken as
    imagehash does. Only hashes made by this function are ever compared with each other.
    """
    from PIL import Image

    if not isinstance(grey, Image.Image):
        grey = Image.fromarray(np.asarray(grey, dtype=np.uint8))
    if grey.width == 0 or grey.height == 0:
        raise ValueError("crop_hashes needs a non-empty grey image")
    # One fixed working size, whatever the picture's: the crops are fractions of it and both
    # hashes squash to a square anyway, so the area weights are computed once, not per size.
    side = _CROP_WORK_SIDE
    pixels = np.asarray(grey.convert("L").resize((side, side), Image.Resampling.BOX), np.float32)
    n = len(rects)
    weights = _crop_weights(side, tuple(rects))
    # pHash's 8 × 8 lowest DCT coefficients of each crop's 32 × 32 area means, and dHash's 8 × 9
    # area means: every crop is a (vertical interval, horizontal interval) pair, and the grid
    # has few distinct ones, so all crops come from two matrix products over them.
    low = (weights.p_rows @ pixels @ weights.p_cols.T).astype(np.float64)
    low = low.reshape(weights.ny, 8, weights.nx, 8)[weights.y_of, :, weights.x_of, :]
    flat = low.reshape(n, 64)
    p_bits = flat > np.median(flat, axis=1, keepdims=True)
    tiny = weights.d_rows @ pixels @ weights.d_cols.T
    tiny = tiny.reshape(weights.ny, 8, weights.nx, 9)[weights.y_of, :, weights.x_of, :]
    d_bits = (tiny[:, :, 1:] > tiny[:, :, :-1]).reshape(n, 64)
    out = np.empty((n, 2), np.int64)
    out[:, 0] = np.packbits(p_bits, axis=1).view(">u8")[:, 0].astype(np.uint64).view(np.int64)
    out[:, 1] = np.packbits(d_bits, axis=1).view(">u8")[:, 0].astype(np.uint64).view(np.int64)
    return out


# Crops are hashed from a copy of this many pixels a side (area-averaged, aspect ignored):
# pHash reads only the lowest 8×8 frequencies of 32×32, which a 70 % crop of 96 px (67 px) keeps.
_CROP_WORK_SIDE = 96


@dataclass(frozen=True, eq=False)
class _Weights:
    """Linear maps from the working copy to every distinct interval's coefficients."""

    p_rows: np.ndarray  # (ny × 8, side): DCT rows of the 32 area means of each vertical interval
    p_cols: np.ndarray  # (nx × 8, side): the same for each horizontal interval
    d_rows: np.ndarray  # (ny × 8, side): 8 area means of each vertical interval
    d_cols: np.ndarray  # (nx × 9, side): 9 area means of each horizontal interval
    ny: int
    nx: int
    y_of: np.ndarray  # each crop's vertical interval
    x_of: np.ndarray  # each crop's horizontal interval


@functools.lru_cache(maxsize=8)
def _crop_weights(side: int, rects: tuple[Rect, ...]) -> _Weights:
    ys = sorted({(r[1], r[3]) for r in rects})
    xs = sorted({(r[0], r[2]) for r in rects})
    dct = _dct_rows()

    def intervals(kept: list[tuple[float, float]], bins: int, transform: bool) -> np.ndarray:
        fraction = np.array([k for k, _ in kept], np.float64)
        anchor = np.array([a for _, a in kept], np.float64)
        start = (side - side * fraction) * anchor
        w = _area_weights(start, start + side * fraction, bins, side)  # (m, bins, side)
        if transform:
            w = np.matmul(dct, w)  # (m, 8, side)
        return w.reshape(-1, side).astype(np.float32)

    return _Weights(
        p_rows=intervals(ys, 32, True),
        p_cols=intervals(xs, 32, True),
        d_rows=intervals(ys, 8, False),
        d_cols=intervals(xs, 9, False),
        ny=len(ys),
        nx=len(xs),
        y_of=np.array([ys.index((r[1], r[3])) for r in rects]),
        x_of=np.array([xs.index((r[0], r[2])) for r in rects]),
    )


def _area_weights(start: np.ndarray, stop: np.ndarray, bins: int, size: int) -> np.ndarray:
    """``(n, bins, size)`` weights: bin b of interval k is the area average of its share of
    [start[k], stop[k]) (pixel p covers [p, p + 1))."""
    steps = np.arange(bins + 1, dtype=np.float64) / bins
    edges = start[:, None] + (stop - start)[:, None] * steps[None, :]  # (n, bins + 1)
    pixel = np.arange(size, dtype=np.float64)
    lo = np.maximum(edges[:, :-1, None], pixel)
    hi = np.minimum(edges[:, 1:, None], pixel + 1.0)
    weights = np.clip(hi - lo, 0.0, None)
    weights /= np.maximum(weights.sum(axis=2, keepdims=True), 1e-12)
    out: np.ndarray = weights
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
