"""Compare two images: the ladder from cheap to exact, ending in an explained verdict.

1. identical bytes (SHA-256 of the encoded files) → ``identical``, nothing decoded;
2. identical decoded pixels after normalisation (and alpha) → ``identical``;
3. size alignment (resize the larger to the smaller when the aspect ratios agree);
4. metrics: SSIM per channel and on luma, its worst region, MS-SSIM, NRMSE, PSNR, a colour
   shift, perceptual-hash distances;
5. the :class:`~samepix.policy.Policy` turns them into a verdict with reasons.

When the pair fails as it stands, it is measured again with a mirror, a rotation or a crop
undone (:mod:`samepix.relations`). Where in the picture a change lies (the worst region, a
local change) is found by :mod:`samepix.regions`. Both are imported from here and never import
this module.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
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
    memory_facts,
)
from .decode import read_info as read_header_info
from .hashes import HashSet, hash_image
from .limits import DEFAULT_LIMITS, Limits, MemoryFacts, compare_memory
from .policy import DEFAULT_POLICY, Policy
from .regions import StructureMap, local_change, structure_map, worst_region
from .relations import Pair, relation_candidates
from .sources import Blob, blob_from_download, is_http_url, read_source
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

    def adopt_hashes(self, hashes: HashSet) -> None:
        """Use ``hashes`` computed elsewhere from these very bytes (an index's) instead of
        hashing the pixels again; the caller vouches for the bytes (by their SHA-256)."""
        self.__dict__["hashes"] = hashes  # what the cached property would have kept

    @cached_property
    def looks_grey(self) -> bool:
        """Whether the decoded colour image is grey but for encoder noise; kept, so an image
        compared with many (a best copy in ``dupes``, a query in ``find``) is examined once."""
        return _looks_grey_pixels(self.decoded.pixels, self.decoded.alpha)

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
    # A Download exists only once samepix.fetch is imported: two local files do not import the
    # HTTP client just to ask.
    fetch = sys.modules.get(f"{__package__}.fetch")
    if fetch is not None and isinstance(source, fetch.Download):
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
    # With keep_map: the contrast-structure map the local-change test read (for heatmaps).
    structure_map: StructureMap | None = field(default=None, repr=False, compare=False)

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
    max_side: int | None = None,
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
    max_side
        Measure a pair of one size first at most this many pixels on the longer side (both
        shrunk alike with INTER_AREA); the pair is settled there only when it is the same
        picture, or fails SSIM or the colour test, by wide margins (:func:`settled_at_cap`),
        else measured at full size.
        ``compared_size`` says the size used. A pair of two sizes is measured at the smaller
        one's, and relations (crops, mirrors, rotations) at full size, as without it.
        ``dupes`` uses :data:`CONFIRM_SIDE` (``docs/benchmarks.md``: the accuracy
        benchmark's verdicts are identical, pair for pair).

    Returns
    -------
    Comparison
        ``verdict``, ``reasons``, ``metrics`` and both images' :class:`ImageInfo`.
    """
    if fetcher is not None and fetcher.state is not None:
        return _compare_remembered(a, b, policy, limits, keep_map, fetcher)
    pa = load(a, limits=limits, lazy=True, fetcher=fetcher)
    pb = load(b, limits=limits, lazy=True, fetcher=fetcher)
    return _compare_prepared(
        pa, pb, policy=policy, limits=limits, keep_map=keep_map, max_side=max_side
    )[0]


def _compare(
    a: ImageSource,
    b: ImageSource,
    *,
    policy: Policy,
    limits: Limits,
    keep_map: bool,
    exhaustive: bool,
    max_side: int | None = None,
) -> tuple[Comparison, _Found | None]:
    """:func:`compare`, and the evidence behind it (None when the ladder stopped at rung 1-2).

    With ``exhaustive`` every relation is measured and every SSIM map kept, so the evidence can
    be judged again under any policy (``benchmarks/accuracy.py``).
    """
    pa = load(a, limits=limits, lazy=True)
    pb = load(b, limits=limits, lazy=True)
    return _compare_prepared(
        pa,
        pb,
        policy=policy,
        limits=limits,
        keep_map=keep_map,
        exhaustive=exhaustive,
        max_side=max_side,
    )


def _compare_prepared(
    pa: PreparedImage,
    pb: PreparedImage,
    *,
    policy: Policy,
    limits: Limits,
    keep_map: bool,
    exhaustive: bool = False,
    max_side: int | None = None,
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

    _check_compare_memory(pa, pb, limits)
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
    grey_a = pixels_a.ndim == 2 or pa.looks_grey
    grey_b = pixels_b.ndim == 2 or pb.looks_grey
    grey_vs_colour = grey_a != grey_b
    if grey_a or grey_b:  # compare structure on luma; the policy decides what greyscale means
        pixels_a, pixels_b = luma(pixels_a), luma(pixels_b)
    hash_distances = pa.hashes.distances(pb.hashes)
    found = _examine(
        Pair(pixels_a, pixels_b, da.alpha, db.alpha, grey_vs_colour),
        policy,
        hash_distances,
        keep_map=keep_map,
        exhaustive=exhaustive,
        max_side=max_side,
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
        structure_map=chosen.structure if keep_map else None,
    ), found


def _check_compare_memory(pa: PreparedImage, pb: PreparedImage, limits: Limits) -> None:
    """Refuse, before decoding, a pair whose comparison would need more than ``max_memory``
    (estimated from both headers; a side already decoded counts with its arrays)."""
    facts: list[MemoryFacts] = []
    for p in (pa, pb):
        if "decoded" in p.__dict__ or p.blob is None:
            d = p.decoded
            mode = "L" if d.is_grey else "RGB"
            encoded = 0 if p.blob is None else len(p.blob.data)
            facts.append(
                MemoryFacts(
                    d.info.width, d.info.height, mode, None, d.alpha is not None, False, encoded
                )
            )
        else:
            facts.append(memory_facts(p.blob, limits=limits))
    needed = compare_memory(facts[0], facts[1])
    limits.check_memory(f"{pa.name} vs {pb.name}", needed, "comparing them")


# ---------------------------------------------------------------------------------------------
# Evidence: the pair as it stands, then the relations that could explain a failure


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
    pair: Pair,
    policy: Policy,
    hash_distances: Mapping[str, int],
    *,
    keep_map: bool,
    exhaustive: bool,
    max_side: int | None = None,
) -> _Found:
    """Measure the pair as it stands and, when it fails, the relations that could explain it.

    With ``exhaustive`` every relation is looked for whatever the pair scores (the accuracy
    benchmark judges the same evidence again under other policies); otherwise relations are
    only looked for when the policy allows it and the pair as it stands is not ``same``.
    """
    want_maps = keep_map or exhaustive
    primary = _measure_pair(pair, policy, hash_distances, keep_map=want_maps, max_side=max_side)
    shrunk = primary.metrics.compared_size not in (None, (pair.a.shape[1], pair.a.shape[0]))
    if shrunk and not exhaustive and not settled_at_cap(primary.evidence, policy):
        # Not clearly the same picture at the capped size: decided at full size.
        primary = _measure_pair(pair, policy, hash_distances, keep_map=want_maps)
    measured: dict[int, _Measured] = {}
    relations: list[Relation] = []
    if exhaustive or (policy.find_relations and needs_relations(primary.evidence, policy)):
        for kind, detail, other, area, cut in relation_candidates(pair, policy):
            m = _measure_pair(other, policy, {}, keep_map=want_maps)
            rel = Relation(kind, detail, m.evidence, area, cut)
            relations.append(rel)
            measured[id(rel)] = m
    evidence = replace(primary.evidence, relations=tuple(relations))
    return _Found(evidence, primary, measured)


# The longest side ``dupes`` first measures a pair of one size at (``compare(max_side=...)``):
# SSIM, the structure map and the colour tests cost a quarter of 1 MP's there. Shrinking
# smooths away what tells a small edit (a caption's local change read 0.26 at 512 px and 0.70
# at full size), so the capped measurement only settles a pair that passes or fails by wide
# margins (settled_at_cap); any other is measured again at full size. docs/benchmarks.md: the
# accuracy benchmark's verdicts are then identical to full size's, pair for pair.
CONFIRM_SIDE = 512

# The margins, beyond the policy's own thresholds, by which a pair measured at the capped size
# must pass to be settled there. On the accuracy benchmark the closest pairs whose verdict the
# cap changed were within 0.07 of these (an inpainted object + JPEG: local change 0.17 at the
# cap, 0.37 at full size; a sharpened copy: SSIM 0.93 at the cap, PSNR 17.5 dB at full size).
_CAP_SSIM_MARGIN = 0.25  # luma SSIM ≥ 0.95 with the default policy
_CAP_CHANNEL_MARGIN = 0.30  # worst channel ≥ 0.90
_CAP_LOCAL_CHANGE_MARGIN = 0.25  # local change ≤ 0.10
_CAP_PSNR_MARGIN = 10.0  # PSNR ≥ 28 dB
_CAP_COLOUR_MARGIN = 2.0  # colour ΔE ≤ 4.5

# And the margins by which it must fail. Only SSIM, the worst channel and the colour shift
# settle a failure: local change does not, as JPEG noise at full size can hide an edit that
# reads clearly at the cap (a watermark + JPEG q80: 0.49 at 512 px, under 0.35 at full size).
# Luma SSIM at the cap was within 0.20 of full size's on every accuracy pair that failed there
# (either way), so "different" (SSIM under similar_ssim) carries over only beyond that;
# "similar" by pHash distance does whatever the size (the hashes are of the files).
_CAP_FAIL_SSIM_MARGIN = 0.10  # luma SSIM < 0.60 with the default policy
_CAP_FAIL_CHANNEL_MARGIN = 0.10  # worst channel < 0.50
_CAP_FAIL_COLOUR_MARGIN = 2.0  # colour ΔE > 8.5
_CAP_SIMILAR_MARGIN = 0.25  # different only with luma SSIM < 0.40


def settled_at_cap(ev: Evidence, policy: Policy) -> bool:
    """Whether a pair measured at a capped size is decided there: the same picture, or not the
    same, by margins wide enough that its full size cannot say otherwise (see
    :data:`CONFIRM_SIDE`). Relations are looked for afterwards either way, at full size."""
    return _same_at_cap(ev, policy) or _not_same_at_cap(ev, policy)


def _same_at_cap(ev: Evidence, policy: Policy) -> bool:
    if ev.ssim is None or ev.ssim_min_channel is None or ev.psnr is None or ev.grey_vs_colour:
        return False
    return (
        ev.ssim >= policy.min_ssim + _CAP_SSIM_MARGIN
        and ev.ssim_min_channel >= policy.min_ssim_channel + _CAP_CHANNEL_MARGIN
        and (ev.local_change is None
             or ev.local_change <= policy.max_local_change - _CAP_LOCAL_CHANGE_MARGIN)
        and ev.psnr >= policy.min_psnr + _CAP_PSNR_MARGIN
        and (ev.colour_shift is None
             or ev.colour_shift <= policy.max_colour_shift - _CAP_COLOUR_MARGIN)
        and decide_all(ev, policy).verdict == Verdict.SAME
    )  # fmt: skip


def _not_same_at_cap(ev: Evidence, policy: Policy) -> bool:
    if ev.ssim is None:
        return False
    fails = (
        ev.ssim < policy.min_ssim - _CAP_FAIL_SSIM_MARGIN
        or (ev.ssim_min_channel is not None
            and ev.ssim_min_channel < policy.min_ssim_channel - _CAP_FAIL_CHANNEL_MARGIN)
        or (ev.colour_shift is not None
            and ev.colour_shift > policy.max_colour_shift + _CAP_FAIL_COLOUR_MARGIN)
    )  # fmt: skip
    phash = ev.hash_distances.get("phash")
    similar_by_hash = phash is not None and phash <= policy.similar_hash_distance
    return fails and (similar_by_hash or ev.ssim < policy.similar_ssim - _CAP_SIMILAR_MARGIN)


def _measure_pair(
    pair: Pair,
    policy: Policy,
    hash_distances: Mapping[str, int],
    *,
    keep_map: bool,
    max_side: int | None = None,
) -> _Measured:
    al = align(
        pair.a,
        pair.b,
        pair.a_alpha,
        pair.b_alpha,
        max_aspect_change=policy.max_aspect_change,
        max_side=max_side,
    )
    facts: tuple[str, ...] = ()
    if al.resized is not None and al.from_size and al.to_size:
        (w0, h0), (w1, h1) = al.from_size, al.to_size
        facts = (f"resized {w0}×{h0} → {w1}×{h1} ({al.resized})",)
    if al.aligned and al.a.shape[:2] != pair.a.shape[:2] and al.resized is None:
        # Both shrunk to max_side: the numbers below are of that size.
        facts = (f"measured at {al.a.shape[1]}×{al.a.shape[0]}",)
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

    if isinstance(source, str) and is_http_url(source):
        source = fetcher.get(source, conditional=True)
    if isinstance(source, Download):
        if source.not_modified:
            return source
        return PreparedImage(source.url, blob=blob_from_download(source), limits=limits)
    return load(source, limits=limits, lazy=True, fetcher=fetcher)


def _is_remote(side: PreparedImage) -> bool:
    url = side.blob.url if side.blob is not None else None
    return url is not None and is_http_url(url)


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


def _looks_grey_pixels(pixels: np.ndarray, alpha: np.ndarray | None) -> bool:
    """Whether a colour image is grey but for encoder noise (largest thumbnail chroma C* < 2).

    WebP (always YUV 4:2:0) and some JPEG encoders leave a grey picture's channels a level or
    two apart; averaged over a thumbnail that noise is far below any real colour (a sepia
    print's C* is about 10).
    """
    if pixels.ndim == 2:
        return True
    from .align import resize_area
    from .colour import OPENCV_CHROMA_ERROR, exact_chroma, to_lab

    h, w = pixels.shape[:2]
    step = max(1, min(h, w) // 256)  # a strided view first: the check costs the same at 12 MP
    small = pixels[::step, ::step]
    scale = min(1.0, 64 / min(small.shape[:2]))
    size = (max(1, round(small.shape[1] * scale)), max(1, round(small.shape[0] * scale)))
    thumb = resize_area(np.ascontiguousarray(small), size)
    shown = None
    if alpha is not None:  # only what shows counts
        shown = resize_area(np.ascontiguousarray(alpha[::step, ::step]), size) > 0
        shown = shown if shown.any() else None

    def largest(chroma: np.ndarray) -> float:
        return float((chroma if shown is None else chroma[shown]).max())

    # The threshold was set on OpenCV's Lab, whose tables take a one-shot compare ~30 ms to
    # wait for. The exact formula settles every thumbnail whose largest chroma is further from
    # the threshold than OpenCV's error can reach: the same answer, without the wait.
    exact = largest(exact_chroma(thumb))
    if abs(exact - _GREY_CHROMA) > OPENCV_CHROMA_ERROR:
        return exact < _GREY_CHROMA
    lab = to_lab(thumb.astype(np.float32) / 255.0)
    return largest(np.hypot(lab[:, :, 1], lab[:, :, 2])) < _GREY_CHROMA


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
    # With alpha, PSNR is over what shows (premultiplied colour, and alpha): the colour of an
    # invisible pixel is no part of the picture and differs freely between two exports.
    psnr = m.psnr(a, b) if has_alpha else m.psnr(al.a, al.b)
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
    from .align import resize_area
    from .colour import to_lab

    h, w = al.a.shape[:2]
    scale = min(1.0, _THUMB_SIDE / min(h, w))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))

    def lab(pixels: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
        rgb = resize_area(pixels, size).astype(np.float32) / 255.0
        if alpha is not None:
            a = resize_area(alpha, size).astype(np.float32)[:, :, None] / 255.0
            rgb = rgb * a + (1.0 - a)
        return to_lab(rgb)

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
