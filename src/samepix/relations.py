"""Relations: b as a mirror image of a, a rotation of it in the pixels, or a crop (either way).

A pair that fails as it stands may still show one picture with a geometric change. For such a
pair :mod:`samepix.compare` asks :func:`relation_candidates` for the pair again with the change
undone, and measures each candidate as it measures the pair itself; the policy then decides
whether the change explains the failure (:class:`~samepix.verdict.Relation`). Found here:

- a mirror or a rotation: the orientation whose thumbnails agree best
  (:func:`orientation_scores`), when they agree well enough (:data:`ORIENTATION_GATE`) and
  better than the pair as it stands;
- a crop: ORB features placed by RANSAC as an unrotated scale and shift, refined by normalised
  cross-correlation at the same scale or by ECC at another, and the region both show cut out
  of both images at one size.

This is geometry with calibrations of its own (feature counts, gates, slack) and no part of
the ladder or of measuring, so it lives apart from :mod:`samepix.compare`. The pair type both
use, :class:`Pair`, lives here: compare imports this module, never the reverse. OpenCV and
:mod:`samepix.metrics` are imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .decode import luma

if TYPE_CHECKING:
    from .policy import Policy

__all__ = ["ORIENTATION_GATE", "Pair", "orientation_scores", "relation_candidates"]


@dataclass(frozen=True, eq=False)
class Pair:
    """Two normalised images (both colour or both grey) and their alpha planes.

    What :func:`relation_candidates` takes and yields, and what :mod:`samepix.compare`
    measures.
    """

    a: np.ndarray
    b: np.ndarray
    a_alpha: np.ndarray | None
    b_alpha: np.ndarray | None
    grey_vs_colour: bool


# Each way to undo a mirror or a rotation of b: (kind, words, the function applied to b). If
# np.rot90(b, 1) is a, then b is a turned 90° clockwise.
_ORIENTATIONS: tuple[tuple[str, str, Callable[[np.ndarray], np.ndarray]], ...] = (
    ("mirror", "b is a mirror image of a (left-right)", lambda x: x[:, ::-1]),
    ("mirror", "b is a mirror image of a (top-bottom)", lambda x: x[::-1]),
    ("mirror", "b is a mirror image of a (across the diagonal)", lambda x: x.swapaxes(0, 1)),
    (
        "mirror",
        "b is a mirror image of a (across the anti-diagonal)",
        lambda x: x[::-1, ::-1].swapaxes(0, 1),
    ),
    ("rotation", "b is a turned 90° clockwise in its pixels", lambda x: np.rot90(x, 1)),
    ("rotation", "b is a turned 180° in its pixels", lambda x: x[::-1, ::-1]),
    ("rotation", "b is a turned 90° counter-clockwise in its pixels", lambda x: np.rot90(x, -1)),
)
_PROBE = np.empty((2, 3), np.uint8)
_ORIENT_THUMB = 64  # both sides squashed to 64 px: cheap, and flips map thumbnails to thumbnails
# A mirror or rotation is measured in full only when its thumbnails agree at least this well
# (and better than the pair as it stands). Copies down to JPEG q10 at 0.25× score above 0.8
# at this size; unrelated photographs mostly below 0.3 (docs/verdicts.md).
ORIENTATION_GATE = 0.5


def orientation_scores(pair_a: np.ndarray, pair_b: np.ndarray) -> list[float]:
    """Thumbnail SSIM of a against b as it is, then against each way of undoing a flip/rotation.

    Used to choose which orientation is worth measuring in full; exposed for the accuracy
    benchmark, which reports how well it separates.
    """
    from . import metrics as m
    from .align import resize_area

    size = (_ORIENT_THUMB, _ORIENT_THUMB)
    ta = resize_area(luma(pair_a), size)
    tb = resize_area(luma(pair_b), size)
    scores = [m.ssim(ta, tb).mean]
    scores += [m.ssim(ta, np.ascontiguousarray(undo(tb))).mean for _, _, undo in _ORIENTATIONS]
    return scores


def relation_candidates(
    pair: Pair, policy: Policy
) -> Iterator[tuple[str, str, Pair, float, float]]:
    """Pairs to measure again, each with a geometric change undone.

    Yields (kind, words, pair, area, cut): see :class:`~samepix.verdict.Relation`.
    """
    from .align import aspect_change

    # Mirror or rotation: the orientation whose thumbnails agree best, if it beats the pair as
    # it stands and its size fits a's.
    scores = orientation_scores(pair.a, pair.b)
    size_a = (pair.a.shape[1], pair.a.shape[0])
    best, best_score = None, -2.0
    for i, (_, _, undo) in enumerate(_ORIENTATIONS):
        swapped = undo(_PROBE).shape[0] == _PROBE.shape[1]  # does undoing swap the sides?
        h, w = pair.b.shape[:2]
        size_b = (h, w) if swapped else (w, h)
        if aspect_change(size_a, size_b) > policy.max_aspect_change:
            continue
        if scores[i + 1] > best_score:
            best, best_score = i, scores[i + 1]
    # The gate depends on no policy setting, so exhaustive runs apply it too: they must see
    # exactly the relations a plain compare() would look at.
    if best is not None and best_score >= ORIENTATION_GATE and best_score > scores[0]:
        kind, words, undo = _ORIENTATIONS[best]
        yield (
            kind,
            words,
            Pair(
                pair.a,
                np.ascontiguousarray(undo(pair.b)),
                pair.a_alpha,
                None if pair.b_alpha is None else np.ascontiguousarray(undo(pair.b_alpha)),
                pair.grey_vs_colour,
            ),
            1.0,
            0.0,
        )

    crop = _locate_crop(pair)
    if crop is not None:
        yield crop


_FEATURE_SIDE = 800  # crops are located on copies at most this long: ORB is fast and scale-robust
_FEATURES = 1000  # ORB keypoints per image: matching is quadratic in this
_MIN_INLIERS = 15  # ORB matches that must agree on one placement before a crop is measured
_ECC_SIDE = 640  # ECC refines a placement on copies at most this long (sub-pixel there)
_REFINE = 3  # pixels searched around the feature placement, at the compared scale


_ORB_MIN_SIDE = 64


def _scaled_side(img: np.ndarray) -> int:
    """The shorter side of the copy features are found on."""
    f = min(1.0, _FEATURE_SIDE / max(img.shape[:2]))
    return int(min(max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))))


def _similarity(src: np.ndarray, dst: np.ndarray) -> tuple[float, float, float] | None:
    """Scale and shift that place grey image ``src`` in grey image ``dst``, from ORB features.

    Returns (s, tx, ty) with dst ≈ s · src + t in full-size pixel coordinates, or None when the
    features do not agree on an unrotated placement.
    """
    import cv2

    from .align import resize_area

    def features(img: np.ndarray) -> tuple[Any, Any, float]:
        f = min(1.0, _FEATURE_SIDE / max(img.shape))
        small = resize_area(img, (max(1, round(img.shape[1] * f)), max(1, round(img.shape[0] * f))))
        keypoints, descriptors = cv2.ORB.create(nfeatures=_FEATURES).detectAndCompute(small, None)
        return keypoints, descriptors, f

    # ORB ignores a 31-px border and builds an 8-level pyramid: on a copy whose shorter side is
    # under ~64 px it finds nothing (and OpenCV's pyramid asserts on a side that becomes 0).
    if min(_scaled_side(src), _scaled_side(dst)) < _ORB_MIN_SIDE:
        return None
    ks, ds, fs = features(src)
    kd, dd, fd = features(dst)
    if ds is None or dd is None or len(ks) < _MIN_INLIERS or len(kd) < _MIN_INLIERS:
        return None
    matches = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(ds, dd)
    if len(matches) < _MIN_INLIERS:
        return None
    # Keypoints back to full-size pixel centres (an area resize maps centre c to (c + .5)/f - .5).
    ps = (np.array([ks[m.queryIdx].pt for m in matches], np.float32) + 0.5) / fs - 0.5
    pd = (np.array([kd[m.trainIdx].pt for m in matches], np.float32) + 0.5) / fd - 0.5
    transform, inliers = cv2.estimateAffinePartial2D(
        ps, pd, method=cv2.RANSAC, ransacReprojThreshold=3.0 / fd, maxIters=2000
    )
    if transform is None or inliers is None or int(inliers.sum()) < _MIN_INLIERS:
        return None
    scale = float(np.hypot(transform[0, 0], transform[1, 0]))
    angle = float(np.degrees(np.arctan2(transform[1, 0], transform[0, 0])))
    if abs(angle) > 1.0 or not 0.1 < scale < 10.0:  # crops are not rotated
        return None
    return scale, float(transform[0, 2]), float(transform[1, 2])


def _locate_crop(pair: Pair) -> tuple[str, str, Pair, float, float] | None:
    """Find one image as a crop of the other; return it and the matching region, same size."""
    la, lb = luma(pair.a), luma(pair.b)
    found = _similarity(lb, la)  # b's pixels placed in a
    if found is None:
        return None
    scale, tx, ty = found
    (ha, wa), (hb, wb) = la.shape, lb.shape
    # Which frame lies inside the other (a few pixels of slack for the feature placement)?
    if _inside(tx, ty, scale * wb, scale * hb, wa, ha):
        inner, outer = "b", "a"
        box = (tx, ty, scale * wb, scale * hb)
        area = (scale * wb) * (scale * hb) / (wa * ha)
    elif _inside(-tx / scale, -ty / scale, wa / scale, ha / scale, wb, hb):
        inner, outer = "a", "b"
        scale = 1.0 / scale
        box = (-tx * scale, -ty * scale, wa * scale, ha * scale)
        area = box[2] * box[3] / (wb * hb)
    else:
        return None
    (outer_h, outer_w), (inner_h, inner_w) = (
        ((ha, wa), (hb, wb)) if outer == "a" else ((hb, wb), (ha, wa))
    )
    # Within 2.5 pixels over the inner image, features cannot tell a scale from none (an
    # ORB placement is good to a pixel or so): take it as the same scale, cut exactly.
    if abs(scale - 1.0) * max(inner_h, inner_w) < 2.5:
        scale = 1.0
        box = (box[0], box[1], float(inner_w), float(inner_h))
        area = inner_w * inner_h / (outer_w * outer_h)
    # The whole picture (a resize: the pair as it stands says it all). A scaled placement is
    # only good to a few tenths of a percent, so "whole" has that much slack there.
    slack = 1.0 if scale == 1.0 else 1.0 + 0.005 * max(outer_w, outer_h)
    if abs(box[2] - outer_w) < slack and abs(box[3] - outer_h) < slack:
        return None
    cut = max(0.0, 1.0 - box[2] / outer_w, 1.0 - box[3] / outer_h)
    get = {"a": (pair.a, pair.a_alpha, la), "b": (pair.b, pair.b_alpha, lb)}
    pieces = _cut(get[outer], get[inner], box, scale)
    if pieces is None:
        return None
    (o_px, o_alpha), (i_px, i_alpha) = pieces
    x, y, w, h = box
    words = (
        f"{inner} is a crop of {outer}: {area:.0%} of its area, "
        f"({max(0, round(x))}, {max(0, round(y))}) to ({round(x + w)}, {round(y + h)})"
    )
    if scale != 1.0:
        words += f", scaled {1 / scale:.2f}×"
    if inner == "b":
        other = Pair(o_px, i_px, o_alpha, i_alpha, pair.grey_vs_colour)
    else:
        other = Pair(i_px, o_px, i_alpha, o_alpha, pair.grey_vs_colour)
    return "crop", words, other, area, cut


def _inside(x: float, y: float, w: float, h: float, width: int, height: int) -> bool:
    slack_x, slack_y = 0.02 * width + 2, 0.02 * height + 2
    return (
        x >= -slack_x and y >= -slack_y and x + w <= width + slack_x and y + h <= height + slack_y
    )


_Image = tuple[np.ndarray, "np.ndarray | None", np.ndarray]  # pixels, alpha, luma


def _cut(
    outer: _Image, inner: _Image, box: tuple[float, float, float, float], scale: float
) -> tuple[tuple[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]] | None:
    """The region ``box`` of ``outer`` and ``inner``, brought to one scale and size.

    ``scale`` is outer pixels per inner pixel. The side with more pixels per detail is shrunk
    (INTER_AREA) so neither is enlarged; the placement is then refined to the pixel by
    normalised cross-correlation within ±3 pixels.
    """
    import cv2

    from .align import resize_area

    def shrink(img: _Image, factor: float) -> _Image:
        px, alpha, grey = img
        size = (max(1, round(px.shape[1] * factor)), max(1, round(px.shape[0] * factor)))
        return (
            resize_area(px, size),
            None if alpha is None else resize_area(alpha, size),
            resize_area(grey, size),
        )

    x, y = box[0], box[1]
    if scale != 1.0:
        # Another scale: features place the crop to a pixel or two and the scale to a few
        # tenths of a percent, which blurs SSIM; refine both to a fraction of a pixel.
        warp = _refine_placement(outer[2], inner[2], scale, x, y)
        if warp is not None:
            return _warp_cut(outer, inner, warp, shrink)
        if scale > 1.0:
            outer = shrink(outer, 1.0 / scale)
            x, y = x / scale, y / scale
        else:
            inner = shrink(inner, scale)
    o_px, o_alpha, o_luma = outer
    i_px, i_alpha, i_luma = inner
    th, tw = min(i_luma.shape[0], o_luma.shape[0]), min(i_luma.shape[1], o_luma.shape[1])
    if th < 16 or tw < 16:
        return None
    ox = min(max(0, round(x)), o_luma.shape[1] - tw)
    oy = min(max(0, round(y)), o_luma.shape[0] - th)
    # Where the inner image is larger than the outer (a placement a few pixels off), compare
    # the part that overlaps: the inner image's centre.
    ix, iy = (i_luma.shape[1] - tw) // 2, (i_luma.shape[0] - th) // 2
    template = i_luma[iy : iy + th, ix : ix + tw]
    x0, y0 = max(0, ox - _REFINE), max(0, oy - _REFINE)
    x1 = min(o_luma.shape[1], ox + tw + _REFINE)
    y1 = min(o_luma.shape[0], oy + th + _REFINE)
    scores = cv2.matchTemplate(o_luma[y0:y1, x0:x1], template, cv2.TM_CCOEFF_NORMED)
    _, _, _, (dx, dy) = cv2.minMaxLoc(scores)
    ox, oy = x0 + dx, y0 + dy
    region = (slice(oy, oy + th), slice(ox, ox + tw))
    inner_region = (slice(iy, iy + th), slice(ix, ix + tw))
    return (
        (np.ascontiguousarray(o_px[region]), None if o_alpha is None else o_alpha[region]),
        (
            np.ascontiguousarray(i_px[inner_region]),
            None if i_alpha is None else i_alpha[inner_region],
        ),
    )


def _refine_placement(
    outer: np.ndarray, inner: np.ndarray, scale: float, x: float, y: float
) -> np.ndarray | None:
    """Affine map from inner pixel centres to outer ones, refined by ECC; None if it fails.

    Both images are reduced to one pixel scale (the outer to at most ``_ECC_SIDE`` long)
    so ECC only has a small correction to find, then the map is brought back to full size.

    References
    ----------
    .. [1] G. D. Evangelidis and E. Z. Psarakis, "Parametric image alignment using enhanced
       correlation coefficient maximization", IEEE TPAMI 30(10), 1858-1865, 2008.
       :doi:`10.1109/TPAMI.2008.113`
    """
    import cv2

    from .align import resize_area

    f = min(1.0, _ECC_SIDE / max(outer.shape))
    g = f * scale  # inner pixels → reduced-outer pixels
    o_size = (max(16, round(outer.shape[1] * f)), max(16, round(outer.shape[0] * f)))
    i_size = (max(16, round(inner.shape[1] * g)), max(16, round(inner.shape[0] * g)))
    fo, go = o_size[0] / outer.shape[1], i_size[0] / inner.shape[1]
    o_small = resize_area(outer, o_size).astype(np.float32)
    i_small = resize_area(inner, i_size).astype(np.float32)
    # An area resize by k maps pixel centre c to (c + 0.5) k − 0.5. The feature placement
    # c_outer = scale · c_inner + (x, y), written between the two reduced images:
    lin = scale * fo / go
    start = np.array(
        [
            [lin, 0.0, scale * fo * (0.5 / go - 0.5) + (x + 0.5) * fo - 0.5],
            [0.0, lin, scale * fo * (0.5 / go - 0.5) + (y + 0.5) * fo - 0.5],
        ],
        np.float32,
    )
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-5)
    try:
        _, small = cv2.findTransformECC(
            i_small,
            o_small,
            start,
            cv2.MOTION_AFFINE,
            criteria,
            np.full(o_small.shape, 255, np.uint8),  # no mask: every outer pixel counts
            3,
        )
    except cv2.error:  # did not converge: keep the feature placement
        return None
    # Back to full size: c_outer = A (go/fo) c_inner + (A (go/2 − 1/2) + T + 1/2) / fo − 1/2.
    a = small[:, :2].astype(np.float64)
    t = small[:, 2].astype(np.float64)
    full_a = a * (go / fo)
    full_t = (a @ np.full(2, 0.5 * go - 0.5) + t + 0.5) / fo - 0.5
    if abs(np.degrees(np.arctan2(full_a[1, 0], full_a[0, 0]))) > 1.0:
        return None  # ECC wandered into a rotation: not a crop
    warp: np.ndarray = np.hstack([full_a, full_t[:, None]])
    return warp


def _warp_cut(
    outer: _Image,
    inner: _Image,
    warp: np.ndarray,
    shrink: Callable[[_Image, float], _Image],
) -> tuple[tuple[np.ndarray, np.ndarray | None], tuple[np.ndarray, np.ndarray | None]] | None:
    """Resample the outer image's region onto the inner's pixel grid (the coarser of the two).

    The side with more pixels per detail is first shrunk with INTER_AREA (no aliasing); the
    small remaining affine correction is applied with bilinear interpolation.
    """
    import cv2

    scale = float(np.sqrt(abs(np.linalg.det(warp[:, :2]))))  # outer pixels per inner pixel
    a, t = warp[:, :2], warp[:, 2]
    if scale > 1.0:  # shrink the outer: c_s = (c + .5) k − .5
        k_x = round(outer[0].shape[1] / scale) / outer[0].shape[1]
        k_y = round(outer[0].shape[0] / scale) / outer[0].shape[0]
        outer = shrink(outer, 1.0 / scale)
        k = np.array([[k_x], [k_y]])
        a = a * k
        t = t * k[:, 0] + 0.5 * (k[:, 0] - 1.0)
    else:  # shrink the inner: c = (c_s + .5)/k − .5
        h0, w0 = inner[0].shape[:2]
        inner = shrink(inner, scale)
        k_x, k_y = inner[0].shape[1] / w0, inner[0].shape[0] / h0
        t = t + a @ np.array([0.5 / k_x - 0.5, 0.5 / k_y - 0.5])
        a = a @ np.diag([1.0 / k_x, 1.0 / k_y])
    o_px, o_alpha, _ = outer
    i_px, i_alpha, _ = inner
    h, w = i_px.shape[:2]
    if h < 16 or w < 16:
        return None
    m = np.hstack([a, t[:, None]]).astype(np.float64)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    region = cv2.warpAffine(o_px, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    region_alpha = (
        None
        if o_alpha is None
        else cv2.warpAffine(o_alpha, m, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    )
    return (region, region_alpha), (i_px, i_alpha)
