"""``--csv``: the lists ``find``, ``dupes`` and ``sync`` print, one row per file or URL, with a
header row (RFC 4180, as Python's csv module writes it), for spreadsheets and scripts."""

from __future__ import annotations

import csv
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from .results import DuplicateGroup, FindResult
    from .sync import SyncSummary

__all__ = [
    "DUPES_COLUMNS",
    "FIND_COLUMNS",
    "SYNC_COLUMNS",
    "write_dupes",
    "write_find",
    "write_sync",
]

FIND_COLUMNS = ("path", "kind", "verdict", "relation", "ssim", "hash_distance", "reasons")
DUPES_COLUMNS = (
    "group", "role", "path", "verdict", "width", "height", "format", "jpeg_quality", "lossless",
    "bytes", "reasons",
)  # fmt: skip
SYNC_COLUMNS = ("line", "url", "decision", "verdict", "path", "bytes", "kept", "reason")


def _none(value: object) -> object:
    return "" if value is None else value


def write_find(result: FindResult, out: TextIO) -> None:
    """One row per match (``kind`` match) and per similar file (``kind`` similar)."""
    writer = csv.writer(out)
    writer.writerow(FIND_COLUMNS)
    for kind, matches in (("match", result.matches), ("similar", result.similar)):
        for m in matches:
            c = m.comparison
            ssim = c.metrics.ssim
            writer.writerow([
                str(m.path), kind, c.verdict.value, _none(c.relation),
                "" if ssim is None else f"{ssim:.4f}", m.hash_distance, "; ".join(c.reasons),
            ])  # fmt: skip


def write_dupes(groups: list[DuplicateGroup], out: TextIO) -> None:
    """One row per copy: its group number, ``best`` or ``copy``, facts and verdict vs the best."""
    writer = csv.writer(out)
    writer.writerow(DUPES_COLUMNS)
    for number, group in enumerate(groups, 1):
        for copy in group.copies:
            c = copy.comparison
            writer.writerow([
                number, "best" if copy is group.best else "copy", str(copy.path),
                "" if c is None else c.verdict.value, copy.width, copy.height,
                _none(copy.format), _none(copy.jpeg_quality), _none(copy.lossless), copy.size,
                "" if c is None else "; ".join(c.reasons),
            ])  # fmt: skip


def write_sync(summary: SyncSummary, out: TextIO) -> None:
    """One row per URL decided, in list order (the fields of a ``--log`` line)."""
    writer = csv.writer(out)
    writer.writerow(SYNC_COLUMNS)
    for item in summary.items:
        row = item.to_dict()
        writer.writerow([_none(row.get(column)) for column in SYNC_COLUMNS])
