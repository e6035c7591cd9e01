"""The query's mirror images and rotations, described as an indexed file is, so a folder search
can find a copy that was mirrored or rotated in its pixels.

Perceptual hashes (pHash, dHash) and the index's 16×16 thumbnail change completely when a
picture is mirrored or turned by 90°, so the index — which stores them for each file as it
stands — never offers such a copy as a candidate. The seven other members of the picture's
dihedral group (three rotations, four mirror images) are cheap to describe from the query's
small grey image (the one its own hashes came from): a few milliseconds each. ``find`` looks
them up when the query as it stands matched nothing, and, for the kinds the policy counts as the
same, also beside a match (so the common case without those options costs nothing more); the
comparison of each candidate then finds the relation itself (``Policy.find_relations``) and the
policy decides whether it counts as ``same`` (``flip_is_same``, ``rotation_is_same``) or
``similar``.

Crops: :func:`crop_variants` describes crops of the query (a folder copy that was cropped);
:func:`crop_candidates` looks the query up in the crop hashes the index keeps of every file
(the query is a crop of a folder file, :mod:`samepix.crophash`).

``dupes`` has no query: :func:`turned_pairs` finds the pairs of indexed files whose thumbnails
look like a mirror image or a rotation of each other, and :func:`crop_pairs` the files whose
whole picture is close to a stored crop of another, from the index alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .limits import DEFAULT_LIMITS, Limits

if TYPE_CHECKING:
    from .compare import PreparedImage
    from .hashes import HashSet
    from .index import CropTable

__all__ = [
    "MAX_TURNED_DISTANCE",
    "QueryVariants",
    "Variant",
    "crop_candidates",
    "crop_pairs",
    "crop_variants",
    "query_crop_hashes",
    "query_variants",
    "turned_pairs",
    "use_variants",
    "variants_of",
]


@dataclass(frozen=True, eq=False)
class Variant:
    """One mirror image or rotation of the query: what the index would hold for it."""

    kind: str  # "mirror", "rotation" or "crop"
    name: str  # e.g. "rotated 90°", "mirrored left-right"
    width: int
    height: int
    hashes: HashSet
    thumb: bytes


def query_variants(query: PreparedImage, limits: Limits = DEFAULT_LIMITS) -> tuple[Variant, ...]:
    """The query's three rotations and four mirror images (cached on the query)."""
    cached = query.__dict__.get("_dihedral_variants")
    if isinstance(cached, tuple):
        return cached
    from PIL import Image

    from .hashes import hash_image
    from .index import THUMB_SIDE

    grey = _query_grey(query, limits)
    width, height = _query_size(query, limits)
    t = Image.Transpose
    out = []
    for kind, name, how, turned in (
        ("rotation", "rotated 90°", t.ROTATE_90, True),
        ("rotation", "rotated 180°", t.ROTATE_180, False),
        ("rotation", "rotated 270°", t.ROTATE_270, True),
        ("mirror", "mirrored left-right", t.FLIP_LEFT_RIGHT, False),
        ("mirror", "mirrored top-bottom", t.FLIP_TOP_BOTTOM, False),
        ("mirror", "mirrored on the diagonal", t.TRANSPOSE, True),
        ("mirror", "mirrored on the anti-diagonal", t.TRANSVERSE, True),
    ):
        image = grey.transpose(how)
        thumb = image.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
        w, h = (height, width) if turned else (width, height)
        out.append(Variant(kind, name, w, h, hash_image(image), thumb))
    variants = tuple(out)
    query.__dict__["_dihedral_variants"] = variants
    return variants


# Crops of the query whose hashes are looked up: each linear scale at the centre and in the four
# corners (0.9, 0.8, 0.7 keep 81 %, 64 %, 49 % of the area).
CROP_SCALES = (0.9, 0.8, 0.7)


