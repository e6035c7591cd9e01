"""Compare two images: the ladder from cheap to exact, ending in an explained verdict.

1. identical bytes (SHA-256 of the encoded files) → ``identical``, nothing decoded;
2. identical decoded pixels after normalisation (and alpha) → ``identical``;
3. size alignment (resize the larger to the smaller when the aspect ratios agree);
4. metrics: SSIM per channel and on luma, its worst region, MS-SSIM, NRMSE, PSNR, a colour
   shift, perceptual-hash distances;
5. the :class:`~samepix.policy.Policy` turns them into a verdict with reasons.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, Union

import numpy as np

from .align import Alignment, align
from .decode import (
    Decoded,
    ImageInfo,
    decode_array,
    decode_blob,
    decode_pil,
    draft_grey,
    grey_pil,
    luma,
)
from .decode import read_info as read_header_info
from .hashes import HashSet, hash_image
from .limits import DEFAULT_LIMITS, Limits
from .policy import DEFAULT_POLICY, Policy
from .regions import StructureMap, local_change, structure_map, worst_region
from .sources import Blob, blob_from_download, read_source
from .verdict import Evidence, Relation, Verdict, decide_all, needs_relations

if TYPE_CHECKING:
    from PIL import Image as PILImage

    from .fetch import Download, Fetcher

__all__ = ["Comparison", "ImageSource", "Metrics", "PreparedImage", "compare", "load"]

ImageSource = Union[
    str,
    "os.PathLike[str]",
    bytes,
    bytearray,
    memoryview,
    np.ndarray,
    "PILImage.Image",
    "PreparedImage",
    "Download",
]


class PreparedImage:
    """An image read once and compared many times: bytes, normalised pixels, hashes, luma.

    Decoding and hashing happen on first use and are kept, so comparing one image against many
    pays for it once (as dssim does). Create one with :func:`load`.
    """

    def __init__(
        self,
        name: str,
        *,
        blob: Blob | None = None,
        decoded: Decoded | None = None,
        limits: Limits = DEFAULT_LIMITS,
    ) -> None:
        if blob is None and decoded is None:
            raise ValueError("PreparedImage needs encoded bytes or decoded pixels")
        self.name = name
        self.blob = blob
        self.limits = limits
        if decoded is not None:
            self.__dict__["decoded"] = decoded

    def __repr__(self) -> str:
        return f"<PreparedImage {self.name!r}>"

    @cached_property
    def decoded(self) -> Decoded:
        assert self.blob is not None
        return decode_blob(self.blob, limits=self.limits)

    @property
    def info(self) -> ImageInfo:
        return self.decoded.info

    @property
    def pixels(self) -> np.ndarray:
        return self.decoded.pixels

    @cached_property
    def hashes(self) -> HashSet:
        """Perceptual hashes; from a DCT-scaled decode when only the bytes are at hand."""
        if "decoded" not in self.__dict__ and self.blob is not None:
            return hash_image(draft_grey(self.blob, limits=self.limits))
        return hash_image(grey_pil(self.decoded))

    @cached_property
    def sha256(self) -> str | None:
        if self.blob is None:
            return None
        if self.blob.sha256 is not None:
            return self.blob.sha256
        import hashlib

        return hashlib.sha256(self.blob.data).hexdigest()


def load(
    source: ImageSource,
    *,
    limits: Limits = DEFAULT_LIMITS,
    lazy: bool = False,
    fetcher: Fetcher | None = None,
) -> PreparedImage:
    """Read and prepare an image: a path, ``http(s)://``/``file://``/``data:`` URL, ``-``,
    bytes, a PIL image, a numpy array or a :class:`~samepix.fetch.Download`.

    With ``lazy=False`` (the default) the image is decoded now, so a bad file raises here.
    URLs are downloaded with ``fetcher`` when given (see :func:`~samepix.sources.read_source`).

    Raises
    ------
    SourceError, FetchError, DecodeError, LimitExceeded
        Each with a one-line message naming the source.
    """
    if isinstance(source, PreparedImage):
        return source
    if isinstance(source, np.ndarray):
        return PreparedImage("<array>", decoded=decode_array(source), limits=limits)
    if _is_pil_image(source):
        name = getattr(source, "filename", "") or "<PIL image>"
        return PreparedImage(name, decoded=decode_pil(source, name=name), limits=limits)  # type: ignore[arg-type]
    from .fetch import Download

    if isinstance(source, Download):
        blob = blob_from_download(_download_again(source, fetcher, limits))
    else:
        blob = read_source(source, limits=limits, fetcher=fetcher)  # type: ignore[arg-type]
    prepared = PreparedImage(blob.name, blob=blob, limits=limits)
    if not lazy:
        prepared.decoded  # noqa: B018 - decode now so errors surface at load time
    return prepared


def _download_again(download: Download, fetcher: Fetcher | None, limits: Limits) -> Download:
    """A download with its body: ``download`` itself, or a fresh GET for a 304."""
    if not download.not_modified:
        return download
    if fetcher is not None:
        return fetcher.get(download.url)
    from .fetch import Fetcher

    with Fetcher(limits=limits) as one_off:
        return one_off.get(download.url)


def _is_pil_image(obj: object) -> bool:
    module = type(obj).__module__
    if not module.startswith("PIL."):
        return False
    from PIL import Image

    return isinstance(obj, Image.Image)


@dataclass(frozen=True)
class Metrics:
    """Everything measured for one pair (None where a measure did not apply or was not needed).

    ``ssim`` is on luma (BT.601), ``ssim_channels`` per R, G, B (and A when either image has
    alpha), ``ssim_min_channel`` their minimum (the classic per-band rule); ``nrmse`` is
    1 − RMSE/(max − min) of the lowest band; ``colour_shift`` is the mean chroma difference
    (ΔE over a*, b*) between small thumbnails; ``worst_region`` is (x, y, width, height) in
    ``compared_size`` pixels.
    ``local_change`` says how much more the structure of the most changed region was lost
    than the picture's as a whole (0: evenly, as a re-encode or resize loses it; near 1: a
    region replaced), and ``local_change_region`` where (see
    :func:`~samepix.regions.local_change`).
    """

    ssim: float | None = None
    ssim_channels: tuple[float, ...] | None = None
    ssim_min_channel: float | None = None
    ms_ssim: float | None = None
    nrmse: float | None = None
    psnr: float | None = None
    worst_region_ssim: float | None = None
    worst_region: tuple[int, int, int, int] | None = None
    colour_shift: float | None = None
    hash_distances: Mapping[str, int] = field(default_factory=dict)
    compared_size: tuple[int, int] | None = None  # (width, height) after alignment
    local_change: float | None = None
    local_change_region: tuple[int, int, int, int] | None = None


@dataclass(frozen=True)
class Comparison:
    """The result of :func:`compare`: a verdict, the reasons for it, and what was measured."""

    verdict: Verdict
    reasons: tuple[str, ...]
    metrics: Metrics
    a: ImageInfo
    b: ImageInfo
    rung: str  # where the ladder stopped: "bytes", "pixels" or "metrics"
    transferred: int = 0  # bytes downloaded for this comparison
    ssim_map: np.ndarray | None = field(default=None, repr=False, compare=False)
    reused: bool = False  # taken from the state file: neither side changed since it was decided
    # What the verdict was decided from (a policy can judge it again: samepix.verdict.decide).
    evidence: Evidence | None = field(default=None, repr=False, compare=False)
    # The geometric change that explained the pair, when one did: "mirror", "rotation", "crop".
    # ``metrics`` (and ``ssim_map``) are then measured with that change undone.
    relation: str | None = None

    @property
    def is_match(self) -> bool:
        """True when the verdict is ``identical`` or ``same``."""
        return self.verdict.is_match

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the ``--json`` schema documented in the README)."""
        metrics = asdict(self.metrics)
        metrics["hash_distances"] = dict(self.metrics.hash_distances)
        for key in ("ssim_channels", "worst_region", "compared_size", "local_change_region"):
            if metrics[key] is not None:
                metrics[key] = list(metrics[key])
        if metrics["psnr"] is not None and metrics["psnr"] == float("inf"):
            metrics["psnr"] = "inf"  # JSON has no infinity
        return {
            "verdict": self.verdict.value,
            "match": self.is_match,
            "reasons": list(self.reasons),
            "rung": self.rung,
            "relation": self.relation,
            "metrics": metrics,
            "a": _info_dict(self.a),
            "b": _info_dict(self.b),
            "transferred": self.transferred,
            "reused": self.reused,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Comparison:
        """The inverse of :meth:`to_dict` (without the SSIM map, which is not saved).

        Raises
        ------
        KeyError, TypeError, ValueError
            ``data`` is not what :meth:`to_dict` writes.
        """
        metrics = dict(data["metrics"])
        for key in ("ssim_channels", "worst_region", "compared_size", "local_change_region"):
            if metrics.get(key) is not None:
                metrics[key] = tuple(metrics[key])
        if metrics.get("psnr") == "inf":
            metrics["psnr"] = float("inf")
        return cls(
            Verdict(data["verdict"]),
            tuple(data["reasons"]),
            Metrics(**metrics),
            _info_from_dict(data["a"]),
            _info_from_dict(data["b"]),
            rung=str(data["rung"]),
            transferred=int(data.get("transferred", 0)),
            reused=bool(data.get("reused", False)),
            relation=data.get("relation"),
        )


def _info_dict(info: ImageInfo) -> dict[str, Any]:
    out = asdict(info)
    out["metadata"] = sorted(info.metadata)
    return out


def _info_from_dict(data: Mapping[str, Any]) -> ImageInfo:
    return ImageInfo(**{**data, "metadata": frozenset(data.get("metadata", ()))})


# ---------------------------------------------------------------------------------------------


def compare(
    a: ImageSource,
    b: ImageSource,
    *,
    policy: Policy = DEFAULT_POLICY,
    limits: Limits = DEFAULT_LIMITS,
    keep_map: bool = False,
    fetcher: Fetcher | None = None,
) -> Comparison:
    """Decide whether ``a`` and ``b`` show the same picture, and explain why.

    Parameters
    ----------
    a, b
        Anything :func:`load` reads, or a :class:`PreparedImage` from it.
    policy
        The thresholds (:class:`~samepix.policy.Policy`).
    limits
        Safety limits for reading and decoding.
    keep_map
        Keep the luma SSIM map in the result (for a difference heatmap).
    fetcher
        Downloads URLs (its limits, retries and address policy). With a state file
        (``Fetcher(state=...)``) and at least one ``http(s)`` side, URLs are revalidated
        with their ETag / Last-Modified and a result stored for the same two contents and
        policy is reused (``reused=True``) — see ``docs/fetching.md``.

    Returns
    -------
    Comparison
        ``verdict``, ``reasons``, ``metrics`` and both images' :class:`ImageInfo`.
    """
    if fetcher is not None and fetcher.state is not None:
        return _compare_remembered(a, b, policy, limits, keep_map, fetcher)
    pa = load(a, limits=limits, lazy=True, fetcher=fetcher)
    pb = load(b, limits=limits, lazy=True, fetcher=fetcher)
    return _compare_prepared(pa, pb, policy=policy, limits=limits, keep_map=keep_map)[0]


def _compare(
    a: ImageSource,
    b: ImageSource,
    *,
    policy: Policy,
    limits: Limits,
    keep_map: bool,
    exhaustive: bool,
) -> tuple[Comparison, _Found | None]:
    """:func:`compare`, and the evidence behind it (None when the ladder stopped at rung 1-2).

    With ``exhaustive`` every relation is measured and every SSIM map kept, so the evidence can
    be judged again under any policy (``benchmarks/accuracy.py``).
    """
    pa = load(a, limits=limits, lazy=True)
    pb = load(b, limits=limits, lazy=True)
    return _compare_prepared(
        pa, pb, policy=policy, limits=limits, keep_map=keep_map, exhaustive=exhaustive
    )


def _compare_prepared(
    pa: PreparedImage,
    pb: PreparedImage,
    *,
    policy: Policy,
    limits: Limits,
    keep_map: bool,
    exhaustive: bool = False,
) -> tuple[Comparison, _Found | None]:
    """The ladder, on two prepared images; also the evidence (None when it stopped at rung 1-2)."""
    transferred = sum(p.blob.transferred for p in (pa, pb) if p.blob is not None)

    # Rung 1: identical bytes — nothing to decode.
    if (
        pa.blob is not None
        and pb.blob is not None
        and len(pa.blob.data) == len(pb.blob.data)
        and pa.sha256 == pb.sha256
    ):
        info_a = read_header_info(pa.blob, limits=limits)
        info_b = read_header_info(pb.blob, limits=limits)
        digest = pa.sha256 or ""
        return Comparison(
            Verdict.IDENTICAL,
            (f"identical bytes (sha256 {digest[:12]}…)",),
            Metrics(ssim=1.0, nrmse=1.0, psnr=float("inf")),
            info_a,
            info_b,
            rung="bytes",
            transferred=transferred,
        ), None

    da, db = pa.decoded, pb.decoded
    facts = _describe_changes(da.info, db.info)
    pixels_a, pixels_b = da.pixels, db.pixels
    if pixels_a.ndim != pixels_b.ndim:  # grey vs colour: a colour image may be grey in fact
        pixels_a, pixels_b = _collapse_grey(pixels_a), _collapse_grey(pixels_b)
    grey_vs_colour = pixels_a.ndim != pixels_b.ndim

    # Rung 2: identical decoded pixels (and alpha).
    if not grey_vs_colour and _same_pixels(pixels_a, pixels_b, da.alpha, db.alpha):
        return Comparison(
            Verdict.IDENTICAL,
            ("same pixels, different file", *facts),
            Metrics(
                ssim=1.0,
                nrmse=1.0,
                psnr=float("inf"),
                compared_size=(pixels_a.shape[1], pixels_a.shape[0]),
            ),
            da.info,
            db.info,
            rung="pixels",
            transferred=transferred,
        ), None

    # Rungs 3-5: size alignment, metrics, verdict (and relations when the pair is not the same).
    # A colour image whose colour is only encoder noise (a grey picture saved as WebP or as an
    # RGB JPEG) is grey: compared as grey with a grey image, and as "a greyscale copy" with a
    # colourful one.
    grey_a = pixels_a.ndim == 2 or _looks_grey(pixels_a, da.alpha)
    grey_b = pixels_b.ndim == 2 or _looks_grey(pixels_b, db.alpha)
    grey_vs_colour = grey_a != grey_b
    if grey_a or grey_b:  # compare structure on luma; the policy decides what greyscale means
        pixels_a, pixels_b = luma(pixels_a), luma(pixels_b)
    hash_distances = pa.hashes.distances(pb.hashes)
    found = _examine(
        _Pair(pixels_a, pixels_b, da.alpha, db.alpha, grey_vs_colour),
        policy,
        hash_distances,
        keep_map=keep_map,
        exhaustive=exhaustive,
    )
    decision = decide_all(found.evidence, policy)
    chosen = found.primary
    if decision.relation is not None:
        chosen = found.measured[id(decision.relation)]
    else:
        facts.extend(found.primary.facts)
    return Comparison(
        decision.verdict,
        tuple(facts) + tuple(decision.reasons),
        chosen.metrics,
        da.info,
        db.info,
        rung="metrics",
        transferred=transferred,
        ssim_map=chosen.ssim_map if keep_map else None,
        evidence=found.evidence,
        relation=None if decision.relation is None else decision.relation.kind,
    ), found


# ---------------------------------------------------------------------------------------------
# Evidence: the pair as it stands, then the relations that could explain a failure


@dataclass(frozen=True, eq=False)
class _Pair:
    """Two normalised images (both colour or both grey) and their alpha planes."""

    a: np.ndarray
    b: np.ndarray
    a_alpha: np.ndarray | None
    b_alpha: np.ndarray | None
    grey_vs_colour: bool


@dataclass(frozen=True, eq=False)
class _Measured:
    """One measurement of a pair: its metrics, evidence, SSIM map and what was done to it."""

    metrics: Metrics
    evidence: Evidence
    ssim_map: np.ndarray | None
    facts: tuple[str, ...] = ()
    structure: StructureMap | None = None


@dataclass(frozen=True, eq=False)
class _Found:
    """The evidence for :func:`decide_all`, and the measurement behind each relation in it."""

    evidence: Evidence
    primary: _Measured
    measured: dict[int, _Measured]  # id(Relation) -> its measurement


def _examine(
    pair: _Pair,
    policy: Policy,
    hash_distances: Mapping[str, int],
    *,
    keep_map: bool,
    exhaustive: bool,
) -> _Found:
    """Measure the pair as it stands and, when it fails, the relations that could explain it.

    With ``exhaustive`` every relation is looked for whatever the pair scores (the accuracy
    benchmark judges the same evidence again under other policies); otherwise relations are
    only looked for when the policy allows it and the pair as it stands is not ``same``.
    """
    want_maps = keep_map or exhaustive
    primary = _measure_pair(pair, policy, hash_distances, keep_map=want_maps)
    measured: dict[int, _Measured] = {}
    relations: list[Relation] = []
    if exhaustive or (policy.find_relations and needs_relations(primary.evidence, policy)):
        for kind, detail, other, area, cut in _relation_candidates(pair, policy):
            m = _measure_pair(other, policy, {}, keep_map=want_maps)
            rel = Relation(kind, detail, m.evidence, area, cut)
            relations.append(rel)
            measured[id(rel)] = m
    evidence = replace(primary.evidence, relations=tuple(relations))
    return _Found(evidence, primary, measured)


def _measure_pair(
    pair: _Pair, policy: Policy, hash_distances: Mapping[str, int], *, keep_map: bool
) -> _Measured:
    al = align(
        pair.a, pair.b, pair.a_alpha, pair.b_alpha, max_aspect_change=policy.max_aspect_change
    )
    facts: tuple[str, ...] = ()
    if al.resized is not None and al.from_size and al.to_size:
        (w0, h0), (w1, h1) = al.from_size, al.to_size
        facts = (f"resized {w0}×{h0} → {w1}×{h1} ({al.resized})",)
    metrics, ssim_map, structure = _measure(al, policy, hash_distances, keep_map=keep_map)
    evidence = Evidence(
        aligned=al.aligned,
        aspect_change=al.aspect_change,
        grey_vs_colour=pair.grey_vs_colour,
        ssim=metrics.ssim,
        ssim_min_channel=metrics.ssim_min_channel,
        worst_region_ssim=metrics.worst_region_ssim,
        colour_shift=metrics.colour_shift,
        nrmse=metrics.nrmse,
        psnr=metrics.psnr,
        hash_distances=hash_distances,
        local_change=metrics.local_change,
    )
    return _Measured(metrics, evidence, ssim_map, facts, structure)


# ---------------------------------------------------------------------------------------------
# Relations: a mirror image, a rotation in the pixels, a crop


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


def _relation_candidates(
    pair: _Pair, policy: Policy
) -> Iterator[tuple[str, str, _Pair, float, float]]:
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
            _Pair(
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


def _locate_crop(pair: _Pair) -> tuple[str, str, _Pair, float, float] | None:
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
        other = _Pair(o_px, i_px, o_alpha, i_alpha, pair.grey_vs_colour)
    else:
        other = _Pair(i_px, o_px, i_alpha, o_alpha, pair.grey_vs_colour)
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
        px, alpha, luma = img
        size = (max(1, round(px.shape[1] * factor)), max(1, round(px.shape[0] * factor)))
        return (
            resize_area(px, size),
            None if alpha is None else resize_area(alpha, size),
            resize_area(luma, size),
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


# ---------------------------------------------------------------------------------------------
# Comparisons remembered in the state file


def _compare_remembered(
    a: ImageSource,
    b: ImageSource,
    policy: Policy,
    limits: Limits,
    keep_map: bool,
    fetcher: Fetcher,
) -> Comparison:
    """:func:`compare` with a state file: revalidate URLs, reuse what nothing invalidates.

    A URL answered ``304`` has no bytes here, only the SHA-256 it had. A stored result keyed
    by both SHA-256s and the policy is reused as is; when the other side has the very same
    bytes, they stand in for the URL's; otherwise the URL is downloaded again.
    """
    from .fetch import Download
    from .state import result_key

    state = fetcher.state
    assert state is not None
    sides = [_remembered_side(x, fetcher, limits) for x in (a, b)]
    if not any(isinstance(s, Download) or _is_remote(s) for s in sides):
        pa, pb = (s for s in sides if isinstance(s, PreparedImage))
        return _compare_prepared(pa, pb, policy=policy, limits=limits, keep_map=keep_map)[0]
    digests = [s.sha256 for s in sides]
    settings = policy.as_dict()
    if not keep_map and digests[0] is not None and digests[1] is not None:
        stored = state.result(result_key(digests[0], digests[1], settings))
        if stored is not None:
            try:
                found = Comparison.from_dict(stored)
            except (KeyError, TypeError, ValueError):
                found = None  # saved by another version of the format: decide again
            if found is not None:
                names = [s.url if isinstance(s, Download) else s.name for s in sides]
                return replace(
                    found,
                    a=replace(found.a, source=names[0]),
                    b=replace(found.b, source=names[1]),
                    transferred=sum(_transferred(s) for s in sides),
                    reused=True,
                )
    prepared = _with_bytes(sides, fetcher, limits)
    result = _compare_prepared(*prepared, policy=policy, limits=limits, keep_map=keep_map)[0]
    sha_a, sha_b = prepared[0].sha256, prepared[1].sha256
    if sha_a is not None and sha_b is not None:  # the contents compared, which a race may change
        state.save_result(result_key(sha_a, sha_b, settings), result.to_dict())
    return result


def _remembered_side(
    source: ImageSource, fetcher: Fetcher, limits: Limits
) -> PreparedImage | Download:
    """A URL revalidated (a 304 stays a bodiless Download), anything else loaded lazily."""
    from .fetch import Download

    if isinstance(source, str) and source.startswith(("http://", "https://")):
        source = fetcher.get(source, conditional=True)
    if isinstance(source, Download):
        if source.not_modified:
            return source
        return PreparedImage(source.url, blob=blob_from_download(source), limits=limits)
    return load(source, limits=limits, lazy=True, fetcher=fetcher)


def _is_remote(side: PreparedImage) -> bool:
    url = side.blob.url if side.blob is not None else None
    return url is not None and url.startswith(("http://", "https://"))


def _transferred(side: PreparedImage | Download) -> int:
    if isinstance(side, PreparedImage):
        return side.blob.transferred if side.blob is not None else 0
    return side.transferred


def _with_bytes(
    sides: list[PreparedImage | Download], fetcher: Fetcher, limits: Limits
) -> tuple[PreparedImage, PreparedImage]:
    """Both sides with bytes: a 304 side borrows the other side's bytes when their SHA-256
    match (nothing to download), else it is downloaded again."""
    out: list[PreparedImage | None] = [s if isinstance(s, PreparedImage) else None for s in sides]
    for i, side in enumerate(sides):
        if isinstance(side, PreparedImage):
            continue
        other = out[1 - i]
        if other is not None and other.blob is not None and other.sha256 == side.sha256:
            blob = replace(
                other.blob, name=side.url, url=side.url, path=None, transferred=side.transferred
            )
        else:
            fresh = fetcher.get(side.url)
            blob = replace(
                blob_from_download(fresh), transferred=side.transferred + fresh.transferred
            )
        out[i] = PreparedImage(side.url, blob=blob, limits=limits)
    first, second = out
    assert first is not None and second is not None
    return first, second


# ---------------------------------------------------------------------------------------------
# Pixels


def _collapse_grey(pixels: np.ndarray) -> np.ndarray:
    """An RGB array whose three channels are equal, as H×W; anything else unchanged."""
    if (
        pixels.ndim == 3
        and np.array_equal(pixels[:, :, 0], pixels[:, :, 1])
        and np.array_equal(pixels[:, :, 1], pixels[:, :, 2])
    ):
        return np.ascontiguousarray(pixels[:, :, 0])
    return pixels


def _same_pixels(
    a: np.ndarray, b: np.ndarray, alpha_a: np.ndarray | None, alpha_b: np.ndarray | None
) -> bool:
    if a.shape != b.shape:
        return False
    if alpha_a is None and alpha_b is None:
        return bool(np.array_equal(a, b))
    if alpha_a is None or alpha_b is None or not np.array_equal(alpha_a, alpha_b):
        return False
    visible = alpha_a > 0  # colour under fully transparent pixels is not part of the picture
    return bool(np.array_equal(a[visible], b[visible]))


_GREY_CHROMA = 2.0  # largest C*ab of any pixel of a 64-px thumbnail of a "grey" image


def _looks_grey(pixels: np.ndarray, alpha: np.ndarray | None) -> bool:
    """Whether a colour image is grey but for encoder noise (largest thumbnail chroma C* < 2).

    WebP (always YUV 4:2:0) and some JPEG encoders leave a grey picture's channels a level or
    two apart; averaged over a thumbnail that noise is far below any real colour (a sepia
    print's C* is about 10).
    """
    if pixels.ndim == 2:
        return True
    import cv2

    from .align import resize_area

    h, w = pixels.shape[:2]
    step = max(1, min(h, w) // 256)  # a strided view first: the check costs the same at 12 MP
    small = pixels[::step, ::step]
    scale = min(1.0, 64 / min(small.shape[:2]))
    size = (max(1, round(small.shape[1] * scale)), max(1, round(small.shape[0] * scale)))
    lab = cv2.cvtColor(
        resize_area(np.ascontiguousarray(small), size).astype(np.float32) / 255.0,
        cv2.COLOR_RGB2Lab,
    )
    chroma = np.hypot(lab[:, :, 1], lab[:, :, 2])
    if alpha is not None:  # only what shows counts
        shown = resize_area(np.ascontiguousarray(alpha[::step, ::step]), size) > 0
        chroma = chroma[shown] if shown.any() else chroma
    return bool(chroma.max() < _GREY_CHROMA)


def _premultiply(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    if alpha is None:
        return pixels
    a = alpha.astype(np.uint16)
    if pixels.ndim == 3:
        a = a[:, :, None]
    return ((pixels.astype(np.uint16) * a + 127) // 255).astype(np.uint8)


def _measure(
    al: Alignment, policy: Policy, hash_distances: Mapping[str, int], *, keep_map: bool
) -> tuple[Metrics, np.ndarray | None, StructureMap | None]:
    from . import metrics as m

    if not al.aligned:  # a crop or another picture: only the hashes still make sense
        return Metrics(hash_distances=dict(hash_distances)), None, None
    has_alpha = al.a_alpha is not None or al.b_alpha is not None
    # Colour is compared premultiplied by alpha (colour under transparent pixels is not part of
    # the picture), and alpha itself as one more channel.
    a = _premultiply(al.a, al.a_alpha)
    b = _premultiply(al.b, al.b_alpha)
    if has_alpha:
        opaque = np.full(al.a.shape[:2], 255, np.uint8)
        a = np.dstack([a, al.a_alpha if al.a_alpha is not None else opaque])
        b = np.dstack([b, al.b_alpha if al.b_alpha is not None else opaque])
    height, width = a.shape[:2]
    psnr = m.psnr(al.a, al.b)
    planes = 1 if a.ndim == 2 else a.shape[2]
    if planes == 1:
        nrmse = m.nrmse(a, b)
    else:
        import cv2

        # Contiguous planes first (one fast split): a strided plane is copied by every
        # reduction that touches it.
        nrmse = min(m.nrmse(pa, pb) for pa, pb in zip(cv2.split(a), cv2.split(b), strict=True))
    base = {
        "nrmse": nrmse,
        "psnr": psnr,
        "hash_distances": dict(hash_distances),
        "compared_size": (width, height),
    }
    if min(height, width) < m.SSIM_WINDOW:
        return Metrics(**base), None, None  # type: ignore[arg-type]

    colour = al.a.ndim == 3
    luma_a = luma(a[..., :3]) if colour else a[..., 0] if a.ndim == 3 else a
    luma_b = luma(b[..., :3]) if colour else b[..., 0] if b.ndim == 3 else b
    want_ms = min(height, width) >= m.MS_SSIM_MIN_SIDE
    luma_mean, luma_map, ms = m.ssim_and_ms_ssim(luma_a, luma_b, want_ms=want_ms)
    if planes == 1:
        channels: tuple[float, ...] = (luma_mean,)
    else:
        # All channels in one pass: OpenCV filters interleaved channels together, faster than
        # a pass per strided plane.
        channels = m.ssim_channels(a, b)
    worst, region = worst_region(luma_map, policy.region_fraction)
    structure = structure_map(luma_a, luma_b)
    change, change_region = local_change(structure, policy.region_fraction)
    colour_shift = _colour_shift(al) if colour else None
    metrics = Metrics(
        ssim=luma_mean,
        ssim_channels=channels,
        ssim_min_channel=min(channels),
        ms_ssim=ms,
        worst_region_ssim=worst,
        worst_region=region,
        colour_shift=colour_shift,
        local_change=change,
        local_change_region=change_region,
        **base,  # type: ignore[arg-type]
    )
    return metrics, (luma_map if keep_map else None), (structure if keep_map else None)


# Colour is compared on 32-pixel thumbnails: robust to misalignment, and JPEG's halved chroma
# (4:2:0) of a small copy averages out; 64 px let a 0.25× JPEG q20 copy's colour bleeding
# reach the shift of a hue rotation on a pale picture (docs/verdicts.md).
_THUMB_SIDE = 32


def _colour_shift(al: Alignment) -> float:
    """Mean chroma difference (CIE76 ΔE over a*, b* only) between area-averaged thumbnails.

    Lightness is left out on purpose: a brighter, darker or more contrasted copy changes L*
    and is judged by SSIM and PSNR; this test is for colour (a hue rotation, channels swapped,
    a tint, sepia). Alpha is composited over white first.
    """
    import cv2

    from .align import resize_area

    h, w = al.a.shape[:2]
    scale = min(1.0, _THUMB_SIDE / min(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def lab(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        rgb = resize_area(pixels, size).astype(np.float32) / 255.0
        if alpha is not None:
            a = resize_area(alpha, size).astype(np.float32)[:, :, None] / 255.0
            rgb = rgb * a + (1.0 - a)
        out: np.ndarray = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
        return out

    diff = (lab(al.a, al.a_alpha) - lab(al.b, al.b_alpha))[:, :, 1:]
    return float(np.sqrt((diff * diff).sum(axis=2)).mean())


# ---------------------------------------------------------------------------------------------
# What changed between the two files, in words


def _describe_changes(a: ImageInfo, b: ImageInfo) -> list[str]:
    facts: list[str] = []
    fa, fb = a.format or "pixels", b.format or "pixels"
    if fa != fb:
        facts.append(f"{_format_name(a)} vs {_format_name(b)}")
    elif fa == "JPEG":
        qa, qb = _format_name(a), _format_name(b)
        facts.append(f"JPEG re-encode ({qa} vs {qb})" if qa != qb else f"JPEG re-encode ({qa})")
    elif a.format is not None:
        facts.append(f"both {fa}, different files")
    if a.orientation != b.orientation:
        facts.append(f"EXIF orientation {a.orientation} vs {b.orientation} (applied)")
    if a.metadata != b.metadata:
        only_a = sorted(a.metadata - b.metadata)
        only_b = sorted(b.metadata - a.metadata)
        bits = [f"{', '.join(only_a)} only in a"] if only_a else []
        bits += [f"{', '.join(only_b)} only in b"] if only_b else []
        facts.append("metadata differs: " + "; ".join(bits))
    if a.icc_profile != b.icc_profile:
        facts.append(
            f"colour profile {a.icc_profile or 'sRGB/none'} vs {b.icc_profile or 'sRGB/none'} "
            "(converted to sRGB)"
        )
    if a.frames != b.frames:
        facts.append(f"{a.frames} vs {b.frames} frames (first frame compared)")
    elif a.frames > 1:
        facts.append(f"animated ({a.frames} frames; first frame compared)")
    if a.has_alpha != b.has_alpha:
        facts.append("transparency only in " + ("a" if a.has_alpha else "b"))
    return facts


def _format_name(info: ImageInfo) -> str:
    if info.format == "JPEG" and info.jpeg_quality is not None:
        return f"JPEG q≈{info.jpeg_quality}"
    if info.format == "WEBP" and info.lossless is not None:
        return "WebP lossless" if info.lossless else "WebP lossy"
    return info.format or "pixels"
