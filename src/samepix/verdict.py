"""From measurements to a verdict: ``identical``, ``same``, ``similar`` or ``different``.

Each rule names the threshold it used, so every verdict comes with the reasons that decided it.
Deciding is pure: :func:`decide` reads an :class:`Evidence` (numbers measured once) and a
:class:`~samepix.policy.Policy`, so a stored Evidence can be judged again under another policy
without touching a pixel (``benchmarks/accuracy.py`` calibrates the defaults that way).
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from .policy import Policy

__all__ = [
    "RECHECK_BELOW_SSIM",
    "Decision",
    "Evidence",
    "Relation",
    "Verdict",
    "decide",
    "decide_all",
    "needs_relations",
]


class Verdict(str, enum.Enum):
    """How two images relate.

    ``identical``: the same bytes, or the same decoded pixels (and alpha).
    ``same``: the same picture, re-encoded, resized, converted, stripped of metadata, rotated
    by its EXIF tag or slightly recoloured.
    ``similar``: related but not the same picture: a crop, a mirror image, a copy rotated in
    its pixels, a local edit, a greyscale copy, a strong recolouring (each of the first four
    can be made ``same`` by a policy switch).
    ``different``: another picture.
    """

    IDENTICAL = "identical"
    SAME = "same"
    SIMILAR = "similar"
    DIFFERENT = "different"

    @property
    def is_match(self) -> bool:
        """True for ``identical`` and ``same``: the picture is already there."""
        return self in (Verdict.IDENTICAL, Verdict.SAME)

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Evidence:
    """The measurements :func:`decide` reads (None where a measure does not apply).

    ``relations`` holds the same measurements taken again after undoing a geometric change
    that was found between the two images (a mirror image, a rotation in the pixels, a crop);
    they are only looked for when the pair as it stands is not the same picture.
    """

    aligned: bool  # sizes equal, or aspect ratios close enough to resize
    aspect_change: float
    grey_vs_colour: bool
    ssim: float | None
    ssim_min_channel: float | None
    worst_region_ssim: float | None
    colour_shift: float | None
    nrmse: float | None
    psnr: float | None
    hash_distances: Mapping[str, int]
    relations: tuple[Relation, ...] = ()
    local_change: float | None = None


@dataclass(frozen=True)
class Relation:
    """A geometric change between the two images, and the evidence measured once it is undone.

    Attributes
    ----------
    kind : str
        ``"mirror"`` (left-right, top-bottom or diagonal), ``"rotation"`` (90°, 180° or 270°
        in the pixels, without an EXIF tag saying so) or ``"crop"``.
    detail : str
        The change in words, for the reasons ("b is a's mirror image (left-right)").
    evidence : Evidence
        The metrics of the pair once the change is undone (for a crop: the located region of
        the larger image against the smaller image).
    area : float
        For a crop: the fraction of the larger image's area that the crop shows; 1.0 otherwise.
    cut : float
        For a crop: the largest fraction of the larger image's width or height that the crop
        leaves out (a 1-pixel trim of a 768-pixel side: 0.0013); 0.0 otherwise.
    """

    kind: str
    detail: str
    evidence: Evidence
    area: float = 1.0
    cut: float = 0.0


@dataclass(frozen=True)
class Decision:
    """A verdict, its reasons, and the relation (if any) that decided it."""

    verdict: Verdict
    reasons: tuple[str, ...]
    relation: Relation | None = None


def decide(ev: Evidence, policy: Policy) -> tuple[Verdict, list[str]]:
    """Apply ``policy`` to the evidence; return the verdict and the reasons that decided it.

    See :func:`decide_all` for the relation that decided it, when one did.
    """
    decision = decide_all(ev, policy)
    return decision.verdict, list(decision.reasons)


def decide_all(ev: Evidence, policy: Policy) -> Decision:
    """Apply ``policy`` to the evidence, including the relations found between the images.

    1. The pair as it stands passes every test for ``same`` with luma SSIM of at least
       :data:`RECHECK_BELOW_SSIM`: ``same``.
    2. Otherwise, a relation whose evidence passes every test (and, when the pair as it stands
       passed too, whose SSIM is clearly higher): a mirror image, a rotation in
       the pixels or a crop of the same picture. A crop that only trims the edges (at most
       ``max_trim`` of the width and height: a border added or removed) is ``same``; any other
       relation is ``same`` when the policy's switch for
       it is on (``flip_is_same``, ``rotation_is_same``, ``crop_is_same`` with
       ``min_crop_area``), else ``similar``, and the reasons say which switch decided.
    3. Otherwise, the pair as it stands passed: ``same``; it did not: ``similar`` when luma
       SSIM or the pHash distance says the pictures are close, else ``different``.
    """
    passed, failures = _tests(ev, policy)
    relations = ev.relations if policy.find_relations else ()
    if passed and not (ev.ssim is not None and ev.ssim < RECHECK_BELOW_SSIM):
        return Decision(Verdict.SAME, (_summary(ev),))
    for rel in relations:
        ok, _ = _tests(rel.evidence, policy)
        if not ok:
            continue
        if passed and not _explains_better(rel, ev):
            continue  # the pair passes as it stands; this relation is no better an account
        if rel.kind == "crop" and rel.cut <= policy.max_trim:
            # A trimmed edge or an added/removed border: the picture is all there.
            return Decision(
                Verdict.SAME,
                (
                    rel.detail,
                    _summary(rel.evidence),
                    f"edges trimmed by at most {rel.cut:.1%} ≤ policy max_trim {policy.max_trim:g}",
                ),
                rel,
            )
        switch, allowed = _switch(rel, policy)
        if allowed:
            return Decision(
                Verdict.SAME, (rel.detail, _summary(rel.evidence), f"policy {switch} is on"), rel
            )
        why = f"counts as similar: policy {switch} is off"
        if rel.kind == "crop" and policy.crop_is_same:
            why = (
                f"counts as similar: the crop shows {rel.area:.0%} of the picture, "
                f"less than policy min_crop_area {policy.min_crop_area:g}"
            )
        return Decision(Verdict.SIMILAR, (rel.detail, _summary(rel.evidence), why), rel)
    if passed:
        return Decision(Verdict.SAME, (_summary(ev),))
    return _fallback(ev, policy, failures)


RECHECK_BELOW_SSIM = 0.9
"""A pair that passes with a luma SSIM below this is still checked for a relation: a 10 %
crop of a smooth picture, resized back to full size, can pass at SSIM 0.71, and the crop,
once found, explains it far better (SSIM 0.99)."""
_BETTER_BY = 0.05  # how much higher a relation's SSIM must be to override a passing pair


def needs_relations(ev: Evidence, policy: Policy) -> bool:
    """Whether :func:`decide_all` could use relations for this pair as it stands: when it is
    not the same picture, or passes only with SSIM below :data:`RECHECK_BELOW_SSIM`."""
    passed, _ = _tests(ev, policy)
    return not passed or (ev.ssim is not None and ev.ssim < RECHECK_BELOW_SSIM)


def _explains_better(rel: Relation, ev: Evidence) -> bool:
    """Whether a relation accounts for a pair that passes as it stands clearly better."""
    if rel.evidence.ssim is None or ev.ssim is None:
        return False
    return rel.evidence.ssim >= ev.ssim + _BETTER_BY


def _switch(rel: Relation, policy: Policy) -> tuple[str, bool]:
    if rel.kind == "mirror":
        return "flip_is_same", policy.flip_is_same
    if rel.kind == "rotation":
        return "rotation_is_same", policy.rotation_is_same
    if rel.kind == "crop":
        return "crop_is_same", policy.crop_is_same and rel.area >= policy.min_crop_area
    raise ValueError(f"unknown relation kind {rel.kind!r}")


def _tests(ev: Evidence, policy: Policy) -> tuple[bool, list[str]]:
    """Every test for ``same``; the failures in words (an empty list when all pass)."""
    if not ev.aligned:
        return False, [
            f"aspect ratios differ by {ev.aspect_change:.1%}: a crop, padding or another picture"
        ]
    if ev.ssim is None:  # too small for the SSIM window
        nrmse = ev.nrmse if ev.nrmse is not None else 0.0
        why = f"too small for SSIM; NRMSE {nrmse:.3f}"
        if nrmse >= policy.min_nrmse:
            return True, []
        return False, [f"{why} < {policy.min_nrmse}"]

    failures: list[str] = []
    # Words that say what kind of change it was ("a local change", "recoloured") only where the
    # rest of the picture agrees; of two different photographs they would tell a false story.
    related = ev.ssim >= policy.similar_ssim
    if ev.ssim < policy.min_ssim:
        failures.append(f"SSIM {ev.ssim:.3f} < {policy.min_ssim}")
    if ev.psnr is not None and ev.psnr < policy.min_psnr:
        failures.append(f"PSNR {ev.psnr:.1f} dB < {policy.min_psnr:g} dB")
    if ev.ssim_min_channel is not None and ev.ssim_min_channel < policy.min_ssim_channel:
        failures.append(f"worst channel SSIM {ev.ssim_min_channel:.3f} < {policy.min_ssim_channel}")
    if ev.worst_region_ssim is not None and ev.worst_region_ssim < policy.min_worst_region:
        failures.append(
            f"worst region SSIM {ev.worst_region_ssim:.3f} < {policy.min_worst_region}"
            + (": a local change" if related else "")
        )
    if ev.local_change is not None and ev.local_change > policy.max_local_change:
        failures.append(
            f"local change {ev.local_change:.2f} > {policy.max_local_change}"
            + (": one region changed more than the rest (an edit)" if related else "")
        )
    if ev.colour_shift is not None and ev.colour_shift > policy.max_colour_shift:
        failures.append(
            f"colour shift ΔE {ev.colour_shift:.1f} > {policy.max_colour_shift}"
            + (": recoloured" if related else "")
        )
    if ev.grey_vs_colour and not policy.greyscale_is_same:
        failures.append("greyscale copy of a colour picture (policy greyscale_is_same is off)")
    return not failures, failures


def _fallback(ev: Evidence, policy: Policy, failures: list[str]) -> Decision:
    """Not the same picture (nor a known relation of it): ``similar`` or ``different``."""
    phash = ev.hash_distances.get("phash")
    hash_close = phash is not None and phash <= policy.similar_hash_distance
    hash_words = (
        f"pHash distance {phash} ≤ {policy.similar_hash_distance}"
        if hash_close
        else f"pHash distance {phash}"
    )
    if not ev.aligned:
        verdict = Verdict.SIMILAR if hash_close else Verdict.DIFFERENT
        return Decision(verdict, (*failures, hash_words))
    if ev.ssim is None:  # too small for SSIM: NRMSE alone decided
        return Decision(Verdict.DIFFERENT, tuple(failures))
    if ev.ssim >= policy.similar_ssim or hash_close:
        return Decision(Verdict.SIMILAR, tuple(failures))
    return Decision(Verdict.DIFFERENT, tuple(failures))


def _summary(ev: Evidence) -> str:
    if ev.ssim is None:
        nrmse = ev.nrmse if ev.nrmse is not None else 0.0
        return f"too small for SSIM; NRMSE {nrmse:.3f}"
    parts = [f"SSIM {ev.ssim:.3f}"]
    if ev.worst_region_ssim is not None:
        parts.append(f"worst region {ev.worst_region_ssim:.2f}")
    if ev.colour_shift is not None:
        parts.append(f"colour ΔE {ev.colour_shift:.1f}")
    return "; ".join(parts)
