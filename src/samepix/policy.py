"""Every threshold behind a verdict, in one frozen dataclass.

The defaults come from measurements on real photographs (``benchmarks/accuracy.py`` over
``../shared/data``); ``docs/verdicts.md`` gives the numbers behind each one.
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
        Lowest mean SSIM of the worst tile of the SSIM map for ``same``: a pasted patch, an
        edited face or added text lowers one region while the global mean stays high.
    region_fraction
        Tile side as a fraction of the shorter side of the compared images.
    min_psnr
        Lowest PSNR (dB) for ``same``. SSIM alone is lenient on smooth or flat pictures, where
        its stabilising constants dominate; an absolute error floor catches two different
        smooth images that SSIM would call close.
    max_colour_shift
        Largest mean colour difference (CIE76 ΔE between small thumbnails) for ``same``:
        catches recolouring that SSIM, a structure measure, barely sees.
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
    candidate_hash_distance
        Largest pHash distance at which a folder search confirms a candidate with a full
        comparison (``find``, ``sync``, ``dupes``).
    candidate_thumb_distance
        Largest mean absolute difference (grey levels, 0–255) between the 16×16 grey thumbnails
        of an indexed candidate and the query for the candidate to be decoded and compared; a
        larger one cannot be ``same``. Measured on Kodak and photos/: re-encodes, resizes to ¼
        and WebP ≤ 1.0, the largest ``same`` copy (brightness ±8 %) 13.4, different photos ≥ 21.
    """

    min_ssim: float = 0.70
    min_ssim_channel: float = 0.60
    min_worst_region: float = 0.45
    region_fraction: float = 0.125
    min_psnr: float = 20.0
    max_colour_shift: float = 6.0
    similar_ssim: float = 0.50
    similar_hash_distance: int = 12
    max_aspect_change: float = 0.01
    min_nrmse: float = 0.95
    greyscale_is_same: bool = False
    candidate_hash_distance: int = 12
    candidate_thumb_distance: float = 24.0

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
