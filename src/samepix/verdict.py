"""From measurements to a verdict: ``identical``, ``same``, ``similar`` or ``different``.

Each rule names the threshold it used, so every verdict comes with the reasons that decided it.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from .policy import Policy

__all__ = ["Evidence", "Verdict", "decide"]


class Verdict(str, enum.Enum):
    """How two images relate.

    ``identical``: the same bytes, or the same decoded pixels (and alpha).
    ``same``: the same picture, re-encoded, resized, converted, stripped of metadata, rotated
    by its EXIF tag or slightly recoloured.
    ``similar``: related but not the same picture: a crop, a local edit, a greyscale copy, a
    strong recolouring.
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
    """The measurements :func:`decide` reads (None where a measure does not apply)."""

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


def decide(ev: Evidence, policy: Policy) -> tuple[Verdict, list[str]]:
    """Apply ``policy`` to the evidence; return the verdict and the reasons that decided it."""
    phash = ev.hash_distances.get("phash")
    hash_close = phash is not None and phash <= policy.similar_hash_distance
    if not ev.aligned:
        why = f"aspect ratios differ by {ev.aspect_change:.1%}: a crop, padding or another picture"
        if hash_close:
            return Verdict.SIMILAR, [
                why,
                f"pHash distance {phash} ≤ {policy.similar_hash_distance}",
            ]
        return Verdict.DIFFERENT, [why, f"pHash distance {phash}"]

    if ev.ssim is None:  # too small for the SSIM window
        nrmse = ev.nrmse if ev.nrmse is not None else 0.0
        why = f"too small for SSIM; NRMSE {nrmse:.3f}"
        if nrmse >= policy.min_nrmse:
            return Verdict.SAME, [f"{why} ≥ {policy.min_nrmse}"]
        return Verdict.DIFFERENT, [f"{why} < {policy.min_nrmse}"]

    failures: list[str] = []
    if ev.ssim < policy.min_ssim:
        failures.append(f"SSIM {ev.ssim:.3f} < {policy.min_ssim}")
    if ev.psnr is not None and ev.psnr < policy.min_psnr:
        failures.append(f"PSNR {ev.psnr:.1f} dB < {policy.min_psnr:g} dB")
    if ev.ssim_min_channel is not None and ev.ssim_min_channel < policy.min_ssim_channel:
        failures.append(f"worst channel SSIM {ev.ssim_min_channel:.3f} < {policy.min_ssim_channel}")
    if ev.worst_region_ssim is not None and ev.worst_region_ssim < policy.min_worst_region:
        failures.append(
            f"worst region SSIM {ev.worst_region_ssim:.3f} < {policy.min_worst_region}: "
            "a local change"
        )
    if ev.colour_shift is not None and ev.colour_shift > policy.max_colour_shift:
        failures.append(
            f"colour shift ΔE {ev.colour_shift:.1f} > {policy.max_colour_shift}: recoloured"
        )
    if ev.grey_vs_colour and not policy.greyscale_is_same:
        failures.append("greyscale copy of a colour picture (policy greyscale_is_same is off)")

    if not failures:
        return Verdict.SAME, [_summary(ev)]
    if ev.ssim >= policy.similar_ssim or hash_close:
        return Verdict.SIMILAR, failures
    return Verdict.DIFFERENT, failures


def _summary(ev: Evidence) -> str:
    parts = [f"SSIM {ev.ssim:.3f}"]
    if ev.worst_region_ssim is not None:
        parts.append(f"worst region {ev.worst_region_ssim:.2f}")
    if ev.colour_shift is not None:
        parts.append(f"colour ΔE {ev.colour_shift:.1f}")
    return "; ".join(parts)