def crop_variants(query: PreparedImage, limits: Limits = DEFAULT_LIMITS) -> tuple[Variant, ...]:
    """Crops of the query (centre and corners, :data:`CROP_SCALES`), described for the index:
    a folder copy that is a crop of the query has hashes close to one of them."""
    cached = query.__dict__.get("_crop_variants")
    if isinstance(cached, tuple):
        return cached
    from PIL import Image

    from .hashes import hash_image
    from .index import THUMB_SIDE

    grey = _query_grey(query, limits)
    gw, gh = grey.size
    width, height = _query_size(query, limits)
    out = []
    for scale in CROP_SCALES:
        cw, ch = max(1, round(gw * scale)), max(1, round(gh * scale))
        anchors = {
            "centre": ((gw - cw) // 2, (gh - ch) // 2),
            "top left": (0, 0),
            "top right": (gw - cw, 0),
            "bottom left": (0, gh - ch),
            "bottom right": (gw - cw, gh - ch),
        }
        for where, (x, y) in anchors.items():
            image = grey.crop((x, y, x + cw, y + ch))
            thumb = image.resize((THUMB_SIDE, THUMB_SIDE), Image.Resampling.BOX).tobytes()
            size = (round(width * scale), round(height * scale))
            out.append(
                Variant("crop", f"{scale:.0%} crop, {where}", *size, hash_image(image), thumb)
            )
    variants = tuple(out)
    query.__dict__["_crop_variants"] = variants
    return variants


def _query_size(query: PreparedImage, limits: Limits) -> tuple[int, int]:
    """The query's oriented size: from its header when its pixels are not decoded yet (the
    search describes the query first, so this decodes nothing; ``find`` screens candidates by
    the same size)."""
    if "decoded" in query.__dict__ or query.blob is None:
        return query.decoded.info.width, query.decoded.info.height
    from .query import describe_query

    desc = describe_query(query, limits)
    return desc.width, desc.height


def _query_grey(query: PreparedImage, limits: Limits) -> Any:
    """The query's small grey image every variant is cut from (kept on the query: the turned
    and the cropped variants are made from the same one)."""
    cached = query.__dict__.get("_variant_grey")
    if cached is not None:
        return cached
    from .decode import draft_grey, grey_pil

    if query.blob is not None:
        grey = draft_grey(query.blob, limits=limits)
    else:
        grey = grey_pil(query.decoded)
    query.__dict__["_variant_grey"] = grey
    return grey


@dataclass(frozen=True, eq=False)
class QueryVariants:
    """A query's variants as ``find`` looks them up (None: not made), made where its bytes were
    decoded — a sync shard's worker — and handed to the process that searches
    (:func:`use_variants`), which then decodes nothing for them. A few KB."""

    turned: tuple[Variant, ...] | None
    crops: tuple[Variant, ...] | None
    crop_hashes: np.ndarray | None


def variants_of(
    query: PreparedImage,
    limits: Limits = DEFAULT_LIMITS,
    *,
    turned: bool = True,
    crops: bool = True,
    crop_hashes: bool = False,
) -> QueryVariants:
    """The query's turned variants (:func:`query_variants`), crop variants
    (:func:`crop_variants`) and crop hashes (:func:`query_crop_hashes`), those asked for."""
    return QueryVariants(
        query_variants(query, limits) if turned else None,
        crop_variants(query, limits) if crops else None,
        query_crop_hashes(query, limits) if crop_hashes else None,
    )


def use_variants(query: PreparedImage, made: QueryVariants) -> None:
    """Give ``query`` the variants :func:`variants_of` made for the same bytes elsewhere: the
    functions above answer from them instead of decoding the query again."""
    for key, value in (
        ("_dihedral_variants", made.turned),
        ("_crop_variants", made.crops),
        ("_crop_hashes", made.crop_hashes),
    ):
        if value is not None:
            query.__dict__[key] = value


# ---------------------------------------------------------------------------------------------
# Within a folder (dupes): turned pairs from the index's thumbnails alone


# Each dihedral transform of an 8×8 grid; "turns" when it swaps width and height.
_TRANSFORMS: dict[str, tuple[tuple[str, bool, Callable[[np.ndarray], np.ndarray]], ...]] = {
    "mirror": (
        ("mirrored left-right", False, lambda m: m[..., :, ::-1]),
        ("mirrored top-bottom", False, lambda m: m[..., ::-1, :]),
        ("mirrored on the diagonal", True, lambda m: np.swapaxes(m, -1, -2)),
        ("mirrored on the anti-diagonal", True, lambda m: np.swapaxes(m[..., ::-1, ::-1], -1, -2)),
    ),
    "rotation": (
        ("rotated 90°", True, lambda m: np.rot90(m, 1, axes=(-2, -1))),
        ("rotated 180°", False, lambda m: m[..., ::-1, ::-1]),
        ("rotated 270°", True, lambda m: np.rot90(m, 3, axes=(-2, -1))),
    ),
}

MAX_TURNED_DISTANCE = 16
"""Largest distance (of 112 gradient bits of the 8×8 thumbnail) at which ``dupes`` compares a
pair as a possible mirror image or rotation. Measured on Kodak and 30 of photos/ (48 pictures,
each against its left-right mirror re-encoded at JPEG q75): true pairs differ by at most 3
bits, the 2,256 pairs of different pictures by at least 33 (1st percentile 40); measured by
``benchmarks/turned_thumbs.py``."""

_PAIR_BLOCK = 1 << 20


def _gradient_bits(grid: np.ndarray) -> np.ndarray:
    """112 bits a picture: the signs of the horizontal and vertical steps of its 8×8 grid,
    packed into two uint64 words (56 bits each)."""
    horizontal = (np.diff(grid, axis=-1) > 0).reshape(len(grid), -1)
    vertical = (np.diff(grid, axis=-2) > 0).reshape(len(grid), -1)
    weights = np.left_shift(np.uint64(1), np.arange(56, dtype=np.uint64))
    words = [(bits.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64)
             for bits in (horizontal, vertical)]  # fmt: skip
    return np.stack(words, axis=1)


def _popcount(x: np.ndarray) -> np.ndarray:
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        out: np.ndarray = np.bitwise_count(x)
        return out
    from .hashes import _popcount64_table  # pragma: no cover - numpy 1.x

    return _popcount64_table(x)  # pragma: no cover


def turned_pairs(
    thumbs: Sequence[bytes], kinds: Sequence[str], max_distance: int = MAX_TURNED_DISTANCE
) -> list[tuple[int, int, str, bool]]:
    """Pairs (i, j), i < j, whose index thumbnails look like a mirror image or rotation
    (``kinds``: "mirror", "rotation") of each other: (i, j, what, turns), closest first.

    From the 16×16 thumbnails the index already holds, reduced to 8×8 (an exact 2×2 mean, which
    commutes with every mirror and rotation of the square grid): no file is decoded. The full
    comparison of each pair then decides.
    """
    from .index import THUMB_SIDE

    n = len(thumbs)
    if n < 2 or not kinds:
        return []
    side = THUMB_SIDE // 2
    grid = (
        np.frombuffer(b"".join(thumbs), np.uint8)
        .reshape(n, side, 2, side, 2)
        .astype(np.float32)
        .mean(axis=(2, 4))
    )
    plain = _gradient_bits(grid)
    found: list[tuple[int, int, int, str, bool]] = []
    rows = max(1, _PAIR_BLOCK // n)
    for kind in kinds:
        for what, turns, transform in _TRANSFORMS[kind]:
            moved = _gradient_bits(np.ascontiguousarray(transform(grid)))
            for start in range(0, n, rows):
                stop = min(n, start + rows)
                dist = _popcount(moved[start:stop, None, 0] ^ plain[None, :, 0]).astype(np.int32)
                dist += _popcount(moved[start:stop, None, 1] ^ plain[None, :, 1])
                r, c = np.nonzero(dist <= max_distance)
                for i, j in zip((r + start).tolist(), c.tolist(), strict=True):
                    if i != j:
                        found.append((int(dist[i - start, j]), min(i, j), max(i, j), what, turns))
    found.sort()
    seen: set[tuple[int, int]] = set()
    out = []
    for _, i, j, what, turns in found:
        if (i, j) not in seen:
            seen.add((i, j))
            out.append((i, j, what, turns))
    return out


# ---------------------------------------------------------------------------------------------
# Crops through the index's crop hashes (samepix.crophash)


def query_crop_hashes(query: PreparedImage, limits: Limits = DEFAULT_LIMITS) -> np.ndarray:
    """The query's crop hashes (:data:`samepix.crophash.QUERY_CROPS`; cached on the query)."""
    cached = query.__dict__.get("_crop_hashes")
    if isinstance(cached, np.ndarray):
        return cached
    from .crophash import QUERY_CROPS, crop_hashes

    out = crop_hashes(_query_grey(query, limits), QUERY_CROPS)
    query.__dict__["_crop_hashes"] = out
    return out


_CROP_BLOCK = 1 << 22  # distances computed at a time (a few MB)


def crop_candidates(
    table: CropTable, query: np.ndarray, max_distance: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row ids of the entries one of whose stored crops (or whole picture) is within
    ``max_distance`` of the query or of one of its crops (``query``: its crop hashes), closest
    first, and that distance (the smaller of pHash's and dHash's)."""
    n = len(table)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.uint8)
    q = query.view(np.uint64)  # (m, 2)
    stored = table.hashes.view(np.uint64)  # (n, slots, 2)
    slots, m = stored.shape[1], q.shape[0]
    rows = max(1, _CROP_BLOCK // (slots * m))
    best = np.empty(n, np.uint8)
    for start in range(0, n, rows):
        block = stored[start : start + rows]  # (b, slots, 2)
        dp = _popcount(block[:, :, None, 0] ^ q[None, None, :, 0])
        dd = _popcount(block[:, :, None, 1] ^ q[None, None, :, 1])
        best[start : start + rows] = np.minimum(dp, dd).reshape(block.shape[0], -1).min(axis=1)
    hits = np.flatnonzero(best <= max_distance)
    order = np.argsort(best[hits], kind="stable")
    return table.ids[hits[order]], best[hits[order]]


def crop_pairs(table: CropTable, max_distance: int) -> list[tuple[int, int, int]]:
    """Pairs of positions ``(inner, outer, distance)`` in ``table`` where the whole picture of
    ``inner`` is within ``max_distance`` of one of the stored crops of ``outer``: ``inner`` may
    be a crop of ``outer``. Closest first. Every whole picture against every crop (48 × n²
    checks: 0.25 s for 1,000 files, about 25 s for 10,000); the comparison then decides."""
    n = len(table)
    if n < 2:
        return []
    stored = table.hashes.view(np.uint64)
    whole = stored[:, 0, :]  # (n, 2)
    crops = stored[:, 1:, :]  # (n, slots - 1, 2)
    slots = crops.shape[1]
    rows = max(1, _CROP_BLOCK // (slots * n))
    found: list[tuple[int, int, int]] = []
    for start in range(0, n, rows):
        block = crops[start : start + rows]  # outer files
        dp = _popcount(block[:, :, None, 0] ^ whole[None, None, :, 0])
        dd = _popcount(block[:, :, None, 1] ^ whole[None, None, :, 1])
        dist = np.minimum(dp, dd).min(axis=1)  # (b, n): outer × inner
        outer, inner = np.nonzero(dist <= max_distance)
        for o, i in zip((outer + start).tolist(), inner.tolist(), strict=True):
            if o != i:
                found.append((i, o, int(dist[o - start, i])))
    found.sort(key=lambda t: (t[2], t[0], t[1]))
    return found
