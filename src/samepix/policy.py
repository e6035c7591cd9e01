"""Every threshold behind a verdict, in one frozen dataclass.

The defaults come from measurements on real photographs (``benchmarks/accuracy.py`` over
``../shared/data`` and scikit-image's photographs: 5,671 labelled pairs); ``docs/verdicts.md``
gives the numbers behind each one and the margin it leaves.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any

from .errors import UsageError

__all__ = ["DEFAULT_POLICY", "Policy"]


@dataclass(frozen=True)
class Policy:
    """Thresholds for ``identical`` / ``same`` / ``similar`` / ``different``.

    Parameters
    ----------
    min_ssim
        Lowest luma SSIM (after size alignment) for ``same``.
    min_ssim_channel
        Lowest SSIM of the worst colour (or alpha) channel for ``same``: catches a channel
        changed on its own.
    min_worst_region
        Lowest mean SSIM of the worst region of the SSIM map for ``same``: a floor for a
        region left with no structure in common at all (0: uncorrelated). Local edits are
        caught by ``max_local_change``; on real photographs the plain worst-region SSIM of a
        JPEG q20 copy falls as low as a pasted patch's, so it cannot be the edit test itself.
    region_fraction
        Side of the regions the two local tests look at, as a fraction of the shorter side of
        the compared images.
    max_local_change
        Largest local change for ``same``: how much more structure (SSIM's contrast-structure
        term, texture-weighted) the worst region lost than ``LOCAL_SPREAD`` times the picture
        as a whole. A pasted patch, a blurred face or added text change one region; a
        re-encode or a resize loses structure all over.
    min_psnr
        Lowest PSNR (dB) for ``same``. SSIM alone is lenient on smooth or flat pictures, where
        its stabilising constants dominate; an absolute error floor catches two different
        smooth images that SSIM would call close.
    max_colour_shift
        Largest mean chroma difference (CIE76 ΔE over a* and b*, between 32-pixel thumbnails)
        for ``same``: catches recolouring (a hue rotation, swapped channels, a tint, sepia)
        that SSIM, a structure measure, barely sees. Lightness is left to SSIM and PSNR.
    similar_ssim
        Lowest luma SSIM for ``similar`` when the picture is not the same.
    similar_hash_distance
        Largest pHash distance (of 64 bits) for ``similar`` (crops, edits, other aspect ratios).
    max_aspect_change
        Largest relative difference of aspect ratios that size alignment resizes across; more
        is treated as a crop or another picture.
    min_nrmse
        For images too small for SSIM (< 11 px): lowest NRMSE (1 − RMSE/range) for ``same``.
    greyscale_is_same
        Whether a greyscale copy of a colour picture counts as ``same`` (default: ``similar``).
    flip_is_same
        Whether a mirror image (left-right, top-bottom or diagonal) of the picture counts as
        ``same`` (default: ``similar``, with the reason saying it is a mirror image).
    rotation_is_same
        Whether a copy rotated by 90°, 180° or 270° in its pixels (not by an EXIF tag, which is
        always applied) counts as ``same`` (default: ``similar``).
    crop_is_same
        Whether a crop, located inside the larger image, counts as ``same`` when it shows at
        least ``min_crop_area`` of it (default: a crop is at most ``similar``).
    min_crop_area
        With ``crop_is_same``: the smallest fraction of the larger image's area a crop must
        show to count as ``same``.
    max_trim
        Largest fraction of the width or height that a crop may leave out and still be the
        same picture (a trimmed edge, a border added or removed); larger crops are crops.
    find_relations
        When the pair is not the same as it stands, look for a mirror image, a rotation in the
        pixels or a crop (a few milliseconds to tens of milliseconds per pair). Off: such
        pairs are judged by the metrics as they stand (usually ``different``).
    candidate_hash_distance
        Largest pHash distance at which a folder search confirms a candidate with a full
        comparison (``find``, ``sync``, ``dupes``).
    candidate_thumb_distance
        Largest mean absolute difference (grey levels, 0–255) between the 16×16 grey thumbnails
        of an indexed candidate and the query for the candidate to be decoded and compared. It
        is a speed screen that must never drop a ``same``: a ``same`` pair has PSNR ≥
        ``min_psnr``, so an RGB RMS difference ≤ 255·10^(−min_psnr/20) = 32.1 at 18 dB; the
        thumbnails' mean absolute grey difference is at most their RMS, which averaging only
        lowers, and a grey difference is at most √(3 × 0.587) = 1.33× the RGB one (all of it in
        green): 42.6, rounded up to 43. Keep it at least that bound when lowering ``min_psnr``.
        Measured on Kodak and photos/: the largest ``same`` copy (brightness ±8 %) 13.4; a
        drawing whose flat background moved 38 grey levels is still ``same`` at 25.8 (an
        earlier default of 24 dropped it); different photos ≥ 21.
    """

    min_ssim: float = 0.70
    min_ssim_channel: float = 0.60
    min_worst_region: float = 0.0
    region_fraction: float = 0.0625
    max_local_change: float = 0.35
    min_psnr: float = 18.0
    max_colour_shift: float = 6.5
    similar_ssim: float = 0.65
    similar_hash_distance: int = 12
    max_aspect_change: float = 0.01
    min_nrmse: float = 0.95
    greyscale_is_same: bool = False
    flip_is_same: bool = False
    rotation_is_same: bool = False
    crop_is_same: bool = False
    min_crop_area: float = 0.5
    max_trim: float = 0.01
    find_relations: bool = True
    candidate_hash_distance: int = 12
    candidate_thumb_distance: float = 43.0

    def __post_init__(self) -> None:
        for name in (
            "min_ssim",
            "min_ssim_channel",
            "min_worst_region",
            "similar_ssim",
            "min_nrmse",
        ):
            value = getattr(self, name)
            if not -1.0 <= value <= 1.0:
                raise UsageError(f"policy {name} must be within [-1, 1], got {value}")
        if not 0.0 < self.region_fraction <= 1.0:
            raise UsageError(
                f"policy region_fraction must be in (0, 1], got {self.region_fraction}"
            )
        if not 0.0 < self.min_crop_area <= 1.0:
            raise UsageError(f"policy min_crop_area must be in (0, 1], got {self.min_crop_area}")
        if not 0.0 <= self.max_trim < 1.0:
            raise UsageError(f"policy max_trim must be in [0, 1), got {self.max_trim}")
        if self.max_local_change < 0:
            raise UsageError(f"policy max_local_change must be >= 0, got {self.max_local_change}")
        if self.min_psnr < 0:
            raise UsageError(f"policy min_psnr must be >= 0 dB, got {self.min_psnr}")
        if self.max_colour_shift < 0 or self.max_aspect_change < 0:
            raise UsageError("policy max_colour_shift and max_aspect_change must be >= 0")
        if not 0.0 <= self.candidate_thumb_distance <= 255.0:
            raise UsageError(
                "policy candidate_thumb_distance must be within [0, 255], "
                f"got {self.candidate_thumb_distance}"
            )
        for name in ("similar_hash_distance", "candidate_hash_distance"):
            if not 0 <= getattr(self, name) <= 64:
                raise UsageError(f"policy {name} must be within [0, 64], got {getattr(self, name)}")

    def with_(self, **changes: Any) -> Policy:
        """A copy with some thresholds changed (unknown names raise UsageError)."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UsageError(f"unknown policy setting(s): {', '.join(unknown)}")
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


DEFAULT_POLICY = Policy()
