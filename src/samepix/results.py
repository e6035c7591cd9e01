"""What ``find`` and ``dupes`` return: plain result records.

They sit below :mod:`samepix.library` (which makes them), :mod:`samepix.sync` (which reads a
:class:`FindResult`) and the presentation modules (text, HTML, actions), so none of those needs
to import another to name a result.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .compare import Comparison

__all__ = ["DuplicateCopy", "DuplicateGroup", "FindResult", "Match"]


@dataclass(frozen=True)
class Match:
    """One indexed file compared with the query.

    Parameters
    ----------
    path : pathlib.Path
        The file (the library folder joined with its indexed path).
    comparison : Comparison
        ``compare(query, path)``: verdict, reasons, metrics.
    hash_distance : int
        The smaller of the pHash and dHash distances that made it a candidate (0: same bytes).
    """

    path: Path
    comparison: Comparison
    hash_distance: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "hash_distance": self.hash_distance,
            **self.comparison.to_dict(),
        }


@dataclass(frozen=True)
class FindResult:
    """What :meth:`Library.find` found.

    ``matches`` holds the files that show the query's picture (``identical`` first, then ``same``
    by decreasing SSIM); ``similar`` the candidates judged related but not the same (a crop, an
    edit). ``candidates`` entries were within the hash distance, ``screened_out`` of them were
    ruled out from the index alone (aspect ratio, thumbnail), ``compared`` were fully compared.
    """

    source: str
    matches: tuple[Match, ...]
    similar: tuple[Match, ...]
    candidates: int
    screened_out: int
    compared: int
    index_size: int
    lookup_ms: float  # the hash search over the in-memory table
    elapsed_s: float

    @property
    def found(self) -> bool:
        """True when at least one file is ``identical`` or ``same``."""
        return bool(self.matches)

    @property
    def best(self) -> Match | None:
        return self.matches[0] if self.matches else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "found": self.found,
            "matches": [m.to_dict() for m in self.matches],
            "similar": [m.to_dict() for m in self.similar],
            "candidates": self.candidates,
            "screened_out": self.screened_out,
            "compared": self.compared,
            "index_size": self.index_size,
            "lookup_ms": round(self.lookup_ms, 3),
            "elapsed_s": round(self.elapsed_s, 3),
        }


@dataclass(frozen=True)
class DuplicateCopy:
    """One file of a :class:`DuplicateGroup`, with what ranks it, and how it compares with the
    group's best copy (``comparison`` is None for the best copy itself)."""

    path: Path
    format: str | None
    width: int
    height: int
    size: int
    lossless: bool | None
    jpeg_quality: int | None
    comparison: Comparison | None
    sha256: str = ""  # the content hash recorded in the index when the group was made

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": str(self.path),
            "sha256": self.sha256,
            "format": self.format,
            "width": self.width,
            "height": self.height,
            "bytes": self.size,
            "lossless": self.lossless,
            "jpeg_quality": self.jpeg_quality,
        }
        if self.comparison is not None:
            out["verdict"] = self.comparison.verdict.value
            out["reasons"] = list(self.comparison.reasons)
        return out


@dataclass(frozen=True)
class DuplicateGroup:
    """Copies of one picture in the folder, best copy first (see
    :func:`samepix.library.quality_key`)."""

    copies: tuple[DuplicateCopy, ...]

    @property
    def best(self) -> DuplicateCopy:
        return self.copies[0]

    @property
    def others(self) -> tuple[DuplicateCopy, ...]:
        return self.copies[1:]

    def to_dict(self) -> dict[str, Any]:
        return {"best": str(self.best.path), "copies": [c.to_dict() for c in self.copies]}
